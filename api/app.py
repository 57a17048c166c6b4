"""The cohortlab HTTP API (FastAPI): ``uvicorn api.app:app``.

Routes:

``GET /healthz``
    Opens the store named by ``COHORTLAB_STORE`` (read on every call, via
    :func:`manager.store.open_store`), reads one run from it and closes it.
    200 ``{"status": "ok", "store": KIND}`` when that works, 503
    ``{"status": "unavailable", "store": KIND, "error": ...}`` when it does not.
    ``KIND`` is the store adapter (the URL's scheme: ``sqlite``, ``mongodb``), never
    the URL: the route needs no token, so it shows no server path and no password
    (nor does ``error``). Used by the container ``HEALTHCHECK`` and by docker compose.

``GET /metrics``
    The Prometheus text exposition of :func:`manager.metrics.exposition`,
    aggregated over processes when ``PROMETHEUS_MULTIPROC_DIR`` is set (several
    uvicorn workers).

``GET /readyz`` and the JSON API (``/api/...``)
    The routers of :mod:`api.routers` (cohorts, experiments, jobs, assistant, risk);
    errors are RFC 9457 problem documents (:mod:`api.problems`); every request's
    latency goes to ``cohortlab_request_latency_seconds`` (:mod:`api.middleware`),
    exposed by the same ``/metrics``. The dashboard's routes (``web.routes``) are
    mounted when that module exists.

``GET /docs``, ``GET /redoc``
    Swagger UI and ReDoc on ``/openapi.json``, their assets served locally from the
    npm packages ``swagger-ui-dist`` and ``redoc`` (:mod:`api.docs`): they work offline.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.responses import JSONResponse

import manager.metrics as metrics
import manager.store as store_module

__all__ = ["app", "create_app", "ops_router"]

_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")

ops_router = APIRouter(tags=["operations"])


def _redact(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", url)


def _store_url() -> str:
    """The configured store URL (``COHORTLAB_STORE``), redacted; read now."""
    from manager.settings import get_settings

    return _redact(get_settings().store)


def _store_kind() -> str:
    """The configured store's adapter kind: the scheme of ``COHORTLAB_STORE`` (``sqlite``,
    ``mongodb``, ...; ``unknown`` without one). No path, host or password."""
    scheme, sep, _ = _store_url().partition("://")
    return scheme.split("+", 1)[0].lower() if sep and scheme.replace("+", "").isalnum() else "unknown"


@ops_router.get("/healthz", summary="Liveness and store check")
def healthz() -> JSONResponse:
    """200 when the store opens and answers a one-run query, else 503.

    A plain ``def``: FastAPI runs it in its thread pool, so a slow store never
    blocks the event loop.
    """
    from manager.data_roots import public_path

    url = "unknown"
    try:
        url = _store_kind()
        with store_module.open_store() as store:
            store.list_runs(limit=1)
    except store_module.StoreError as exc:
        # StoreError messages never echo passwords (manager.store redacts them); paths are
        # cut to their last component (public_path)
        return _unavailable(url, public_path(str(exc)))
    except Exception as exc:  # settings that do not validate, driver errors, ...
        # Only the class name: an arbitrary message might contain a secret.
        return _unavailable(url, f"{type(exc).__name__} while opening the store")
    return JSONResponse({"status": "ok", "store": url})


def _unavailable(url: str, error: str) -> JSONResponse:
    return JSONResponse({"status": "unavailable", "store": url, "error": error}, status_code=503)


@ops_router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def prometheus_metrics() -> Response:
    """Prometheus text exposition of the cohortlab registry."""
    body, content_type = metrics.exposition()
    return Response(content=body, headers={"Content-Type": content_type})


@contextlib.asynccontextmanager
async def _lifespan(application: FastAPI) -> AsyncIterator[None]:
    """Recover the in-process runs a dead API process left ``running`` (reason
    ``interrupted``), at startup and then every lease period (:mod:`manager.recovery`)."""
    from manager.recovery import RecoverySweep
    from manager.services import shared_store

    sweep = RecoverySweep(shared_store).start()
    try:
        yield
    finally:
        sweep.stop()


def create_app() -> FastAPI:
    """A new API application: operations routes (``/healthz``, ``/readyz``, ``/metrics``),
    the JSON API routers, problem-document error handlers, request-latency metrics and,
    when present, the dashboard (``web.routes``)."""
    from api.deps import single_query_values
    from api.docs import install_docs
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from api.middleware import (AuditMiddleware, RequestLatencyMiddleware, SecurityHeadersMiddleware,
                                SessionCookieMiddleware, allowed_hosts, session_secret)
    from api.problems import install_problem_handlers
    from api.routers import API_DESCRIPTION, ROUTERS

    application = FastAPI(
        title="cohortlab",
        summary="Intraday cohorts of evolved trading agents on one shared parent bankroll",
        description=API_DESCRIPTION,
        version=_version(),
        # /docs and /redoc are served with local assets (api.docs), never from a CDN
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(single_query_values)],
        lifespan=_lifespan,
    )
    install_docs(application)
    application.include_router(ops_router)
    for router in ROUTERS:
        application.include_router(router)
    install_problem_handlers(application)
    application.add_middleware(RequestLatencyMiddleware)
    # audit inside the session: the principal is known once the route ran (request.state)
    application.add_middleware(AuditMiddleware)
    application.add_middleware(SessionCookieMiddleware, secret=session_secret())
    # added last = outermost: a foreign Host is refused (400) before anything runs, and
    # that answer gets the security headers too
    application.add_middleware(SecurityHeadersMiddleware)
    application.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(), www_redirect=False)
    try:
        import web.routes as web_routes
    except ModuleNotFoundError as exc:  # no dashboard in this build; a broken one still fails loudly
        if exc.name not in ("web", "web.routes"):
            raise
    else:
        application.include_router(web_routes.router)
    return application



def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cohortlab")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


app = create_app()
"""The application uvicorn serves (``uvicorn api.app:app``)."""
