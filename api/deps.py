"""FastAPI dependencies: the settings, the shared store, bearer-token auth and
single-valued query strings.

``get_store`` hands every request the process-wide store of
:func:`manager.services.shared_store` (one per process for the configured
``COHORTLAB_STORE`` URL, re-opened when the URL changes), so a request never pays
for opening a database::

    from api.deps import get_store
    from manager import read_model

    @router.get("/api/cohorts/{run_id}")
    def detail(run_id: str, store: Store = Depends(get_store)):
        return read_model.cohort_detail(store, run_id)

Auth: state-changing routes depend on :func:`require_token`. They need
``Authorization: Bearer <COHORTLAB_API_TOKEN>``; when no token is configured they
are refused (401) with a message saying to set ``COHORTLAB_API_TOKEN``. Read-only
routes are open: bind the API to ``127.0.0.1`` (the default of ``cohortlab
serve``) or put it behind a proxy that authenticates.
"""
from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import ApiProblem
from manager import services
from manager.settings import Settings
from manager.store import Store

__all__ = ["Principal", "TOKEN_PRINCIPAL", "bearer", "current_principal", "get_settings_dep", "get_store",
           "require_role", "require_token", "single_query_values"]


def get_settings_dep() -> Settings:
    """Dependency: the current settings (:func:`manager.services.current_settings`).

    Raises:
        StoreError: the settings do not validate (answered 503).
    """
    return services.current_settings()


def get_store() -> Store:
    """Dependency: the process-wide store (:func:`manager.services.shared_store`).

    Raises:
        StoreError: the store cannot be opened (answered 503).
    """
    return services.shared_store()


bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <COHORTLAB_API_TOKEN>`; required by "
                    "state-changing routes. With no token configured those routes answer 401.")


def require_token(credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                  settings: Settings = Depends(get_settings_dep)) -> None:
    """Dependency of state-changing routes: a bearer token equal to ``COHORTLAB_API_TOKEN``.

    Raises:
        ApiProblem: 401 when no token is configured, the header is missing, or the
            token differs (compared in constant time).
    """
    challenge = {"WWW-Authenticate": 'Bearer realm="cohortlab"'}
    if not settings.api_token:
        raise ApiProblem(401, "state-changing routes are disabled: no API token is configured; set "
                         "COHORTLAB_API_TOKEN in the API's environment and send 'Authorization: Bearer <token>'",
                         type_="unauthorized", headers=challenge)
    if credentials is None:
        raise ApiProblem(401, "missing bearer token: send 'Authorization: Bearer <COHORTLAB_API_TOKEN>'",
                         type_="unauthorized", headers=challenge)
    if not secrets.compare_digest(credentials.credentials.encode(), settings.api_token.encode()):
        raise ApiProblem(401, "wrong bearer token", type_="unauthorized",
                         headers={"WWW-Authenticate": 'Bearer realm="cohortlab", error="invalid_token"'})


def single_query_values(request: Request) -> None:
    """Refuse a query string that repeats a parameter (``?bankroll=1&bankroll=x``).

    Every query parameter of this API is a single value; a framework would quietly
    keep the last one and ignore the others, so a repeated name is a 422 naming it.

    Raises:
        ApiProblem: 422 ``validation-error`` with one error per repeated name.
    """
    counts = Counter(k for k, _ in request.query_params.multi_items())
    repeated = sorted(k for k, n in counts.items() if n > 1)
    if repeated:
        errors = [{"field": k, "message": "given more than once; give each query parameter once"} for k in repeated]
        raise ApiProblem(422, f"query parameter(s) given more than once: {', '.join(repeated)}",
                         type_="validation-error", title="Request validation failed", errors=errors)


# -- principals -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who made an authenticated request.

    Attributes:
        name: the audit name of the caller (``api:<token holder>``); goes to the
            ``actor`` of audit events.
        roles: the caller's roles. Empty for now: one shared token, no roles.
    """

    name: str
    roles: frozenset[str] = field(default_factory=frozenset)


TOKEN_PRINCIPAL = Principal(name="api:token")
"""The principal of a request carrying ``COHORTLAB_API_TOKEN`` (the only identity there is today)."""


def current_principal(_: None = Depends(require_token)) -> Principal:
    """Dependency of state-changing routes that record who acted: the authenticated caller.

    Today every valid token is the one shared ``COHORTLAB_API_TOKEN`` (:func:`require_token`:
    401 without it), so the principal is :data:`TOKEN_PRINCIPAL`.

    Issue 13 adds users with roles (``ops``, ``risk``): this is where a token is then
    resolved to a user and its roles, and routes restrict themselves with
    :func:`require_role` (403 for an authenticated caller without the role) -- the routes
    themselves do not change.

    Raises:
        ApiProblem: 401 as :func:`require_token`.
    """
    return TOKEN_PRINCIPAL


def require_role(*roles: str):
    """A dependency returning the :func:`current_principal` when it holds one of ``roles``.

    Until roles exist (issue 13) the shared token holder may do everything, so this only
    authenticates; with roles, a caller holding none of ``roles`` gets 403.
    """

    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.roles and not principal.roles & set(roles):
            raise ApiProblem(403, f"{principal.name} lacks the role for this action; needs one of: "
                             f"{', '.join(roles)}", type_="forbidden")
        return principal

    dependency.__name__ = f"require_role_{'_'.join(roles)}"
    return dependency
