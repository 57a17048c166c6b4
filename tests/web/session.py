"""Helpers of the dashboard tests that act as a signed-in user (not fixtures): the app's
``TestClient`` on the current ``COHORTLAB_STORE``, signing in through ``/signin``, and a
page's CSRF token."""
from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Iterator

from fastapi.testclient import TestClient

from api.app import create_app
from manager import services

_FORM_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_PAGE_CSRF = re.compile(r'"X-CSRF-Token": "([^"]+)"')


@contextmanager
def app_client() -> Iterator[TestClient]:
    """The whole app (API and dashboard) on a fresh shared store, redirects not followed."""
    services.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1",
                    follow_redirects=False) as c:
        yield c
    services.close_shared_store()


def page_csrf(client: TestClient, page: str) -> str:
    """The session's CSRF token as ``page`` hands it to HTMX (``X-CSRF-Token``)."""
    return _PAGE_CSRF.search(client.get(page).text).group(1)


def sign_in(client: TestClient, tokens: dict[str, str], name: str, page: str) -> str:
    """Sign ``name`` in with ``tokens[name]``; returns the session's CSRF token read off ``page``."""
    csrf = _FORM_CSRF.search(client.get("/signin").text).group(1)
    assert client.post("/signin", data={"name": name, "token": tokens[name], "csrf_token": csrf}).status_code == 303
    return page_csrf(client, page)
