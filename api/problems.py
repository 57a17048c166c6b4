"""RFC 9457 problem documents for every error the API answers.

Every 4xx/5xx response of the JSON API is ``application/problem+json``::

    {"type": "urn:cohortlab:problem:validation-error",
     "title": "Request validation failed",
     "status": 422,
     "detail": "bankroll: Input should be greater than or equal to 50",
     "errors": [{"field": "bankroll", "message": "Input should be greater than or equal to 50"}]}

``errors`` lists one entry per invalid field (empty for other problems); ``field``
is the dotted name inside its location (``bankroll``, ``symbols.0``, ``page``),
``body`` for a body that is not JSON at all.

Handlers installed by :func:`install_problem_handlers`:

========================================  ======  ===========================================
raised                                    status  ``type`` (``urn:cohortlab:problem:...``)
========================================  ======  ===========================================
:class:`ApiProblem` (routers)             any     as given
FastAPI ``RequestValidationError``        422     ``validation-error``
:class:`manager.store.NotFound`           404     ``not-found``
:class:`manager.store.InvalidDocument`    400     ``bad-request``
:class:`manager.read_model.QueryError`    422     ``validation-error``
:class:`manager.read_model.Unsupported`   501     ``not-supported``
other :class:`manager.store.StoreError`   503     ``store-unavailable`` (message not echoed)
Starlette ``HTTPException`` (404, 405..)  its     ``http-<status>``
anything else                             500     ``internal-error`` (logged, never shown)
========================================  ======  ===========================================

Stack traces and exception messages of unexpected errors never reach the client;
they go to the ``cohortlab.api`` logger.
"""
from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from manager.read_model import QueryError, Unsupported
from manager.store import InvalidDocument, NotFound, StoreError

__all__ = ["PROBLEM_JSON", "ApiProblem", "FieldError", "Problem", "install_problem_handlers",
           "problem_response", "problem_responses"]

log = logging.getLogger("cohortlab.api")

PROBLEM_JSON = "application/problem+json"
_URN = "urn:cohortlab:problem:"
_LOCATIONS = ("body", "query", "path", "header", "cookie")


class FieldError(BaseModel):
    """One invalid input field."""

    field: str = Field(description="Dotted field name within its location, e.g. `bankroll`, `symbols.0`, `page`.")
    message: str = Field(description="What is wrong with it.")


class Problem(BaseModel):
    """An RFC 9457 problem document (`application/problem+json`)."""

    type: str = Field(description="URI identifying the problem type (`urn:cohortlab:problem:<name>`).")
    title: str = Field(description="Short summary of the problem type.")
    status: int = Field(description="HTTP status code.")
    detail: str = Field(description="What went wrong in this request, in words.")
    errors: list[FieldError] = Field(default_factory=list, description="Invalid fields (validation errors).")


class ApiProblem(Exception):
    """Raise from a route to answer with a problem document.

    Args:
        status: HTTP status code.
        detail: human-readable explanation for this request.
        type_: problem type suffix (``urn:cohortlab:problem:<type_>``); default
            ``http-<status>``.
        title: default: the HTTP status phrase.
        errors: ``[{"field", "message"}]``.
        headers: extra response headers (e.g. ``WWW-Authenticate``).
    """

    def __init__(self, status: int, detail: str, *, type_: str | None = None, title: str | None = None,
                 errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.type_, self.title = status, detail, type_, title
        self.errors, self.headers = errors or [], headers


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(status: int, detail: str, *, type_: str | None = None, title: str | None = None,
                     errors: list[dict[str, str]] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    """A ``application/problem+json`` response."""
    body = {"type": _URN + (type_ or f"http-{status}"), "title": title or _phrase(status), "status": status,
            "detail": detail, "errors": errors or []}
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem documents for ``statuses``."""
    descriptions = {400: "Bad request", 401: "Missing or wrong bearer token, or no token configured",
                    404: "No such resource", 422: "Invalid input; `errors` names each field",
                    500: "Unexpected error (details are logged, not returned)",
                    501: "Not supported by the configured store", 503: "A backing service is unavailable"}
    return {s: {"model": Problem, "description": descriptions.get(s, _phrase(s)),
                "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for s in statuses}


def field_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """``[{"field", "message"}]`` from a FastAPI validation error."""
    out = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        if len(loc) > 1 and loc[0] in _LOCATIONS:
            loc = loc[1:]
        message = str(err.get("msg", "invalid value"))
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if err.get("type") == "json_invalid":
            loc = ["body"]
            message = f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})"
        out.append({"field": ".".join(loc) or "body", "message": message})
    return out


async def _api_problem(_: Request, exc: ApiProblem) -> JSONResponse:
    return problem_response(exc.status, exc.detail, type_=exc.type_, title=exc.title, errors=exc.errors,
                            headers=exc.headers)


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = field_errors(exc)
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    if len(errors) > 5:
        detail += f"; and {len(errors) - 5} more"
    return problem_response(422, detail or "invalid request", type_="validation-error",
                            title="Request validation failed", errors=errors)


async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
    return problem_response(404, str(exc), type_="not-found")


async def _invalid(_: Request, exc: InvalidDocument) -> JSONResponse:
    return problem_response(400, str(exc), type_="bad-request")


async def _query_error(_: Request, exc: Exception) -> JSONResponse:
    return problem_response(422, str(exc), type_="validation-error", title="Request validation failed")


async def _unsupported(_: Request, exc: Exception) -> JSONResponse:
    return problem_response(501, str(exc), type_="not-supported")


async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
    log.error("store error on %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return problem_response(503, "the store is unavailable or failed; try again later (details are logged)",
                            type_="store-unavailable")


async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
    if detail == _phrase(exc.status_code) and exc.status_code in (404, 405):  # the router's own, say more
        detail = (f"no resource at {request.url.path}" if exc.status_code == 404
                  else f"{request.method} is not allowed on {request.url.path}")
    return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "an unexpected error occurred; it has been logged", type_="internal-error")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with a problem document (table in the module docstring)."""
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(InvalidDocument, _invalid)
    app.add_exception_handler(QueryError, _query_error)
    app.add_exception_handler(Unsupported, _unsupported)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
