"""The dashboard's static files and vendored libraries, served from this host.

``GET /static/vendor/plotly.min.js``
    plotly.js from the installed ``plotly`` Python package (503 with a reinstall
    hint when missing).
``GET /static/vendor/htmx.min.js``
    htmx from the npm package ``htmx.org`` in ``web/node_modules`` (503 saying to
    run ``npm install --prefix web`` when missing; see :mod:`web.vendor`).
``GET /static/{name}``
    The dashboard's own files in ``web/static`` (``cohortlab.css``, ``cohortlab.js``,
    ``favicon.svg``); no sub-folders; unknown names are the HTML 404 page.

Every asset is sent with ``Cache-Control: public, max-age=3600`` and
``X-Content-Type-Options: nosniff``.
"""
from __future__ import annotations

from pathlib import Path

from fastapi.responses import FileResponse, PlainTextResponse, Response

from web.errors import PageError, html_router
from web.vendor import NPM_HINT, htmx_path, plotly_path

__all__ = ["STATIC_DIR", "router"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""``web/static``: the dashboard's own stylesheet, script and icon."""

_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}
_ASSET_HEADERS = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}

router = html_router()
"""The asset routes (included by :data:`web.routes.router`)."""


@router.get("/static/vendor/plotly.min.js")
def plotly_js() -> Response:
    """plotly.js from the installed ``plotly`` Python package."""
    path = plotly_path()
    if not path.is_file():
        return PlainTextResponse(
            f"plotly.min.js is missing from the installed plotly package ({path}); reinstall it: "
            "pip install 'plotly>=5'", status_code=503)
    return FileResponse(path, media_type="text/javascript; charset=utf-8", headers=_ASSET_HEADERS)


@router.get("/static/vendor/htmx.min.js")
def htmx_js() -> Response:
    """htmx from ``web/node_modules`` (npm package ``htmx.org``)."""
    path = htmx_path()
    if not path.is_file():
        return PlainTextResponse(f"htmx.min.js is not installed ({path}): {NPM_HINT}", status_code=503)
    return FileResponse(path, media_type="text/javascript; charset=utf-8", headers=_ASSET_HEADERS)


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The dashboard's own files in ``web/static`` (no sub-folders).

    Raises:
        PageError: 404 for a name that is not a file of a served type in ``web/static``.
    """
    path = (STATIC_DIR / name).resolve()
    media = _STATIC_TYPES.get(path.suffix)
    if media is None or path.parent != STATIC_DIR or not path.is_file():
        raise PageError(404, "Not found", f"There is no static file {name!r}.")
    return FileResponse(path, media_type=media, headers=_ASSET_HEADERS)
