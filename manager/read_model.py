"""The read model shared by the JSON API (``api/routers``) and the dashboard (``web/``).

Every function takes an open :class:`manager.store.Store` first and returns plain,
JSON-able dicts (str, int, float, bool, None, lists, dicts; timestamps as ISO 8601
UTC strings such as ``2018-01-15T00:05:00Z``; non-finite floats become None).
Unknown ids raise :class:`manager.store.NotFound` (:class:`RunNotFound` for runs);
bad arguments raise :class:`QueryError` (a ``ValueError``). Money is in the run's
quote currency (``quote``); fractions are fractions (0.05 = 5 %).

Functions and shapes:

``cohort_list(store, *, date=None, bankroll=None, page=1, page_size=20)``
    ``{"items": [row], "total", "page", "page_size", "pages", "next_page"}``;
    a row is a cohort summary row of :meth:`Store.list_cohort_summaries`
    (``run_id, created_at, finished_at, status, reason, date, bankroll, quote,
    agents, data_label, roi, final_equity, max_drawdown, peak_utilisation,
    breaches, failed_agents``), newest first.
``cohort_export(store, *, date=None, bankroll=None)``
    ``(total, rows)``: the count of matching cohorts and an iterator over every one of
    their rows (same fields and order as ``cohort_list``), read page by page.
``run_header(run)``
    The run's typed header (:data:`HEADER_FIELDS`: traded day, window, bankroll,
    quote, agent count, data label, market, seeding source), as the runner wrote it
    (:func:`manager.runner.run_header`).
``cohort_detail(store, run_id, *, max_points=2000)``
    ``{"run": {run_id, status, created_at, finished_at, reason, data_label, header, request},
    "summary": the stored report (``cohortlab run --json``) or None until completed,
    "curves": {"timestamps": [iso], "parent_equity": [..], "agent_equity": {agent_id: [..]},
    "gross_exposure": [fraction of parent equity], "utilisation": [fraction of allocated]},
    "limits": {"max_gross_leverage", "max_symbol_exposure"}}``; curves downsampled to
    at most ``max_points`` bars (empty lists until completed).
``agent_detail(store, run_id, agent_id, *, max_points=2000)``
    ``{"agent": leaderboard row (incl. ``genome``), "trades": [trade],
    "equity": {"timestamps", "values"}, "prices": {symbol: {"timestamps", "open",
    "high", "low", "close"}}, "prices_error": str | None}``.
``ledger_page(store, run_id, page=1, page_size=50)``
    ``{"items": [transaction], "total", "page", "page_size", "pages", "next_page"}``.
``status_recent(store, limit=10)``
    ``{"generated_at", "counts": {"running", "completed", "failed"}, "items": [status row]}``.
``bankroll_summary(store, days=7)``
    ``{"days", "since", "until", "cohorts": [row], "by_quote": {quote: totals}}``.

These documents go over HTTP to readers that need no token: run documents, rows and
reasons pass through :func:`manager.data_roots.public_view` (a data folder as its name
under its root or ``SYNTHETIC``, never a server path; reasons without cell contents).
"""
from __future__ import annotations

import json
import math
from datetime import date as Date
from datetime import datetime, timedelta, timezone
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np

from manager.data_roots import data_roots, public_view
from manager.store import RUN_HEADER_FIELDS, NotFound, RunNotFound, Store, StoreError

__all__ = ["COHORT_ROW_FIELDS", "EXPORT_BATCH", "HEADER_FIELDS", "MAX_POINTS", "QueryError", "Unsupported",
           "agent_detail", "bankroll_summary", "cohort_detail", "cohort_export", "cohort_list", "ledger_page",
           "run_header", "status_recent"]

MAX_POINTS = 2000
"""Most bars a curve or price series carries (longer runs are downsampled)."""

COHORT_ROW_FIELDS: tuple[str, ...] = (
    "run_id", "created_at", "finished_at", "status", "reason", "date", "bankroll", "quote", "agents", "data_label",
    "roi", "final_equity", "max_drawdown", "peak_utilisation", "breaches", "failed_agents",
    "baseline_percentile")
"""Columns of a cohort list row, in CSV order (``baseline_percentile``: the cohort's ROI
percentile 0..100 among its random-genome cohorts, :mod:`manager.baselines`; empty when the
run had no baselines)."""

_MAX_SCAN = 1000  # most runs bankroll_summary looks through

EXPORT_BATCH = 1000
"""Rows :func:`cohort_export` reads from the store per listing call (the store's largest page)."""

