"""The operators' dashboard: server-rendered pages under ``/trading/cohorts``.

Mounted by :func:`api.app.create_app` with ``app.include_router(web.routes.router)``.
Pages are Jinja2 templates (``web/templates``); HTMX swaps partials (the cohort
table, the leaderboard, the progress card); Plotly figures are built server-side
(:mod:`web.figures`) and drawn by plotly.js. All data comes from the read layer
:mod:`api.queries` through the shared store (:func:`api.deps.get_store`).

Pages and partials (all ``text/html``):

``GET /trading/cohorts``
    Cohort list. Query: ``date`` (``YYYY-MM-DD``, traded UTC day), ``bankroll``
    (quote currency), ``page`` (1-based), ``page_size`` (1-100, default 20). With
    ``HX-Request`` (and no history restore) only the table partial is returned.
``GET /trading/cohorts/new``
    Launch form; it posts JSON to ``POST /api/cohorts`` with the bearer token the
    operator typed, then opens the cohort page with ``?job=<job_id>``.
``GET /trading/cohorts/{run_id}``
    Cohort page: live progress while the run is queued or running, the failure
    reason when it failed, and when completed the bankroll badge, risk gauges,
    equity curves, utilisation / gross exposure against their ceilings and the
    sortable leaderboard (``sort``, ``order`` query parameters).
``GET /trading/cohorts/{run_id}/progress?job=ID``
    Progress partial polled every second by the cohort page; answers
    ``HX-Refresh: true`` once the run completed (the page reloads in full).
``GET /trading/cohorts/{run_id}/leaderboard?sort=KEY&order=asc|desc``
    Leaderboard table partial (server-side sort).
``GET /trading/cohorts/{run_id}/agents/{agent_id}``
    Agent page: trades as buy/sell markers on the candlesticks of each traded
    symbol, equity curve, genome, metrics and trade list.

Assets (never committed, never from a CDN; the dashboard works offline):

``GET /static/vendor/plotly.min.js``
    The plotly.js bundle shipped inside the installed ``plotly`` Python package.
``GET /static/vendor/htmx.min.js``
    ``web/node_modules/htmx.org/dist/htmx.min.js``, installed from the npm
    package ``htmx.org`` by ``npm install --prefix web`` (503 with that hint when
    missing; ``COHORTLAB_WEB_NODE_MODULES`` names another ``node_modules``).
``GET /static/cohortlab.css``, ``GET /static/cohortlab.js``
    The dashboard's own stylesheet and script (``web/static``).

Errors of these routes are HTML pages (404 unknown cohort/agent/page, 400 bad
query, 503 store unavailable, 500 otherwise; details of 500s go to the log only).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from datetime import date as Date
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup, escape
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from manager import display
from manager.store import NotFound, Store, StoreError

from . import figures

__all__ = ["router", "htmx_path", "plotly_path"]

log = logging.getLogger("cohortlab.web")

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
NPM_HINT = "run `npm install --prefix web` in the cohortlab checkout (installs htmx.org from web/package.json)"
PAGE_SIZE = 20
STAGES = ("queued", "loading", "seeding", "simulating", "storing", "completed")
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon"}

# leaderboard columns: (key, header, numeric); the first click on a numeric column sorts it
# best-first (descending), except these, where smaller is better
LEADERBOARD_COLUMNS: tuple[tuple[str, str, bool], ...] = (
    ("rank", "#", True), ("agent_id", "Agent", False), ("family", "Family", False),
    ("allocated", "Allocated", True), ("final_equity", "Final equity", True), ("roi", "ROI", True),
    ("sharpe", "Sharpe", True), ("sortino", "Sortino", True), ("max_drawdown", "Max DD", True),
    ("trades", "Trades", True), ("win_rate", "Win rate", True), ("utilisation", "Utilisation", True),
    ("breaches", "Breaches", True), ("confidence", "Confidence", True),
)
_SMALLER_IS_BETTER = {"rank", "max_drawdown", "breaches", "agent_id", "family"}
_SORT_KEYS = {key for key, _, _ in LEADERBOARD_COLUMNS}


# ----------------------------------------------------------------- errors as HTML


class PageError(Exception):
    """Raise from a page handler to answer with the HTML error page."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class HTMLErrorRoute(APIRoute):
    """A route whose errors are answered as HTML pages, not problem documents.

    The app's exception handlers (``api.problems``) answer JSON; operators in a
    browser get a page instead. Unexpected errors are logged with their traceback
    and shown without details.
    """

    def get_route_handler(self) -> Callable:
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


