"""HTML error pages of the dashboard.

The app's exception handlers (:mod:`api.problems`) answer JSON problem documents;
an operator in a browser gets a page instead. Every dashboard route is an
:class:`HTMLErrorRoute` (routers made by :func:`html_router`), which answers:

=========================================  ======  =====================
raised                                     status  title
=========================================  ======  =====================
:class:`PageError`                         as given
FastAPI ``RequestValidationError``         400     Bad request
:class:`manager.store.NotFound`            404     Not found
other :class:`manager.store.StoreError`    503     Store unavailable (details logged)
Starlette ``HTTPException``                its     its reason phrase
anything else                              500     Something went wrong (logged, never shown)
=========================================  ======  =====================
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from http import HTTPStatus

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from manager.store import NotFound, StoreError
from web.auth import check_csrf
from web.templating import render

__all__ = ["HTMLErrorRoute", "PageError", "error_page", "html_router"]

log = logging.getLogger("cohortlab.web")


class PageError(Exception):
    """Raise from a dashboard route to answer with the HTML error page.

    Args:
        status: HTTP status code.
        title: the page's heading (``Cohort not found``).
        message: what went wrong, in words (shown, so never internals).
    """

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """The HTML error page (also for HTMX requests: the swap shows the message).

    Never raises: when the template itself cannot be rendered, a minimal page is returned.
    """
    try:
        return render(request, "error.html", {"status_code": status, "title": title, "message": message},
                      status_code=status)
    except Exception:  # noqa: BLE001 - a broken template must still give an answer
        log.exception("error page could not be rendered")
        return HTMLResponse(f"<!doctype html><title>{status}</title><h1>{status} {title}</h1>", status_code=status)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class HTMLErrorRoute(APIRoute):
    """A route whose errors are answered as HTML pages (see the module docstring), not
    problem documents. Unexpected errors are logged with their traceback and shown
    without details."""

    def get_route_handler(self) -> Callable:
        """The route's handler wrapped so that errors become :func:`error_page` answers."""
        handler = super().get_route_handler()

        async def html_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except PageError as exc:
                return error_page(request, exc.status, exc.title, exc.message)
            except RequestValidationError as exc:
                return error_page(request, 400, "Bad request", "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}" for e in exc.errors()))
            except NotFound as exc:
                return error_page(request, 404, "Not found", str(exc))
            except StoreError as exc:
                log.error("store error on %s %s", request.method, request.url.path, exc_info=exc)
                return error_page(request, 503, "Store unavailable",
                                  "The store could not be read. Try again in a moment; the details are in the "
                                  "server log.")
            except StarletteHTTPException as exc:
                return error_page(request, exc.status_code, _phrase(exc.status_code), str(exc.detail))
            except Exception as exc:  # noqa: BLE001 - the page must not leak internals
                log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
                return error_page(request, 500, "Something went wrong",
                                  "The dashboard hit an unexpected error. It has been logged.")

        return html_errors


def html_router() -> APIRouter:
    """A new router for dashboard routes: :class:`HTMLErrorRoute` routes, left out of the
    OpenAPI schema, tagged ``dashboard``, each checking the CSRF token of state-changing
    requests (:func:`web.auth.check_csrf`: 403 page without the session's token)."""
    return APIRouter(route_class=HTMLErrorRoute, include_in_schema=False, tags=["dashboard"],
                     dependencies=[Depends(check_csrf)])
