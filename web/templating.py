"""The dashboard's Jinja2 environment and page rendering.

Templates live in ``web/templates`` (pages) and ``web/templates/partials`` (the
fragments HTMX swaps). Autoescaping is on; values are formatted by the filters of
:mod:`web.formatting` (``money``, ``pct``, ``num``, ``sign``, ``dt``, ``basename``).
Every page gets ``request``, ``version``, ``assets_missing`` (the banner of
:func:`web.vendor.missing_assets`), ``csrf_token`` (the session's, :mod:`web.auth`) and
``signed_in`` (``{"name", "role"}`` or None) besides its own context.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from web.auth import csrf_token, shown_user
from web.formatting import FILTERS
from web.vendor import missing_assets

__all__ = ["TEMPLATES_DIR", "environment", "is_partial", "render"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
"""``web/templates``."""


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The dashboard's Jinja2 environment (built once per process): templates from
    :data:`TEMPLATES_DIR`, HTML autoescaping, chainable undefined values (a missing
    key renders as nothing), the :data:`web.formatting.FILTERS` and ``version``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(("html",), default=True),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.globals["version"] = _version()
    return env


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cohortlab")
    except PackageNotFoundError:  # pragma: no cover - bare checkout
        return "0.0.0"


def render(request: Request, template: str, context: Mapping[str, Any], status_code: int = 200,
           headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """``template`` (a path under ``web/templates``) rendered with ``context`` plus
    ``request`` and ``assets_missing``, as an HTML response.

    Raises:
        jinja2.TemplateError: the template is missing or broken.
    """
    ctx = {"request": request, "assets_missing": missing_assets(), "csrf_token": csrf_token(request),
           "signed_in": shown_user(request), **context}
    html = environment().get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def is_partial(request: Request) -> bool:
    """True for an HTMX swap (``HX-Request``), which gets only a partial; a history
    restore (``HX-History-Restore-Request``) needs the whole page."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"