HEADER_FIELDS: tuple[str, ...] = RUN_HEADER_FIELDS
"""Fields of a run's header (:func:`manager.runner.run_header`, kept by the store as typed fields), in order:
``day, window_start, window_end, bankroll, quote, agents, data_label, market, seeded_from``."""


class QueryError(ValueError):
    """An argument out of range (page < 1, page_size outside its bounds, ...)."""


class Unsupported(StoreError):
    """The configured store does not offer an operation this query needs yet."""


# ----------------------------------------------------------------- helpers


def _page_args(page: int, page_size: int, max_size: int) -> tuple[int, int]:
    if isinstance(page, bool) or not isinstance(page, int) or page < 1:
        raise QueryError(f"page={page!r} must be an int >= 1")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= max_size:
        raise QueryError(f"page_size={page_size!r} must be an int from 1 to {max_size}")
    return page, page_size


def _paged(items: list, total: int, page: int, page_size: int) -> dict[str, Any]:
    pages = math.ceil(total / page_size) if total else 0
    return {"items": items, "total": total, "page": page, "page_size": page_size, "pages": pages,
            "next_page": page + 1 if page < pages else None}


def _iso_ns(values: np.ndarray) -> list[str]:
    """ISO 8601 UTC strings (``...Z``) of int64 nanoseconds since the epoch."""
    arr = np.asarray(values).astype("datetime64[ns]").astype("datetime64[s]")
    return [f"{s}Z" for s in np.datetime_as_string(arr, unit="s")]


def _floats(values: np.ndarray) -> list[float | None]:
    arr = np.asarray(values, dtype=np.float64)
    if np.isfinite(arr).all():
        return arr.tolist()
    return [v if math.isfinite(v) else None for v in arr.tolist()]


