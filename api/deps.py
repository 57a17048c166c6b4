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

Auth (issue 13): state-changing routes depend on :func:`require_permission` (an action of
:data:`manager.users.PERMISSIONS`), :func:`require_role` or :func:`require_token`, all
built on :func:`current_principal`: a bearer token (a personal token, or the bootstrap
admin's ``COHORTLAB_API_TOKEN``) or a signed-in dashboard session with its CSRF header.
401 without credentials (saying to set ``COHORTLAB_API_TOKEN`` when there is neither it nor
any user), 403 for a role that may not act. Read-only routes are open (viewer level):
bind the API to ``127.0.0.1`` (the default of ``cohortlab serve``) or put it behind a
proxy that authenticates.
"""
from __future__ import annotations

from collections import Counter

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.problems import ApiProblem
from manager import services, users
from manager.settings import Settings
from manager.store import Store
from manager.users import Principal
from web.auth import CSRF_HEADER, csrf_header_ok, session_principal

__all__ = ["Principal", "TOKEN_PRINCIPAL", "bearer", "current_principal", "get_settings_dep", "get_store",
           "require_permission", "require_role", "require_token", "single_query_values"]


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


bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>`: a personal token "
                    "(`cohortlab users add`) or the bootstrap admin's `COHORTLAB_API_TOKEN`; required by "
                    "state-changing routes, each of which also needs a role (403 without it).")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="cohortlab"'}


def _unauthorized(detail: str, *, invalid: bool = False) -> ApiProblem:
    header = 'Bearer realm="cohortlab", error="invalid_token"' if invalid else _CHALLENGE["WWW-Authenticate"]
    return ApiProblem(401, detail, type_="unauthorized", headers={"WWW-Authenticate": header})


def _nobody_configured(store: Store, settings: Settings) -> bool:
    return not settings.api_token and not users.has_users(store)


def _resolve(request: Request, credentials: HTTPAuthorizationCredentials | None, settings: Settings,
             store: Store) -> Principal:
    """The principal of a request (run in FastAPI's thread pool: argon2 and the store block)."""
    if credentials is not None:
        principal = users.authenticate(store, credentials.credentials, settings.api_token)
        if principal is not None:
            return principal
        if _nobody_configured(store, settings):
            raise _unauthorized(_NO_TOKEN)
        raise _unauthorized("wrong bearer token: unknown, revoked or rotated", invalid=True)
    principal = session_principal(request, store, settings.api_token)
    if principal is not None:
        if not csrf_header_ok(request):
            raise ApiProblem(403, f"the signed-in session's request lacks its CSRF token: send the header "
                             f"{CSRF_HEADER} from the dashboard page", type_="csrf")
        return principal
    if _nobody_configured(store, settings):
        raise _unauthorized(_NO_TOKEN)
    raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>' (a personal token from "
                        "'cohortlab users add', or COHORTLAB_API_TOKEN) or sign in on /signin")


_NO_TOKEN = ("state-changing routes are disabled: no API token is configured and there are no users; set "
             "COHORTLAB_API_TOKEN in the API's environment (the bootstrap admin) or add a user with "
             "'cohortlab users add NAME --role ...', and send 'Authorization: Bearer <token>'")


def current_principal(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                      settings: Settings = Depends(get_settings_dep),
                      store: Store = Depends(get_store)) -> Principal:
    """Dependency: who makes this state-changing request.

    A bearer token is resolved by :func:`manager.users.authenticate` (the bootstrap
    ``COHORTLAB_API_TOKEN`` = :data:`manager.users.BOOTSTRAP`, or a personal token of a user
    who is not revoked). Without one, a signed-in dashboard session
    (:func:`web.auth.session_principal`) counts, when the request carries the session's CSRF
    token in ``X-CSRF-Token``. The principal is also left on ``request.state.principal``,
    where the audit middleware (:class:`api.middleware.AuditMiddleware`) reads the actor.

    Raises:
        ApiProblem: 401 without credentials or with a token that stands for nobody (the
            message says to set ``COHORTLAB_API_TOKEN`` when there is neither a bootstrap
            token nor any user); 403 for a session request without its CSRF token.
    """
    principal = _resolve(request, credentials, settings, store)
    request.state.principal = principal
    return principal


def require_token(principal: Principal = Depends(current_principal)) -> None:
    """Dependency of state-changing routes open to every authenticated principal (any role):
    a thin wrapper of :func:`current_principal`.

    Raises:
        ApiProblem: 401/403 as :func:`current_principal`.
    """


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


# -- roles ----------------------------------------------------------------------------------


TOKEN_PRINCIPAL = users.BOOTSTRAP
"""The principal of a request carrying ``COHORTLAB_API_TOKEN``: the bootstrap admin
(kept under its old name for compatibility)."""


def require_role(*roles: str):
    """A dependency returning the :func:`current_principal` when its role is one of ``roles``.

    Raises (from the dependency):
        ApiProblem: 401 as :func:`current_principal`; 403 ``forbidden`` naming the user, its
            role and the roles needed.
    """
    allowed = frozenset(roles)

    def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in allowed:
            raise ApiProblem(403, f"user {principal.name!r} (role {principal.role}) may not do this; needs the "
                             f"role {' or '.join(sorted(allowed))}", type_="forbidden")
        return principal

    dependency.__name__ = f"require_role_{'_'.join(sorted(allowed))}"
    return dependency


def require_permission(action: str):
    """:func:`require_role` with the roles :data:`manager.users.PERMISSIONS` allows for
    ``action`` (``"launch"``, ``"kill_switch"``, ``"propose"``, ``"approve:ops"``, ...): the
    routes name actions, the matrix stays in one place.

    Raises:
        KeyError: an unknown action (when the route is defined).
    """
    dependency = require_role(*users.roles_for(action))
    dependency.__name__ = f"require_permission_{action.replace(':', '_')}"
    return dependency
