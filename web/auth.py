"""Dashboard sessions and CSRF (issue 13).

The session is Starlette's signed cookie (``SessionMiddleware``, installed by
:func:`api.app.create_app`): it holds the signed-in user's ``user``, ``role`` and
``stamp`` (:func:`manager.users.session_stamp`: a rotated token ends the session) and a
per-session CSRF token ``csrf``. Who a session stands for is re-checked against the store
on every state-changing request (:func:`manager.users.principal_of_session`: a revoked user
is signed out).

CSRF: every state-changing dashboard request (any method but GET/HEAD/OPTIONS) must carry
the session's token, in the form field ``csrf_token`` (every ``<form method="post">``
has it as a hidden field) or in the header ``X-CSRF-Token`` (HTMX sends it from the
``hx-headers`` of ``<body>``; the launch form's script too). :func:`check_csrf` is a
dependency of every dashboard route (:func:`web.errors.html_router`) and refuses a
missing or wrong token with the 403 page; :func:`csrf_header_ok` is the same check for
session-authenticated API requests (:mod:`api.deps`).
"""
from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request

from manager.users import Principal

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "SAFE_METHODS", "check_csrf", "csrf_header_ok", "csrf_token",
           "form_data", "session", "session_principal", "shown_user", "sign_in", "sign_out"]

CSRF_FIELD = "csrf_token"
"""The hidden form field holding the session's CSRF token."""

CSRF_HEADER = "X-CSRF-Token"
"""The request header holding it (HTMX, the launch form's fetch)."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods that change nothing and need no CSRF token."""


def session(request: Request) -> dict[str, Any]:
    """The request's session (a throwaway dict when no session middleware is installed)."""
    found = request.scope.get("session")
    return found if isinstance(found, dict) else {}


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    data = session(request)
    token = data.get("csrf")
    if not isinstance(token, str) or not token:
        token = data["csrf"] = secrets.token_urlsafe(32)
    return token


def _matches(request: Request, submitted: str | None) -> bool:
    expected = session(request).get("csrf")
    return bool(submitted and isinstance(expected, str) and expected
                and secrets.compare_digest(submitted.encode(), expected.encode()))


def csrf_header_ok(request: Request) -> bool:
    """Whether the ``X-CSRF-Token`` header equals the session's CSRF token."""
    return _matches(request, request.headers.get(CSRF_HEADER))


async def form_data(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body as ``{field: first value}`` (parsed with
    :func:`urllib.parse.parse_qs`; no python-multipart). Other bodies give ``{}``."""
    if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
        return {}
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


async def check_csrf(request: Request) -> None:
    """Dependency of every dashboard route: a state-changing request must carry the
    session's CSRF token (header ``X-CSRF-Token`` or form field ``csrf_token``).

    Raises:
        PageError: 403 with a page saying to reload and retry.
    """
    if request.method in SAFE_METHODS:
        return
    if csrf_header_ok(request) or _matches(request, (await form_data(request)).get(CSRF_FIELD)):
        return
    from web.errors import PageError  # web.errors imports this module

    raise PageError(403, "Request refused (CSRF)",
                    "This form's security token is missing or out of date, so nothing was changed. "
                    "Reload the page and try again.")


def session_principal(request: Request, store, bootstrap_token: str | None) -> Principal | None:
    """Who the session stands for, re-checked in ``store`` now (None: signed out, or the
    user was revoked or its token rotated since sign-in).

    Raises:
        StoreError: the store cannot be read.
    """
    from manager.users import principal_of_session

    data = session(request)
    return principal_of_session(store, data.get("user"), data.get("stamp"), bootstrap_token)


def sign_in(request: Request, principal: Principal, stamp: str) -> None:
    """Start a fresh session for ``principal`` (a new CSRF token: no session fixation)."""
    data = session(request)
    data.clear()
    data.update({"user": principal.name, "role": principal.role, "stamp": stamp,
                 "csrf": secrets.token_urlsafe(32)})


def sign_out(request: Request) -> None:
    """End the session (keeps a new CSRF token for the sign-in form)."""
    data = session(request)
    data.clear()
    data["csrf"] = secrets.token_urlsafe(32)


def shown_user(request: Request) -> dict[str, str] | None:
    """``{"name", "role"}`` of the signed-in user as the session says (for the header), or None."""
    data = session(request)
    if data.get("user") and data.get("role"):
        return {"name": str(data["user"]), "role": str(data["role"])}
    return None
