"""The vendored front-end libraries the dashboard loads: where they are and whether
they are installed.

They are never committed and never fetched from a CDN at run time (the dashboard
works offline):

* plotly.js ships inside the installed ``plotly`` Python package
  (``plotly/package_data/plotly.min.js``);
* htmx comes from the npm package ``htmx.org``, installed into ``web/node_modules``
  by ``npm install --prefix web`` (``COHORTLAB_WEB_NODE_MODULES`` names another
  ``node_modules`` folder).
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

__all__ = ["NPM_HINT", "htmx_path", "missing_assets", "node_modules", "plotly_path"]

NPM_HINT = "run `npm install --prefix web` in the cohortlab checkout (installs htmx.org from web/package.json)"
"""What to do when an npm asset is missing (shown in the banner and in the 503 of its route)."""


def node_modules() -> Path:
    """The ``node_modules`` folder of the npm assets: ``COHORTLAB_WEB_NODE_MODULES`` when
    set (read on every call), else ``web/node_modules`` next to this package."""
    base = os.environ.get("COHORTLAB_WEB_NODE_MODULES")
    return Path(base) if base else Path(__file__).resolve().parent / "node_modules"


def plotly_path() -> Path:
    """The plotly.js bundle inside the installed ``plotly`` package (it may be missing)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def htmx_path() -> Path:
    """``htmx.min.js`` of the npm package ``htmx.org`` under :func:`node_modules` (it may be missing)."""
    return node_modules() / "htmx.org" / "dist" / "htmx.min.js"


def missing_assets() -> list[str]:
    """One message per front-end library that is not installed (empty when all are),
    each saying how to install it; every page shows them as a banner."""
    missing = []
    if not htmx_path().is_file():
        missing.append(f"htmx is not installed ({htmx_path()}): {NPM_HINT}.")
    return missing
