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
"""
from __future__ import annotations

import time

from manager import metrics

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