router = APIRouter(route_class=HTMLErrorRoute, include_in_schema=False, tags=["dashboard"])
"""The dashboard's routes (``app.include_router(web.routes.router)``)."""


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# ----------------------------------------------------------------- templates


# The number filters are the shared rules of manager.display (also the CLI's): a value that
# rounds to zero at the displayed precision shows as 0 in the neutral colour, unknown as "—".


def _money(value: Any) -> str:
    v = _f(value)
    if v is None:
        return display.DASH
    if v.is_integer() and abs(v) < 1e15:
        return display.num(v, 0)
    if abs(v) >= 1:
        return display.num(v, 2)
    return display.money(v, digits=6)  # small amounts: 6 significant digits, residues below 1e-8 are 0


def _pct(value: Any, digits: int = 2) -> str:
    return display.pct(_f(value), digits)


def _num(value: Any, digits: int = 2) -> str:
    return display.num(_f(value), digits)


def _sign(value: Any, digits: int = 2, scale: float = 100.0) -> str:
    """Colour class of a value as shown: by default as ``_pct(value)`` shows it."""
    return display.sign(_f(value), digits, scale)


def _dt(value: Any) -> str:
    """``2018-01-15T00:05:00Z`` / ``...+00:00`` -> ``2018-01-15 00:05``."""
    if not value:
        return "—"
    text = str(value)
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc)
    return ts.strftime("%Y-%m-%d %H:%M:%S" if ts.second else "%Y-%m-%d %H:%M")


def _basename(value: Any) -> str:
    if not value:
        return "—"
    text = str(value).rstrip("/")
    return text.rsplit("/", 1)[-1] or text


def _f(value: Any) -> float | None:
    """A finite float, or None (also for a template's undefined value)."""
    return None if isinstance(value, jinja2.Undefined) else display.finite(value)


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(("html",), default=True),
        undefined=jinja2.ChainableUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(money=_money, pct=_pct, num=_num, sign=_sign, dt=_dt, basename=_basename)
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
    """Render ``template`` with ``context`` (plus ``request`` and asset warnings)."""
    ctx = {"request": request, "assets_missing": _assets_missing(), **context}
    html = _env().get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def error_page(request: Request, status: int, title: str, message: str) -> HTMLResponse:
    """The HTML error page (also for HTMX requests: the swap shows the message)."""
    try:
        return render(request, "error.html", {"status_code": status, "title": title, "message": message},
                      status_code=status)
    except Exception:  # noqa: BLE001 - a broken template must still give an answer
        log.exception("error page could not be rendered")
        return HTMLResponse(f"<!doctype html><title>{status}</title><h1>{status} {title}</h1>", status_code=status)


def _is_partial(request: Request) -> bool:
    """An HTMX swap (not a history restore, which needs the whole page)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def _store() -> Store:
    from api.deps import get_store

    return get_store()


def _queries():
    from api import queries

    return queries


# ----------------------------------------------------------------- assets


def plotly_path() -> Path:
    """The plotly.js bundle inside the installed ``plotly`` package."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def htmx_path() -> Path:
    """``htmx.min.js`` from the npm package ``htmx.org`` installed into ``web/node_modules``."""
    base = os.environ.get("COHORTLAB_WEB_NODE_MODULES") or str(WEB_DIR / "node_modules")
    return Path(base) / "htmx.org" / "dist" / "htmx.min.js"


def _assets_missing() -> list[str]:
    missing = []
    if not htmx_path().is_file():
        missing.append(f"htmx is not installed ({htmx_path()}): {NPM_HINT}.")
    return missing


_ASSET_HEADERS = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}


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
    """The dashboard's own files in ``web/static`` (no sub-folders)."""
    path = (STATIC_DIR / name).resolve()
    media = _STATIC_TYPES.get(path.suffix)
    if media is None or path.parent != STATIC_DIR or not path.is_file():
        raise PageError(404, "Not found", f"There is no static file {name!r}.")
    return FileResponse(path, media_type=media, headers=_ASSET_HEADERS)


