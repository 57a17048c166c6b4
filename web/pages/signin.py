"""``GET /signin``, ``POST /signin``, ``POST /signout``: dashboard sign-in (issue 13).

Sign in with a user name and its personal token (``cohortlab users add``), or with the
bootstrap token ``COHORTLAB_API_TOKEN`` and no name (the bootstrap admin). Success starts a
fresh signed session (:func:`web.auth.sign_in`) and redirects (303) to ``next`` (a path on
this site only) or the cohort list; failure shows the form again with 401. Both POSTs need
the session's CSRF token (:func:`web.auth.check_csrf`, on every dashboard route). The
principal is left on ``request.state.principal`` for the audit middleware (:mod:`api.middleware`).
"""
from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from manager import services, users
from manager.users import Principal
from web.auth import form_data, shown_user, sign_in, sign_out
from web.errors import html_router
from web.templating import render

__all__ = ["router", "safe_next"]

router = html_router()

_DEFAULT_NEXT = "/trading/cohorts"


def safe_next(value: str | None) -> str:
    """``value`` when it is a path on this site (``/...``, not ``//host`` nor ``/\\host``), else the cohort list."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")) and "\n" not in value \
            and "\r" not in value:
        return value
    return _DEFAULT_NEXT


def _page(request: Request, *, name: str = "", next_url: str = _DEFAULT_NEXT, error: str | None = None,
          status_code: int = 200) -> HTMLResponse:
    return render(request, "signin.html", {"nav": "signin", "name": name, "next_url": next_url, "error": error},
                  status_code=status_code)


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002 - the query's name
    """The sign-in form."""
    return _page(request, next_url=safe_next(next))


def _authenticate(name: str, token: str) -> tuple[Principal | None, str]:
    store = services.shared_store()
    principal = users.authenticate(store, token, services.current_settings().api_token)
    if principal is None or (name and name != principal.name) or (not name and not principal.is_bootstrap):
        return None, ""
    return principal, users.session_stamp(store, principal)


@router.post("/signin", response_class=HTMLResponse)
async def signin_submit(request: Request) -> Response:
    """Check the name and token; start a session and redirect (303), or show the form with 401."""
    form = await form_data(request)
    name, token = form.get("name", "").strip(), form.get("token", "").strip()
    next_url = safe_next(form.get("next"))
    principal, stamp = await run_in_threadpool(_authenticate, name, token)
    if principal is None:
        return _page(request, name=name, next_url=next_url, status_code=401,
                     error="Sign-in refused: unknown user, wrong or revoked token. Give your user name with "
                           "your personal token, or no name with the bootstrap token.")
    sign_in(request, principal, stamp)
    request.state.principal = principal
    return RedirectResponse(next_url, status_code=303)


@router.post("/signout", response_class=HTMLResponse)
async def signout(request: Request) -> Response:
    """End the session and go to the cohort list (303)."""
    shown = shown_user(request)
    if shown:
        request.state.principal = Principal(shown["name"], shown["role"])
    sign_out(request)
    return RedirectResponse(_DEFAULT_NEXT, status_code=303)



