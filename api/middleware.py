"""ASGI middleware recording the latency of every HTTP request in
``cohortlab_request_latency_seconds{method, route, status}`` (:mod:`manager.metrics`).

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