# ----------------------------------------------------------------- list


def _parse_filters(date: str | None, bankroll: str | None, page: str | None,
                   page_size: str | None) -> tuple[dict[str, Any], str | None]:
    """Query strings -> typed filters, and an error message for the first bad one."""
    out: dict[str, Any] = {"date": None, "bankroll": None, "bankroll_text": (bankroll or "").strip(), "page": 1,
                           "page_size": PAGE_SIZE}
    errors = []
    if date and date.strip():
        try:
            out["date"] = Date.fromisoformat(date.strip()).isoformat()
        except ValueError:
            errors.append(f"date {date!r} is not a day (use YYYY-MM-DD)")
    if out["bankroll_text"]:
        v = _f(out["bankroll_text"].replace(",", ""))
        if v is None or v <= 0:
            errors.append(f"bankroll {bankroll!r} is not a positive amount")
        else:
            out["bankroll"] = v
    for key, raw, top in (("page", page, 10**9), ("page_size", page_size, 100)):
        if raw is None or not raw.strip():
            continue
        try:
            n = int(raw)
        except ValueError:
            n = 0
        if not 1 <= n <= top:
            errors.append(f"{key} {raw!r} must be a whole number from 1 to {top}")
        else:
            out[key] = n
    return out, ("; ".join(errors) or None)