def _sample(n: int, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` of ``n`` bars, evenly spread, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def _per_agent(values: Any, bars: int) -> np.ndarray | None:
    """A per-agent curve as ``(agents, bars)`` (the engine's layout); a ``(bars, agents)``
    array is transposed; anything else (no such curve, other lengths) gives None."""
    if values is None:
        return None
    arr = np.asarray(values)
    if arr.ndim != 2:
        return None
    if arr.shape[1] == bars:
        return arr
    if arr.shape[0] == bars:
        return arr.T
    return None


def _check_points(max_points: int) -> int:
    if isinstance(max_points, bool) or not isinstance(max_points, int) or not 2 <= max_points <= MAX_POINTS:
        raise QueryError(f"max_points={max_points!r} must be an int from 2 to {MAX_POINTS}")
    return max_points


def _cohort_run(store: Store, run_id: str) -> dict[str, Any]:
    run = store.get_run(run_id)
    if run.get("kind") != "cohort":
        raise RunNotFound(f"run {run_id!r} is a {run.get('kind')} run, not a cohort")
    return run


def _request(run: dict) -> dict[str, Any]:
    """The cohort request as run (``config.request``): how to reload the bars and the
    engine's limits. Header facts (day, window, bankroll, ...) come from :func:`run_header`."""
    return (run.get("config") or {}).get("request") or {}


def _agent_ids(n: int) -> list[str]:
    """Row order of the run's per-agent curves: the ids the engine gives its ``n`` agents
    (``a00``, ``a01``, ...; :func:`simulator.cohort.simulate_cohort`'s default)."""
    return [f"a{i:02d}" for i in range(n)]


# ----------------------------------------------------------------- the run header


def run_header(run: dict) -> dict[str, Any]:
    """The typed header of a stored run: what listings and pages show about it.

    Args:
        run: a run document (:meth:`Store.get_run` or a :meth:`Store.list_runs` row).

    Returns:
        ``{"day", "window_start", "window_end", "bankroll", "quote", "agents",
        "data_label", "market", "seeded_from"}`` (:data:`HEADER_FIELDS`): ``day`` the
        UTC date (``YYYY-MM-DD``) of the first traded bar, the traded window
        ``[window_start, window_end)`` in ISO 8601 UTC, ``bankroll`` (float) in
        ``quote``, ``agents`` (int) the cohort size, ``data_label`` the data source,
        ``market`` the seeding market key, ``seeded_from`` where the genomes came
        from. Fields nobody recorded are None; nothing is guessed from the request.

    The runner writes the header when it creates the run
    (:func:`manager.runner.run_header`); runs stored before the header existed got
    theirs from the store's migration ``0005_run_header``.
    """
    header = run.get("header")
    header = header if isinstance(header, dict) else {}
    return {key: header.get(key) for key in HEADER_FIELDS}


def _summary(run: dict) -> dict[str, Any] | None:
    s = run.get("summary")
    if not s:
        return None
    return {k: v for k, v in s.items() if k != "final_state"}  # reconciliation state, internal


def _run_brief(run: dict) -> dict[str, Any]:
    return {"run_id": run["run_id"], "status": run["status"], "created_at": run.get("created_at"),
            "finished_at": run.get("finished_at"), "reason": run.get("reason"),
            "data_label": run.get("data_label"), "header": run_header(run), "request": _request(run) or None}


# ----------------------------------------------------------------- cohorts


def cohort_list(store: Store, *, date: str | Date | None = None, bankroll: float | None = None,
                page: int = 1, page_size: int = 20) -> dict[str, Any]:
    """One page of stored cohorts, newest first.

    Args:
        store: open store.
        date: only cohorts that traded this UTC day (``YYYY-MM-DD``); None = all.
        bankroll: only cohorts with this parent bankroll (quote currency); None = all.
        page: 1-based page number.
        page_size: rows per page, 1 to 200.

    Returns:
        ``{"items": [row], "total", "page", "page_size", "pages", "next_page"}`` —
        ``pages`` is 0 when nothing matches, ``next_page`` None on the last page.
        Row fields: :data:`COHORT_ROW_FIELDS`.

    Raises:
        QueryError: bad page or page size.
        Unsupported: the store has no ``list_cohort_summaries`` yet.
    """
    page, page_size = _page_args(page, page_size, 200)
    lister = getattr(store, "list_cohort_summaries", None)
    if lister is None:
        raise Unsupported(f"{type(store).__name__} does not list cohort summaries")
    if isinstance(date, Date):
        date = date.isoformat()
    res = lister(date=date, bankroll=bankroll, limit=page_size, offset=(page - 1) * page_size)
    # public_view: no server path or cell contents leave over HTTP (manager.data_roots)
    return public_view(_paged(list(res["items"]), int(res["total"]), page, page_size))


def cohort_export(store: Store, *, date: str | Date | None = None, bankroll: float | None = None,
                  batch: int = EXPORT_BATCH) -> tuple[int, Iterator[dict[str, Any]]]:
    """Every stored cohort matching the filters, newest first, for a CSV export.

    The first page is read at once (so a bad argument or an unavailable store raises
    here, before any response starts); the rest are read lazily, ``batch`` rows per
    store call, while the caller consumes the iterator (memory holds one page and the
    run ids seen, whatever the store holds).

    The store's summary listing pages by offset: a cohort created while the export is
    read pushes the older rows one place down, so a row may come back on the next
    page; rows are deduplicated by ``run_id``, so each matching cohort is yielded
    exactly once (cohorts created after the export started may be left out).

    Args:
        store: open store.
        date, bankroll: the filters of :func:`cohort_list`.
        batch: rows per store call, 1 to 1000.

    Returns:
        ``(total, rows)``: ``total`` the number of matching cohorts when the export
        started; ``rows`` an iterator of rows with the fields :data:`COHORT_ROW_FIELDS`.

    Raises:
        QueryError: bad ``batch``.
        Unsupported: the store has no ``list_cohort_summaries`` yet.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= EXPORT_BATCH:
        raise QueryError(f"batch={batch!r} must be an int from 1 to {EXPORT_BATCH}")
    lister = getattr(store, "list_cohort_summaries", None)
    if lister is None:
        raise Unsupported(f"{type(store).__name__} does not list cohort summaries")
    if isinstance(date, Date):
        date = date.isoformat()
    first = lister(date=date, bankroll=bankroll, limit=batch, offset=0)

    roots = data_roots()

    def rows() -> Iterator[dict[str, Any]]:
        page, offset, seen = first, 0, set()
        while True:
            items = list(page["items"])
            for row in items:
                if row["run_id"] not in seen:
                    seen.add(row["run_id"])
                    yield public_view(row, roots)
            if len(items) < batch:
                return
            offset += batch
            page = lister(date=date, bankroll=bankroll, limit=batch, offset=offset)

    return int(first["total"]), rows()


def cohort_detail(store: Store, run_id: str, *, max_points: int = MAX_POINTS) -> dict[str, Any]:
    """A cohort run, its report and its curves (see the module docstring for the shape).

    ``gross_exposure[t]`` = sum of the agents' gross position value / parent
    equity at bar t; ``utilisation[t]`` = the same gross value / capital allocated
    to agents. Curves are downsampled to at most ``max_points`` bars (evenly
    spaced bars, first and last kept).

    Raises:
        RunNotFound: no such run, or the run is not a cohort.
        QueryError: bad ``max_points``.
    """
    _check_points(max_points)
    run = _cohort_run(store, run_id)
    summary = _summary(run)
    engine = _request(run).get("engine") or (summary or {}).get("settings") or {}
    limits = {"max_gross_leverage": engine.get("max_gross_leverage"),
              "max_symbol_exposure": engine.get("max_symbol_exposure")}
    curves: dict[str, Any] = {"timestamps": [], "parent_equity": [], "agent_equity": {}, "gross_exposure": [],
                              "utilisation": []}
    raw = store.get_curves(run_id) if run["status"] == "completed" else {}
    ts = np.asarray(raw.get("timestamps", []))
    pe = np.asarray(raw.get("parent_equity", []), dtype=np.float64)
    if len(ts) and ts.ndim == 1 and pe.shape == ts.shape:  # else: not completed, or no curves to show
        idx = _sample(len(ts), max_points)
        curves["timestamps"] = _iso_ns(ts[idx])
        curves["parent_equity"] = _floats(pe[idx])
        equity = _per_agent(raw.get("equity"), len(ts))
        if equity is not None:
            ids = _agent_ids(equity.shape[0])
            curves["agent_equity"] = {aid: _floats(equity[i, idx]) for i, aid in enumerate(ids)}
        pv = _per_agent(raw.get("position_value"), len(ts))
        if pv is not None:
            gross = np.abs(pv[:, idx].astype(np.float64)).sum(axis=0)
            pe_s = pe[idx]
            curves["gross_exposure"] = _floats(np.divide(gross, pe_s, out=np.zeros_like(gross), where=pe_s > 0))
            allocated = sum(float(a.get("allocated") or 0.0) for a in (summary or {}).get("agents", []))
            curves["utilisation"] = _floats(gross / allocated if allocated > 0 else np.zeros_like(gross))
    roots = data_roots()  # public_view: no server path or cell contents leave over HTTP
    return {"run": public_view(_run_brief(run), roots), "summary": public_view(summary, roots), "curves": curves,
            "limits": limits, "cycle": public_view(cycle_overfitting(store, run), roots)}


def cycle_overfitting(store: Store, run: dict) -> dict[str, Any] | None:
    """The overfitting figures of the learning cycle that bred a campaign day's
    agents (the run's ``config.cycle_id``; :mod:`simulator.metrics.overfitting`):
    ``{"cycle_id", "pbo", "rank_correlation", "n_trials"}``, or None for a run not
    bred by a stored cycle."""
    cid = (run.get("config") or {}).get("cycle_id")
    if not cid:
        return None
    try:
        k = store.get_knowledge(cid)
    except Exception:  # not stored (e.g. a campaign run without a store for cycles)
        return None
    return {"cycle_id": cid, "pbo": (k.get("pbo") or {}).get("pbo"), "rank_correlation": k.get("rank_correlation"),
            "n_trials": (k.get("tried") or {}).get("n_trials") or {}}


@lru_cache(maxsize=8)
def _market(bars_json: str):
    """The bars of a run (SYNTHETIC runs regenerate identically from their seed)."""
    from manager.runner import BarsRequest, load_bars

    return load_bars(BarsRequest(**json.loads(bars_json)))


def _ohlc(market, symbol: str, start_ns: int | None, end_ns: int | None, max_points: int) -> dict[str, list]:
    """OHLC of ``symbol`` over the traded bars ``[start_ns, end_ns]``, aggregated into
    at most ``max_points`` buckets (open first, high max, low min, close last)."""
    s = market.symbols.index(symbol)
    ts = market.timestamps.astype("datetime64[ns]").astype(np.int64)
    lo = market.warmup if start_ns is None else int(np.searchsorted(ts, start_ns, side="left"))
    hi = len(ts) if end_ns is None else int(np.searchsorted(ts, end_ns, side="right"))
    o, h, l, c = (getattr(market, k)[lo:hi, s] for k in ("open", "high", "low", "close"))
    t = ts[lo:hi]
    n = len(t)
    if n > max_points:
        edges = np.unique(np.linspace(0, n, max_points + 1).round().astype(np.int64))[:-1]
        last = np.append(edges[1:], n) - 1
        t, o, c = t[edges], o[edges], c[last]
        h, l = np.maximum.reduceat(h, edges), np.minimum.reduceat(l, edges)
    return {"timestamps": _iso_ns(t), "open": _floats(o), "high": _floats(h), "low": _floats(l), "close": _floats(c)}


def agent_detail(store: Store, run_id: str, agent_id: str, *, max_points: int = MAX_POINTS) -> dict[str, Any]:
    """One agent of a completed cohort: its leaderboard row, trades, equity and prices.

    ``prices`` covers the symbols the agent traded (in order of its first trade; the
    genome's symbols when it made no trade) over the run's traded window. The bars
    are reloaded from the run's request (``config.request.bars``); SYNTHETIC runs
    regenerate identically from their seed. When the bars cannot be loaded any
    more (a data folder moved), ``prices`` is ``{}`` and ``prices_error`` says why.

    Raises:
        RunNotFound: no such cohort run.
        NotFound: no agent ``agent_id`` in it (also while the run is still running).
        QueryError: bad ``max_points``.
    """
    _check_points(max_points)
    run = _cohort_run(store, run_id)
    row = next((a for a in store.get_agents(run_id) if a.get("agent_id") == agent_id), None)
    if row is None:
        state = "" if run["status"] == "completed" else f" (the run is {run['status']})"
        raise NotFound(f"no agent {agent_id!r} in cohort {run_id}{state}")
    trades = store.get_trades(run_id, agent_id)
    equity: dict[str, list] = {"timestamps": [], "values": []}
    raw = store.get_curves(run_id)
    start_ns = end_ns = None
    if "timestamps" in raw:
        ts = raw["timestamps"]
        eq = _per_agent(raw.get("equity"), len(ts))
        ids = _agent_ids(eq.shape[0]) if eq is not None else []
        if agent_id in ids:
            idx = _sample(len(ts), max_points)
            equity = {"timestamps": _iso_ns(ts[idx]), "values": _floats(eq[ids.index(agent_id), idx])}
        if len(ts):
            start_ns, end_ns = int(ts[0]), int(ts[-1])
    symbols = list(dict.fromkeys(t["symbol"] for t in trades if t.get("symbol")))
    if not symbols:
        symbols = list((row.get("genome") or {}).get("symbols") or [])
    prices: dict[str, Any] = {}
    prices_error = None
    bars = _request(run).get("bars")
    if symbols and isinstance(bars, dict):
        try:
            market = _market(json.dumps(bars, sort_keys=True))
            for sym in symbols:
                if sym in market.symbols:
                    prices[sym] = _ohlc(market, sym, start_ns, end_ns, max_points)
        except Exception as exc:  # noqa: BLE001 - bad/moved data must not hide the agent
            prices, prices_error = {}, f"{type(exc).__name__}: {exc}"
    roots = data_roots()  # public_view: no server path or cell contents leave over HTTP
    return {"agent": public_view(row, roots), "trades": trades, "equity": equity, "prices": prices,
            "prices_error": public_view({"prices_error": prices_error}, roots)["prices_error"]}


def ledger_page(store: Store, run_id: str, page: int = 1, page_size: int = 50) -> dict[str, Any]:
    """One page of a run's ledger journal, in journal (``seq``) order.

    Returns:
        ``{"items": [transaction], "total", "page", "page_size", "pages", "next_page"}``;
        a transaction is ``{"txn_id", "seq", "bar", "time", "kind", "memo",
        "postings": [{"account", "amount", "qty", "symbol"}]}`` with amounts as
        exact decimal strings.

    Raises:
        RunNotFound: no such run.
        QueryError: bad page or page size (1 to 500).
    """
    page, page_size = _page_args(page, page_size, 500)
    journal = store.get_ledger(run_id)
    start = (page - 1) * page_size
    return _paged(journal[start:start + page_size], len(journal), page, page_size)


# ----------------------------------------------------------------- assistant


def _status_row(run: dict) -> dict[str, Any]:
    s = run.get("summary") or {}
    parent = s.get("parent") or {}
    header = run_header(run)
    failed = s.get("failed_agents")
    return {"run_id": run["run_id"], "status": run["status"], "created_at": run.get("created_at"),
            "finished_at": run.get("finished_at"), "reason": run.get("reason"), "data_label": run.get("data_label"),
            "date": header["day"], "bankroll": header["bankroll"], "quote": header["quote"],
            "agents": header["agents"], "roi": parent.get("roi"),
            "final_equity": parent.get("final_equity"), "max_drawdown": parent.get("max_drawdown"),
            "failed_agents": len(failed) if isinstance(failed, list) else parent.get("failed_agents")}


def status_recent(store: Store, limit: int = 10) -> dict[str, Any]:
    """The most recent cohort runs whatever their status, newest first.

    Args:
        limit: how many runs, 1 to 100.

    Returns:
        ``{"generated_at", "counts": {"running", "completed", "failed"} (over the
        listed runs), "items": [{"run_id", "status", "created_at", "finished_at",
        "reason", "data_label", "date", "bankroll", "quote", "agents", "roi",
        "final_equity", "max_drawdown", "failed_agents"}]}`` (figures None until
        completed).
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise QueryError(f"limit={limit!r} must be an int from 1 to 100")
    items = [_status_row(r) for r in store.list_runs(limit=limit, kind="cohort")]
    counts = {k: sum(1 for i in items if i["status"] == k) for k in ("running", "completed", "failed")}
    return {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "counts": counts,
            "items": public_view(items)}


def bankroll_summary(store: Store, days: int = 7, *, now: datetime | None = None) -> dict[str, Any]:
    """How each completed cohort created in the last ``days`` days used its bankroll.

    Args:
        days: look-back in days from ``now``, 1 to 90 (by when the run was created).
        now: the reference time (default: now, UTC).

    Returns:
        ``{"days", "since", "until", "cohorts": [{"run_id", "created_at", "date",
        "bankroll", "quote", "peak_utilisation", "mean_gross_exposure",
        "unallocated_cash", "final_equity", "roi", "pnl"}], "by_quote": {quote:
        {"cohorts", "bankroll", "final_equity", "pnl", "roi", "unallocated_cash",
        "mean_peak_utilisation", "mean_gross_exposure"}}}`` — newest first, at most
        1,000 cohorts; totals per quote currency (BTC and USD never add up).
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 90:
        raise QueryError(f"days={days!r} must be an int from 1 to 90")
    until = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    since = until - timedelta(days=days)
    since_iso = since.isoformat(timespec="microseconds")
    rows: list[dict[str, Any]] = []
    before, seen = None, 0
    while seen < _MAX_SCAN:
        page = store.list_runs(limit=100, before=before, status="completed", kind="cohort")
        if not page:
            break
        seen += len(page)
        before = page[-1]["run_id"]
        for run in page:
            if (run.get("created_at") or "") < since_iso:
                seen = _MAX_SCAN
                break
            if not run.get("summary"):
                run = store.get_run(run["run_id"])
            s = run.get("summary") or {}
            p = s.get("parent") or {}
            header = run_header(run)
            bankroll, final = header["bankroll"], p.get("final_equity")
            rows.append({"run_id": run["run_id"], "created_at": run.get("created_at"), "date": header["day"],
                         "bankroll": bankroll, "quote": header["quote"],
                         "peak_utilisation": p.get("peak_utilisation"),
                         "mean_gross_exposure": p.get("mean_gross_exposure"),
                         "unallocated_cash": p.get("unallocated_cash"), "final_equity": final, "roi": p.get("roi"),
                         "pnl": (final - bankroll) if final is not None and bankroll is not None else None})
    by_quote: dict[str, dict[str, Any]] = {}
    for r in rows:
        q = by_quote.setdefault(r["quote"] or "?", {"cohorts": 0, "bankroll": 0.0, "final_equity": 0.0, "pnl": 0.0,
                                                    "unallocated_cash": 0.0, "_util": [], "_gross": []})
        q["cohorts"] += 1
        for key in ("bankroll", "final_equity", "pnl", "unallocated_cash"):
            q[key] += float(r[key] or 0.0)
        if r["peak_utilisation"] is not None:
            q["_util"].append(float(r["peak_utilisation"]))
        if r["mean_gross_exposure"] is not None:
            q["_gross"].append(float(r["mean_gross_exposure"]))
    for q in by_quote.values():
        util, gross = q.pop("_util"), q.pop("_gross")
        q["roi"] = q["pnl"] / q["bankroll"] if q["bankroll"] else None
        q["mean_peak_utilisation"] = sum(util) / len(util) if util else None
        q["mean_gross_exposure"] = sum(gross) / len(gross) if gross else None
    return {"days": days, "since": since.isoformat(timespec="seconds"), "until": until.isoformat(timespec="seconds"),
            "cohorts": public_view(rows), "by_quote": by_quote}
