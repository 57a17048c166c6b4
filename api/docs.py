"""The API's interactive documentation, served without any CDN (works offline).

FastAPI's default ``/docs`` and ``/redoc`` load Swagger UI and ReDoc (and a
favicon, and ReDoc's Google fonts) from other hosts, so without a network they
are blank pages. :func:`install_docs` replaces them, following FastAPI's
"Custom Docs UI Static Assets" recipe (the app is built with
``docs_url=None, redoc_url=None``):

``GET /docs``
    Swagger UI (:func:`fastapi.openapi.docs.get_swagger_ui_html`) on ``/openapi.json``;
    the online validator badge is off (it would call another host).
``GET /docs/oauth2-redirect``
    Swagger UI's OAuth2 redirect page.
``GET /redoc``
    ReDoc (:func:`fastapi.openapi.docs.get_redoc_html`) without Google fonts.
``GET /static/vendor/swagger-ui/{swagger-ui-bundle.js, swagger-ui.css, favicon-32x32.png}``
    From the npm package ``swagger-ui-dist``.
``GET /static/vendor/redoc/redoc.standalone.js``
    From the npm package ``redoc`` (2.x, the major FastAPI's default page uses), with
    one change (:data:`REWRITES`): ReDoc 2 always draws a "API docs by Redocly" logo
    image from ``cdn.redoc.ly``; its URL is replaced by an empty ``data:`` URL, so the
    image fails to load locally and ReDoc's own ``onError`` hides it (the text link stays).

Both npm packages are listed next to htmx in ``web/package.json`` and installed
into ``web/node_modules`` by ``npm install --prefix web`` (``COHORTLAB_WEB_NODE_MODULES``
names another ``node_modules``, as for htmx). When they are missing, the pages
and the asset routes answer 503 with that hint instead of a blank page.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response

from web.vendor import node_modules

__all__ = ["DOCS_ASSETS", "REWRITES", "asset_bytes", "asset_path", "install_docs", "node_modules"]

NPM_HINT = ("run `npm install --prefix web` in the cohortlab checkout "
            "(installs swagger-ui-dist and redoc from web/package.json)")

SWAGGER_PREFIX = "/static/vendor/swagger-ui"
REDOC_PREFIX = "/static/vendor/redoc"

# URL -> (npm package, file inside it, media type)
DOCS_ASSETS: dict[str, tuple[str, str, str]] = {
    f"{SWAGGER_PREFIX}/swagger-ui-bundle.js": ("swagger-ui-dist", "swagger-ui-bundle.js",
                                               "text/javascript; charset=utf-8"),
    f"{SWAGGER_PREFIX}/swagger-ui.css": ("swagger-ui-dist", "swagger-ui.css", "text/css; charset=utf-8"),
    f"{SWAGGER_PREFIX}/favicon-32x32.png": ("swagger-ui-dist", "favicon-32x32.png", "image/png"),
    f"{REDOC_PREFIX}/redoc.standalone.js": ("redoc", "bundles/redoc.standalone.js",
                                            "text/javascript; charset=utf-8"),
}
SWAGGER_JS = f"{SWAGGER_PREFIX}/swagger-ui-bundle.js"
SWAGGER_CSS = f"{SWAGGER_PREFIX}/swagger-ui.css"
FAVICON = f"{SWAGGER_PREFIX}/favicon-32x32.png"
REDOC_JS = f"{REDOC_PREFIX}/redoc.standalone.js"

# URL -> (bytes, replacement) applied to the file before it is served: what the package
# would fetch from another host by itself
REWRITES: dict[str, tuple[tuple[bytes, bytes], ...]] = {
    REDOC_JS: ((b'"https://cdn.redoc.ly/redoc/logo-mini.svg"', b'"data:,"'),),
}

_ASSET_HEADERS = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}


def asset_path(url: str) -> Path:
    """The file served at ``url`` (a key of :data:`DOCS_ASSETS`)."""
    package, name, _ = DOCS_ASSETS[url]
    return node_modules() / package / name


def _missing(*urls: str) -> list[Path]:
    return [asset_path(url) for url in urls if not asset_path(url).is_file()]


def _not_installed(paths: list[Path]) -> HTMLResponse:
    from html import escape

    files = "".join(f"<li><code>{escape(p.parent.name + '/' + p.name)}</code></li>" for p in paths)
    return HTMLResponse(
        "<!DOCTYPE html><html><head><title>API docs unavailable</title></head><body>"
        f"<h1>API docs unavailable</h1><p>Their assets are not installed: {escape(NPM_HINT)}.</p>"
        f"<ul>{files}</ul><p>The OpenAPI schema is at <a href=\"/openapi.json\">/openapi.json</a>.</p>"
        "</body></html>", status_code=503)


@lru_cache(maxsize=4)
def _rewritten(url: str, path: Path, mtime_ns: int, size: int) -> bytes:
    body = path.read_bytes()
    for old, new in REWRITES[url]:
        body = body.replace(old, new)
    return body


def asset_bytes(url: str) -> bytes:
    """The body served at ``url``: the package's file, with :data:`REWRITES` applied."""
    path = asset_path(url)
    if url not in REWRITES:
        return path.read_bytes()
    stat = path.stat()
    return _rewritten(url, path, stat.st_mtime_ns, stat.st_size)