def _list_query(filters: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    q = {"date": filters.get("date"), "bankroll": filters.get("bankroll_text") if filters.get("bankroll") else None}
    if filters.get("page_size") and filters["page_size"] != PAGE_SIZE:
        q["page_size"] = filters["page_size"]
    q.update(extra)
    return {k: v for k, v in q.items() if v not in (None, "")}


@router.get("/trading/cohorts", response_class=HTMLResponse)
def cohorts_page(request: Request, date: str | None = None, bankroll: str | None = None, page: str | None = None,
                 page_size: str | None = None, store: Store = Depends(_store)) -> HTMLResponse:
    """The cohort list (full page, or the table partial for an HTMX swap)."""
    filters, error = _parse_filters(date, bankroll, page, page_size)
    empty = {"items": [], "total": 0, "page": 1, "page_size": filters["page_size"], "pages": 0, "next_page": None}
    result = empty
    if error is None:
        try:
            result = _queries().cohort_list(store, date=filters["date"], bankroll=filters["bankroll"],
                                            page=filters["page"], page_size=filters["page_size"])
        except ValueError as exc:  # QueryError
            error = str(exc)
    csv_query = {k: v for k, v in _list_query(filters).items() if k in ("date", "bankroll")}
    context = {
        "nav": "cohorts", "filters": filters, "result": result, "error": error,
        "filtered": bool(filters["date"] or filters["bankroll"] or error),
        # every cohort the filters match (the API streams them all), not only the page shown
        "csv_url": "/api/experiments/cohorts?" + urlencode({"format": "csv", **csv_query}),
        "page_url": lambda n: "/trading/cohorts?" + urlencode(_list_query(filters, page=n)),
    }
    headers = {"Vary": "HX-Request"}
    if _is_partial(request):
        return render(request, "partials/cohort_table.html", context, headers=headers)
    return render(request, "cohorts.html", context, headers=headers)


# ----------------------------------------------------------------- launch form


@router.get("/trading/cohorts/new", response_class=HTMLResponse)
def new_cohort_page(request: Request) -> HTMLResponse:
    """The guided launch form (posts to ``POST /api/cohorts`` from the browser)."""
    data_dir = None
    try:
        from manager.settings import get_settings

        data_dir = get_settings().data_dir
    except Exception:  # noqa: BLE001 - bad settings must not hide the form
        log.warning("settings could not be read for the launch form", exc_info=True)
    return render(request, "new.html", {"nav": "new", "data_dir": data_dir})


# ----------------------------------------------------------------- cohort page


def _sorted_leaderboard(agents: list[dict], sort: str | None, order: str | None) -> tuple[list[dict], str, str]:
    key = sort if sort in _SORT_KEYS else "rank"
    if order not in ("asc", "desc"):
        order = "asc" if key in _SMALLER_IS_BETTER else "desc"

    def value(a: dict) -> Any:
        v = a.get(key)
        if key in ("agent_id", "family"):
            return str(v or "")
        f = _f(v)
        return f if f is not None else (-math.inf if order == "desc" else math.inf)  # missing values last

    return sorted(agents, key=value, reverse=order == "desc"), key, order


def _leaderboard_context(run_id: str, agents: list[dict], sort: str | None, order: str | None,
                         window: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The leaderboard partial's context; ``window`` (the report's) words how Sharpe and
    Sortino were annualised (``annualised``: see :func:`manager.display.annualisation`)."""
    rows, key, order = _sorted_leaderboard(agents, sort, order)

    def sort_url(column: str) -> str:
        if column == key:
            new_order = "desc" if order == "asc" else "asc"
        else:
            new_order = "asc" if column in _SMALLER_IS_BETTER else "desc"
        return f"/trading/cohorts/{run_id}/leaderboard?" + urlencode({"sort": column, "order": new_order})

    def sort_page_url(column: str) -> str:  # the same sort without JavaScript: the whole page
        return sort_url(column).replace("/leaderboard?", "?", 1) + "#leaderboard"

    return {"leaderboard": [_leaderboard_row(run_id, a) for a in rows], "sort": key, "order": order,
            "columns": LEADERBOARD_COLUMNS, "sort_url": sort_url, "sort_page_url": sort_page_url,
            "annualised": display.annualisation(window)}


class _LeaderboardRow(NamedTuple):
    """One leaderboard row, formatted once in Python (a 200-agent table rendered cell by
    cell through Jinja filters took ~15 ms). ``attrs`` and ``numbers`` are markup."""

    agent_id: str
    href: str
    rank: str
    family: str
    failed: bool
    liquidated: bool
    attrs: Markup
    numbers: Markup


def _plain(value: Any) -> str:
    return "—" if value is None else str(value)


def _leaderboard_row(run_id: str, a: Mapping[str, Any]) -> _LeaderboardRow:
    get = a.get
    # the numeric cells after rank / agent / family, in LEADERBOARD_COLUMNS order; _money, _pct and
    # _num only ever give digits, signs, "." "," "%" and "—", so only the pass-through values are escaped
    cells = (
        f'<td class="num">{_money(get("allocated"))}</td>',
        f'<td class="num">{_money(get("final_equity"))}</td>',
        f'<td class="num {_sign(get("roi"))}">{_pct(get("roi"))}</td>',
        f'<td class="num">{_num(get("sharpe"))}</td>',
        f'<td class="num">{_num(get("sortino"))}</td>',
        f'<td class="num">{_pct(get("max_drawdown"))}</td>',
        f'<td class="num">{escape(_plain(get("trades")))}</td>',
        f'<td class="num">{_pct(get("win_rate"), 0)}</td>',
        f'<td class="num">{_pct(get("utilisation"))}</td>',
        f'<td class="num">{escape(_plain(get("breaches")))}</td>',
        f'<td class="num">{_num(get("confidence"))}</td>',
    )
    failed, liquidated = bool(a.get("failed")), bool(a.get("liquidated"))
    attrs = ' class="row-failed"' if failed else (' class="row-liquidated"' if liquidated else "")
    agent_id = str(a.get("agent_id") or "")
    return _LeaderboardRow(agent_id=agent_id, href=f"/trading/cohorts/{run_id}/agents/{agent_id}",
                           rank=_plain(a.get("rank")), family=_plain(a.get("family")), failed=failed,
                           liquidated=liquidated, attrs=Markup(attrs), numbers=Markup("\n      ".join(cells)))


def _detail_or_none(store: Store, run_id: str) -> dict[str, Any] | None:
    try:
        return _queries().cohort_detail(store, run_id)
    except NotFound:
        return None
    except ValueError:  # QueryError / InvalidDocument: a run id that cannot exist
        return None


def _job_info(store: Store, job_id: str | None) -> dict[str, Any] | None:
    """``{"state", "stage", "error", "elapsed_s"}`` of a job of ``POST /api/cohorts``, or None.

    Read through the JSON API's job lookup (:func:`api.jobs.job_status`: this
    process's job registry, the Celery result backend, else the store); a job
    nobody knows, or a lookup that fails, gives None (the page then relies on
    the store alone).
    """
    if not job_id:
        return None
    try:
        from api import jobs

        info = jobs.job_status(store, job_id)
    except NotFound:
        return None
    except Exception:  # noqa: BLE001 - the stage is a nicety; the store says whether the run finished
        log.debug("job %s could not be read", job_id, exc_info=True)
        return None
    if hasattr(info, "model_dump"):
        info = info.model_dump()
    if not isinstance(info, Mapping):
        return None
    return {"state": str(info.get("state") or "").lower() or None, "stage": info.get("stage"),
            "error": info.get("error"), "elapsed_s": info.get("elapsed_s")}


def _progress_context(run_id: str, detail: dict | None, job: dict | None,
                      job_id: str | None) -> dict[str, Any]:
    run = dict(detail["run"]) if detail else {"run_id": run_id, "status": "queued"}
    if job and detail is None:  # not stored yet (queued, loading) or refused before it was stored
        run["status"] = {"failed": "failed", "running": "running"}.get(job.get("state") or "", "queued")
        run["reason"] = job.get("error")
    stage = (job or {}).get("stage")
    if run.get("status") == "completed":
        index = STAGES.index("completed")
    elif stage in STAGES:
        index = STAGES.index(stage)
    elif detail is not None:
        index = STAGES.index("simulating")  # the run document exists from the start of the simulation
    elif job and job.get("state") in ("running", "started", "progress"):
        index = STAGES.index("loading")
    else:
        index = 0
    elapsed = None
    created = run.get("created_at")
    if job and _f(job.get("elapsed_s")) is not None:
        elapsed = int(_f(job["elapsed_s"]) or 0)
    elif created:
        try:
            started = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
            elapsed = max(0, int((datetime.now(timezone.utc) - started).total_seconds()))
        except ValueError:
            pass
    query = urlencode({"job": job_id}) if job_id else ""
    return {"run": run, "job": job, "stages": STAGES, "stage_index": index, "elapsed": elapsed,
            "progress_url": f"/trading/cohorts/{run_id}/progress" + (f"?{query}" if query else "")}


def _requested_window(request_doc: Mapping[str, Any]) -> dict[str, Any] | None:
    """The window a running cohort asked for (its report, with the real one, comes later)."""
    bars = request_doc.get("bars") or {}
    if not bars.get("start") and not bars.get("end"):
        return None
    return {"start": bars.get("start"), "end": bars.get("end"), "symbols": bars.get("symbols")}


@router.get("/trading/cohorts/{run_id}", response_class=HTMLResponse)
def cohort_page(request: Request, run_id: str, job: str | None = None, sort: str | None = None,
                order: str | None = None, store: Store = Depends(_store)) -> HTMLResponse:
    """One cohort: live progress while it runs, everything once it completed."""
    detail = _detail_or_none(store, run_id)
    job_info = None if detail and detail["run"].get("status") == "completed" else _job_info(store, job or run_id)
    if detail is None and job_info is None:
        raise PageError(404, "Cohort not found", f"There is no cohort {run_id!r} in this store.")
    context: dict[str, Any] = {"nav": "cohorts", "charts": False, "limits": {}, "summary": None, "quote": "",
                               "bankroll": None, "allocation": None, "window": None, "settings": None,
                               "stored": detail is not None, "annualised": None}
    context.update(_progress_context(run_id, detail, job_info, job))
    if detail is not None:
        summary = detail.get("summary")
        request_doc = (detail["run"].get("request") or {})
        quote = (summary or {}).get("quote") or ""
        context.update({
            "summary": summary, "limits": detail.get("limits") or {}, "quote": quote,
            "bankroll": (summary or {}).get("bankroll", request_doc.get("bankroll")),
            "allocation": (summary or {}).get("allocation", request_doc.get("allocation")),
            "window": (summary or {}).get("window") or _requested_window(request_doc),
            "settings": (summary or {}).get("settings"),
        })
        if detail["run"].get("status") == "completed" and summary:
            curves, limits = detail.get("curves") or {}, detail.get("limits") or {}
            context["charts"] = True
            context["figures"] = {
                "equity": figures.to_json(figures.equity_figure(curves, quote)),
                "exposure": figures.to_json(figures.exposure_figure(curves, limits)),
                "gauges": figures.to_json(figures.gauges_figure(summary.get("parent") or {}, limits)),
            }
            context.update(_leaderboard_context(run_id, list(summary.get("agents") or []), sort, order,
                                                summary.get("window")))
    return render(request, "cohort.html", context)


@router.get("/trading/cohorts/{run_id}/progress", response_class=HTMLResponse)
def cohort_progress(request: Request, run_id: str, job: str | None = None,
                    store: Store = Depends(_store)) -> HTMLResponse:
    """The progress card; ``HX-Refresh: true`` once the run completed or failed."""
    detail = _detail_or_none(store, run_id)
    job_info = None if detail and detail["run"].get("status") == "completed" else _job_info(store, job or run_id)
    if detail is None and job_info is None:
        raise PageError(404, "Cohort not found", f"There is no cohort {run_id!r} in this store.")
    context = _progress_context(run_id, detail, job_info, job)
    if context["run"].get("status") == "completed":
        return HTMLResponse(f'<section id="progress" class="progress-card">Completed — '
                            f'<a href="/trading/cohorts/{escape(run_id)}">open the results</a>.</section>',
                            headers={"HX-Refresh": "true"})
    # a failure reloads the page too, so the header's badges say so
    headers = {"HX-Refresh": "true"} if context["run"].get("status") == "failed" else None
    return render(request, "partials/progress.html", context, headers=headers)


@router.get("/trading/cohorts/{run_id}/leaderboard", response_class=HTMLResponse)
def cohort_leaderboard(request: Request, run_id: str, sort: str | None = None, order: str | None = None,
                       store: Store = Depends(_store)) -> HTMLResponse:
    """The leaderboard table sorted by ``sort`` (a column key) in ``order``."""
    detail = _detail_or_none(store, run_id)
    if detail is None:
        raise PageError(404, "Cohort not found", f"There is no cohort {run_id!r} in this store.")
    summary = detail.get("summary") or {}
    agents = list(summary.get("agents") or [])
    context = {"run": detail["run"], **_leaderboard_context(run_id, agents, sort, order, summary.get("window"))}
    return render(request, "partials/leaderboard.html", context)


# ----------------------------------------------------------------- agent page


_GENOME_KEYS = ("family", "symbols", "size", "leverage", "stop_loss", "take_profit", "max_hold_bars",
                "generation", "parents", "genome_id")
_METRIC_ROWS = (
    ("rank", "Rank", "int"), ("allocated", "Allocated", "money"), ("final_equity", "Final equity", "money"),
    ("roi", "ROI", "pct"), ("hourly_roi", "Hourly ROI", "pct4"), ("realized_pnl", "Realised PnL", "money"),
    ("unrealized_pnl", "Unrealised PnL", "money"), ("fees", "Fees", "money"), ("sharpe", "Sharpe", "num"),
    ("sortino", "Sortino", "num"), ("max_drawdown", "Max drawdown", "pct"), ("trades", "Trades", "int"),
    ("win_rate", "Win rate", "pct"), ("utilisation", "Utilisation (mean)", "pct"),
    ("peak_utilisation", "Peak utilisation", "pct"), ("breaches", "Breach attempts", "int"),
    ("liquidated", "Liquidated", "bool"), ("failed", "Failed", "bool"), ("confidence", "Confidence (PSR)", "num"),
)


def _genome_rows(genome: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key in _GENOME_KEYS:
        if key not in genome:
            continue
        value = genome[key]
        if key in ("symbols", "parents"):
            text = ", ".join(str(v) for v in value) if value else "—"
        elif key in ("size", "stop_loss", "take_profit"):
            text = _pct(value)
        elif key == "leverage":
            text = f"{_num(value, 3)}×"
        else:
            text = str(value)
        rows.append((key, text))
        if key == "family":
            for name, pv in (genome.get("params") or {}).items():
                rows.append((f"params.{name}", f"{pv:.6g}" if isinstance(pv, float) else str(pv)))
    for key, value in genome.items():  # anything a newer genome carries
        if key not in _GENOME_KEYS and key != "params":
            rows.append((key, str(value)))
    return rows


def _metric_rows(agent: Mapping[str, Any], quote: str,
                 annualised: Mapping[str, Any] | None = None) -> list[tuple[str, str]]:
    rows = []
    for key, label, kind in _METRIC_ROWS:
        if key not in agent:
            continue
        if key in ("sharpe", "sortino") and annualised:
            label = f"{label} ({annualised['short']})"
        elif key == "win_rate" and agent[key] is None:
            label = f"{label} (no closed trade yet)"
        v = agent[key]
        text = {"money": lambda: f"{_money(v)} {quote}".strip(), "pct": lambda: _pct(v),
                "pct4": lambda: _pct(v, 4), "num": lambda: _num(v, 3), "bool": lambda: "yes" if v else "no",
                "int": lambda: "—" if v is None else str(v)}[kind]()
        rows.append((label, text))
    return rows


class _TradeRow(NamedTuple):
    """One row of the agent page's trade list, formatted once in Python (cheaper than
    five Jinja filters per row when an agent traded hundreds of times)."""

    symbol: str
    side: str
    entry_time: str
    entry_price: str
    exit_time: str
    exit_price: str
    qty: str
    fees: str
    pnl_class: str
    pnl: str
    exit_reason: str


def _trade_row(t: Mapping[str, Any]) -> _TradeRow:
    get = t.get
    pnl = get("pnl")
    return _TradeRow(
        symbol=_text(get("symbol")), side=_text(get("side")), entry_time=_dt(get("entry_time")),
        entry_price=_num(get("entry_price"), 8), exit_time=_dt(get("exit_time")) if get("exit_time") else "open",
        exit_price=_num(get("exit_price"), 8), qty=_num(get("qty"), 4), fees=_num(get("fees"), 8),
        pnl_class=f"num {_sign(pnl, 8, 1.0)}", pnl=_num(pnl, 8), exit_reason=_text(get("exit_reason")))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


@router.get("/trading/cohorts/{run_id}/agents/{agent_id}", response_class=HTMLResponse)
def agent_page(request: Request, run_id: str, agent_id: str, store: Store = Depends(_store)) -> HTMLResponse:
    """One agent of a completed cohort."""
    detail = _detail_or_none(store, run_id)
    if detail is None:
        raise PageError(404, "Cohort not found", f"There is no cohort {run_id!r} in this store.")
    try:
        data = _queries().agent_detail(store, run_id, agent_id)
    except NotFound:
        raise PageError(404, "Agent not found", f"Cohort {run_id} has no agent {agent_id!r}"
                        + ("" if detail["run"].get("status") == "completed"
                           else f" yet (the cohort is {detail['run'].get('status')})") + ".") from None
    summary = detail.get("summary") or {}
    quote = summary.get("quote") or ""
    annualised = display.annualisation(summary.get("window"))
    agent = data.get("agent") or {}
    trades = data.get("trades") or []
    prices = data.get("prices") or {}
    context = {
        "nav": "cohorts", "charts": True, "run": detail["run"], "agent": agent, "quote": quote,
        "trades": trades, "trade_rows": [_trade_row(t) for t in trades], "prices": prices,
        "prices_error": data.get("prices_error"),
        "genome_rows": _genome_rows(agent.get("genome") or {}),
        "metric_rows": _metric_rows(agent, quote, annualised), "annualised": annualised,
        "figures": {
            "prices": figures.to_json(figures.price_figure(prices, trades, quote)),
            "equity": figures.to_json(figures.agent_equity_figure(data.get("equity") or {}, quote,
                                                                  _f(agent.get("allocated")))),
        },
    }
    return render(request, "agent.html", context)


# ----------------------------------------------------------------- anything else under /trading


@router.get("/trading", response_class=HTMLResponse)
def trading_root() -> Response:
    """``/trading`` -> the cohort list."""
    return Response(status_code=307, headers={"Location": "/trading/cohorts"})


@router.get("/trading/{rest:path}", response_class=HTMLResponse)
def trading_not_found(rest: str) -> HTMLResponse:
    """Any other page under ``/trading``: the HTML 404 page."""
    raise PageError(404, "Page not found", f"There is no dashboard page /trading/{rest}.")
