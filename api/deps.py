"""FastAPI dependencies: the settings, the shared store, and bearer-token auth.

``get_store`` hands every request the process-wide store for the configured
``COHORTLAB_STORE`` URL (opened on first use, re-opened when the URL changes).
Both adapters may be shared by threads (SQLite: one connection behind a lock;
MongoDB: one client pool), so a request never pays for opening a database.
The dashboard (``web/``) uses the same dependency::

    from api.deps import get_store
    from api import queries

    @router.get("/trading/cohorts/{run_id}")
    def page(run_id: str, store: Store = Depends(get_store)):
        data = queries.cohort_detail(store, run_id)

Auth: state-changing routes depend on :func:`require_token`. They need
``Authorization: Bearer <COHORTLAB_API_TOKEN>``; when no token is configured they
are refused (401) with a message saying to set ``COHORTLAB_API_TOKEN``. Read-only
routes are open: bind the API to ``127.0.0.1`` (the default of ``cohortlab
serve``) or put it behind a proxy that authenticates.
"""
from __future__ import annotations

import os
import secrets
import threading

from collections import Counter

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

import manager.store as store_module
from api.problems import ApiProblem
from manager.settings import Settings, get_settings
from manager.store import Store, StoreError

__all__ = ["bearer", "close_shared_store", "current_settings", "get_settings_dep", "get_store", "require_token",
           "shared_store"]

_lock = threading.Lock()
_shared: tuple[str, Store] | None = None
_settings_cache: tuple[tuple, Settings] | None = None


def current_settings() -> Settings:
    """The settings for the environment as it is now.

    Parsing the settings costs about a millisecond, so the parsed object is reused
    while no ``COHORTLAB_*`` variable changed (a snapshot of them is compared on
    every call); a changed variable is picked up by the next request.

    Raises:
        StoreError: the settings do not validate (answered 503 like a store outage).
    """
    global _settings_cache
    key = tuple(sorted((k.upper(), v) for k, v in os.environ.items() if k.upper().startswith("COHORTLAB_")))
    cached = _settings_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    try:
        settings = get_settings()
    except ValueError as exc:  # pydantic ValidationError: a bad COHORTLAB_* variable
        raise StoreError(f"the COHORTLAB_* settings do not validate ({type(exc).__name__})") from exc
    _settings_cache = (key, settings)
    return settings


def get_settings_dep() -> Settings:
    """Dependency: :func:`current_settings`."""
    return current_settings()


def shared_store(url: str | None = None) -> Store:
    """The process-wide store for ``url`` (default: the ``store`` setting, read now).

    Raises:
        StoreError: the store cannot be opened.
    """
    global _shared
    url = url or current_settings().store
    current = _shared
    if current is not None and current[0] == url:
        return current[1]
    with _lock:
        if _shared is not None and _shared[0] == url:
            return _shared[1]
        store = store_module.open_store(url)
        old, _shared = _shared, (url, store)
    if old is not None:
        try:
            old[1].close()
        except Exception:  # noqa: BLE001 - closing a replaced store is best effort
            pass
    return store


def close_shared_store() -> None:
    """Close the process-wide store (tests, shutdown); the next request reopens it."""
    global _shared
    with _lock:
        old, _shared = _shared, None
    if old is not None:
        old[1].close()


def get_store() -> Store:
    """Dependency: the process-wide store (see the module docstring)."""
    return shared_store()


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
    from api.problems import ApiProblem

    counts = Counter(k for k, _ in request.query_params.multi_items())
    repeated = sorted(k for k, n in counts.items() if n > 1)
    if repeated:
        errors = [{"field": k, "message": "given more than once; give each query parameter once"} for k in repeated]
        raise ApiProblem(422, f"query parameter(s) given more than once: {', '.join(repeated)}",
                         type_="validation-error", title="Request validation failed", errors=errors)

