"""ASGI middleware: request latency, security headers, the ``Host`` allow-list.

:class:`RequestLatencyMiddleware` records the latency of every HTTP request in
``cohortlab_request_latency_seconds{method, route, status}`` (:mod:`manager.metrics`).
:class:`SecurityHeadersMiddleware` adds a Content-Security-Policy, ``X-Frame-Options``,
``X-Content-Type-Options`` and ``Referrer-Policy`` to every response;
:func:`allowed_hosts` is the list Starlette's ``TrustedHostMiddleware`` checks the
``Host`` header against (a 400 otherwise: DNS rebinding).

``route`` is the matched route's template (``/api/cohorts/{run_id}``), never the raw
path, so ids do not multiply the label set; ``<unmatched>`` when no route matched.
A request that raised is recorded with status 500.

:class:`AuditMiddleware` records every successful state-changing request as an audit
event with its actor (issue 13); :class:`SessionCookieMiddleware` is the dashboard's signed
session cookie (``Secure`` over https).
"""
from __future__ import annotations

import logging
import time

from manager import metrics

log = logging.getLogger("cohortlab.api")

UNMATCHED = "<unmatched>"


def route_template(scope: dict) -> str:
    """The template of the route an ASGI ``scope`` matched (``/api/cohorts/{run_id}``), or
    :data:`UNMATCHED` when no route matched."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    return getattr(route, "path_format", None) or getattr(route, "path", None) or UNMATCHED


class RequestLatencyMiddleware:
    """Pure ASGI (streams untouched; works with every response type)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics.record_request(scope.get("method", "?"), route_template(scope), status,
                                   time.perf_counter() - t0)


# ----------------------------------------------------------------- security headers and hosts

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'")
"""The default policy: scripts only from this origin (the dashboard has no inline script: its
figures are ``<script type="application/json">`` data read by ``/static/cohortlab.js``); inline
styles allowed (Plotly and htmx inject ``<style>``); no framing. A response that sets its own
``Content-Security-Policy`` keeps it (``/docs`` adds the hash of its inline bootstrap script)."""

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
"""Added to every HTTP response (unless the response already has that header)."""


def allowed_hosts(settings=None) -> list[str]:
    """``Host`` values the server answers: ``COHORTLAB_ALLOWED_HOSTS`` when set, else
    ``localhost``, ``127.0.0.1``, ``::1`` and the bind host (``COHORTLAB_API_HOST``).
    IPv6 literals are allowed with and without brackets (``[::1]``, as a ``Host`` header holds them)."""
    if settings is None:
        from manager.settings import get_settings

        try:
            settings = get_settings()
        except Exception:  # noqa: BLE001 - bad settings: /healthz says so; answer this machine only
            settings = None
    if settings is None:
        hosts = ["localhost", "127.0.0.1", "::1"]
    else:
        hosts = list(settings.allowed_hosts) or ["localhost", "127.0.0.1", "::1", settings.api_host]
    out: list[str] = []
    for host in hosts:
        host = host.strip().lower()
        forms = [host]
        if ":" in host and not host.startswith("["):
            forms.append(f"[{host}]")
        out += [h for h in forms if h and h not in out]
    return out


class SecurityHeadersMiddleware:
    """Pure ASGI: adds :data:`SECURITY_HEADERS` and, unless the response has its own,
    ``Content-Security-Policy: <policy>`` (:data:`CONTENT_SECURITY_POLICY`) to every HTTP
    response (API, dashboard, static files, errors)."""

    def __init__(self, app, policy: str = CONTENT_SECURITY_POLICY) -> None:
        self.app = app
        self.policy = policy.encode("latin-1")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(b"content-security-policy", self.policy)] if b"content-security-policy" not in present \
                    else []
                extra += [(name, value) for name, value in SECURITY_HEADERS if name not in present]
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, send_wrapper)


# ----------------------------------------------------------------- audit of state changes

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods whose successful requests are audited by :class:`AuditMiddleware`."""


def _record_request(principal, method: str, route: str, status: int) -> None:
    from manager import services, users

    try:
        users.record_request(services.shared_store(), principal, method, route, status)
    except Exception:  # noqa: BLE001 - the change is done; a lost audit event is logged loudly
        log.error("could not record the audit event of %s %s (%s)", method, route, status, exc_info=True)


class AuditMiddleware:
    """Pure ASGI: every successful (status < 400) state-changing request -- POST, PUT, PATCH,
    DELETE, on ``/api`` and on the dashboard's forms alike -- is recorded as an audit event
    (:func:`manager.users.record_request`: kind ``http.request``, actor ``user:<name>`` /
    ``admin:bootstrap`` from ``request.state.principal``, which :func:`api.deps.current_principal`
    and the sign-in pages set; ``anonymous`` otherwise; details ``method``, ``route`` template
    and ``status``). The event is written before the response starts, so a client that sees
    the answer finds the event. The one place requests are audited: routes do nothing for it."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") not in STATE_CHANGING:
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                from starlette.concurrency import run_in_threadpool

                principal = (scope.get("state") or {}).get("principal")
                await run_in_threadpool(_record_request, principal, scope["method"], route_template(scope),
                                        message["status"])
            await send(message)

        await self.app(scope, receive, send_wrapper)


# ----------------------------------------------------------------- session cookie

SESSION_COOKIE = "cohortlab_session"
"""Name of the dashboard's signed session cookie."""

SESSION_MAX_AGE = 12 * 3600
"""Seconds a session lives without a new request (12 hours)."""


def session_secret(settings=None) -> str:
    """``COHORTLAB_SESSION_SECRET``, else a random key for this process (logged as a warning:
    sessions then end when the server restarts and are not shared between workers)."""
    if settings is None:
        from manager.settings import get_settings

        try:
            settings = get_settings()
        except Exception:  # noqa: BLE001 - bad settings: /healthz says so
            settings = None
    secret = getattr(settings, "session_secret", None)
    if secret:
        return secret
    log.warning("COHORTLAB_SESSION_SECRET is not set: dashboard sessions are signed with a random key of this "
                "process and end when it restarts; set it to keep sessions (and share them between workers)")
    import secrets

    return secrets.token_urlsafe(48)


class SessionCookieMiddleware:
    """Starlette's ``SessionMiddleware`` (signed cookie :data:`SESSION_COOKIE`, ``HttpOnly``,
    ``SameSite=Lax``) with ``Secure`` set when the request came over https (scheme ``https``,
    e.g. uvicorn behind TLS or with ``--proxy-headers``), not set over plain http."""

    def __init__(self, app, secret: str, max_age: int = SESSION_MAX_AGE) -> None:
        from starlette.middleware.sessions import SessionMiddleware

        options = {"secret_key": secret, "session_cookie": SESSION_COOKIE, "max_age": max_age, "same_site": "lax"}
        self.plain = SessionMiddleware(app, https_only=False, **options)
        self.secure = SessionMiddleware(app, https_only=True, **options)
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        handler = self.secure if scope.get("scheme") == "https" else self.plain
        await handler(scope, receive, send)