def _asset_route(url: str):
    def serve() -> Response:
        path = asset_path(url)
        media = DOCS_ASSETS[url][2]
        if not path.is_file():
            return PlainTextResponse(f"{path.name} is not installed: {NPM_HINT}", status_code=503)
        if url in REWRITES:
            return Response(asset_bytes(url), media_type=media, headers=_ASSET_HEADERS)
        return FileResponse(path, media_type=media, headers=_ASSET_HEADERS)

    serve.__name__ = "docs_asset_" + url.rsplit("/", 1)[-1].replace(".", "_").replace("-", "_")
    return serve


DOCS_POLICY = ("default-src 'self'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""The Content-Security-Policy of the docs pages: the app's default (:mod:`api.middleware`)
plus the SHA-256 hash of each inline ``<script>`` the page holds (Swagger UI's bootstrap),
so no ``'unsafe-inline'`` is needed for scripts."""

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def with_script_hashes(response: HTMLResponse) -> HTMLResponse:
    """``response`` with a ``Content-Security-Policy`` (:data:`DOCS_POLICY`) allowing exactly
    its inline scripts, by hash."""
    hashes = "".join(f" 'sha256-{base64.b64encode(hashlib.sha256(body).digest()).decode()}'"
                     for body in _INLINE_SCRIPT.findall(response.body))
    response.headers["Content-Security-Policy"] = DOCS_POLICY.format(hashes=hashes)
    return response


def install_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/docs/oauth2-redirect``, ``/redoc`` and their local assets to ``app``
    (built with ``docs_url=None, redoc_url=None``)."""
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    router = APIRouter(include_in_schema=False)

    @router.get("/docs", response_class=HTMLResponse)
    def swagger_ui() -> HTMLResponse:
        missing = _missing(SWAGGER_JS, SWAGGER_CSS)
        if missing:
            return _not_installed(missing)
        return with_script_hashes(get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - Swagger UI",
            swagger_js_url=SWAGGER_JS, swagger_css_url=SWAGGER_CSS, swagger_favicon_url=FAVICON,
            oauth2_redirect_url=oauth2_redirect_url,
            # the online validator badge would fetch an image from another host
            swagger_ui_parameters={"validatorUrl": None}))

    @router.get(oauth2_redirect_url, response_class=HTMLResponse)
    def swagger_ui_redirect() -> HTMLResponse:
        return with_script_hashes(get_swagger_ui_oauth2_redirect_html())

    @router.get("/redoc", response_class=HTMLResponse)
    def redoc() -> HTMLResponse:
        missing = _missing(REDOC_JS)
        if missing:
            return _not_installed(missing)
        return with_script_hashes(get_redoc_html(openapi_url=openapi_url, title=f"{app.title} - ReDoc",
                                                 redoc_js_url=REDOC_JS, redoc_favicon_url=FAVICON,
                                                 with_google_fonts=False))

    for url in DOCS_ASSETS:
        router.add_api_route(url, _asset_route(url), methods=["GET"])
    app.include_router(router)
