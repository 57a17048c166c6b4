"""Documents and raw views the store and migration tests build on (not a test module).

Plain functions only; the fixtures (stores on every adapter, the MongoDB
server) are in ``conftest.py``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from manager.store import Store

Opener = Callable[[], Store]
"""Opens a store on one database (the ``open_same`` fixture); each call opens it again."""

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=timezone.utc)
RUN_ID_RE = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")
DATA_LABEL = "binance:1m:2025-03-01"


# -- runs, results, ledger ------------------------------------------------------------


def make_run(**overrides: Any) -> dict[str, Any]:
    """A cohort run document without a header (``header=`` adds one)."""
    run: dict[str, Any] = {
        "kind": "cohort",
        "config": {"agents": 3, "bankroll": "1000", "symbols": ["BTC/USDT", "ETH/USDT"]},
        "genomes": [
            {"family": "sma_cross", "params": {"fast": 5, "slow": 20}, "leverage": 1.5},
            {"family": "rsi_revert", "params": {"period": 14}, "leverage": 1.0},
        ],
        "data_label": DATA_LABEL,
    }
    run.update(overrides)
    return run


def make_txn(seq: int, *, txn_id: str | None = None, amount: str = "10.00000000", **extra: Any):
    """A balanced fill transaction of agent a1 (``txn_id`` default ``t<seq:05d>``)."""
    txn: dict[str, Any] = {
        "txn_id": txn_id or f"t{seq:05d}",
        "seq": seq,
        "bar": seq // 2,
        "time": (T0 + timedelta(minutes=seq)).isoformat(),
        "kind": "fill",
        "memo": f"txn {seq}",
        "postings": [
            {"account": "agent:a1:cash", "amount": f"-{amount}", "qty": None, "symbol": None},
            {
                "account": "agent:a1:position:BTC/USDT",
                "amount": amount,
                "qty": "0.00012300",
                "symbol": "BTC/USDT",
            },
        ],
    }
    txn.update(extra)
    return txn


def make_results() -> dict[str, Any]:
    """Keyword arguments of ``complete_run``: three agents, trades, a ledger out of
    seq order, curves of several dtypes and layouts."""
    return {
        "summary": {"roi": 0.0123, "sharpe": 1.7, "best_agent": "a2", "breaches": 0},
        "agents": [
            {"agent_id": "a2", "rank": 1, "roi": 0.031, "genome_id": "g2"},
            {"agent_id": "a1", "rank": 2, "roi": 0.012, "genome_id": "g1"},
            {"agent_id": "a3", "rank": 3, "roi": -0.004, "genome_id": "g3"},
        ],
        "trades": [
            {"agent_id": "a1", "symbol": "BTC/USDT", "side": "buy", "qty": 0.5, "bar": 3},
            {"agent_id": "a2", "symbol": "ETH/USDT", "side": "sell", "qty": 1.25, "bar": 4},
            {"agent_id": "a1", "symbol": "BTC/USDT", "side": "sell", "qty": 0.5, "bar": 9},
        ],
        # Deliberately not in seq order: get_ledger must order by seq.
        "ledger": [
            make_txn(2, amount="0.10000000"),
            make_txn(0, amount="123456789012345678.12345678"),
            make_txn(1, amount="1E-8"),
        ],
        "curves": {
            "parent": np.array([1000.0, 1000.5, np.nan, 999.25]),
            "agents": np.arange(12, dtype=np.float32).reshape(3, 4),
            "positions": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
            "alive": np.array([True, False, True]),
        },
        "timings": {"load_s": 0.12, "simulate_s": 1.5},
    }


def assert_same_array(got: np.ndarray, want: np.ndarray) -> None:
    """Same type, dtype, shape and bytes."""
    assert isinstance(got, np.ndarray)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def snapshot(store: Store, run_id: str) -> dict[str, Any]:
    """Everything readable about a run (to compare before and after a failed write)."""
    return {
        "run": store.get_run(run_id),
        "agents": store.get_agents(run_id),
        "trades": store.get_trades(run_id),
        "ledger": store.get_ledger(run_id),
        "curves": sorted(store.get_curves(run_id)),
    }


def run_at(store: Store, when: datetime, **overrides: Any) -> str:
    """Create a run created at ``when``."""
    return store.create_run(make_run(created_at=when.isoformat(), **overrides))


# -- the typed header and the cohort listing ----------------------------------------------


def _moment(start: str) -> datetime:
    moment = datetime.fromisoformat(start if "T" in start else f"{start}T00:00:00+00:00")
    return moment.astimezone(timezone.utc)


def cohort_header(start: str = "2025-03-01", bankroll: float = 1000.0, *, quote: str = "BTC",
                  agents: int = 2, data_label: str = DATA_LABEL, end: str | None = None,
                  market: str = "binance-1m|1m|BTC", seeded_from: str = "random") -> dict[str, Any]:
    """A run header as the runner writes it, for a traded window starting at ``start``
    (``"YYYY-MM-DD"`` = midnight UTC, or an ISO 8601 time with offset, kept as
    given); ``day`` is its UTC day, the window one day long unless ``end``."""
    moment = _moment(start)
    window_start = start if "T" in start else f"{start}T00:00:00Z"
    return {
        "day": moment.date().isoformat(),
        "window_start": window_start,
        "window_end": end or (moment + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bankroll": bankroll,
        "quote": quote,
        "agents": agents,
        "data_label": data_label,
        "market": market,
        "seeded_from": seeded_from,
    }


def cohort_summary(start: str, *, bankroll: float = 1000.0, quote: str = "BTC", agents: int = 3,
                   roi: float = 0.0125, breaches: int = 2, failed: int = 1) -> dict[str, Any]:
    """A summary shaped like ``manager.report.cohort_report``."""
    return {
        "run_id": "x", "seed": 7, "bankroll": bankroll, "allocation": "equal",
        "window": {"start": start, "end": "later", "timeframe": "5m", "bars": 288,
                   "symbols": ["ETH_BTC", "LTC_BTC"]},
        "parent": {"final_equity": bankroll * (1 + roi), "roi": roi, "max_drawdown": 0.031,
                   "peak_gross_exposure": 0.9, "peak_utilisation": 0.75, "unallocated_cash": 0.0,
                   "breaches": breaches, "sharpe": 1.4, "mean_gross_exposure": 0.5,
                   "liquidations": 0, "fees": 1.5, "failed_agents": failed},
        "agents": [{"agent_id": f"a{i}", "family": "sma_cross", "roi": roi, "rank": i + 1}
                   for i in range(agents)],
        "hourly": [{"hour": 0, "pnl": 1.0, "gross_exposure": 0.5}],
        "ledger": {"transactions": 0, "balanced": True},
        "failed_agents": [{"agent_id": f"f{i}", "family": "sma_cross", "error": "boom"}
                          for i in range(failed)],
        "data": "binance-5m", "quote": quote, "settings": {"fee_bps": 10},
    }


def cohort_at(store: Store, when: datetime, run_id: str, **overrides: Any) -> str:
    """Create run ``run_id`` created at ``when`` (``header=`` to give it one)."""
    return store.create_run(make_run(created_at=when.isoformat(), run_id=run_id, **overrides))


def complete_cohort(store: Store, run_id: str, summary: dict[str, Any]) -> None:
    """Complete a run with ``summary``, its agents, and one curve."""
    agents = [{"agent_id": a["agent_id"], "rank": a["rank"]} for a in summary.get("agents", [])]
    store.complete_run(run_id, summary=summary, agents=agents, trades=[], ledger=[],
                       curves={"parent_equity": np.array([1.0, 1.01])}, timings={"simulate_s": 0.1})


def listed(store: Store, **kwargs: Any) -> list[str]:
    """Run ids of one ``list_cohort_summaries`` page."""
    return [row["run_id"] for row in store.list_cohort_summaries(**kwargs)["items"]]


def make_listing_runs(store: Store) -> None:
    """Cohorts with headers in every state, and a backtest (for the listing and its
    migrations)."""
    cohort_at(store, T0, "done", header=cohort_header("2025-03-01", 1000.0, agents=3))
    complete_cohort(store, "done", cohort_summary("2025-03-01T00:00:00Z", quote="BTC"))
    cohort_at(store, T0 + timedelta(minutes=1), "done-2",
              header=cohort_header("2025-03-02T21:00:00-05:00", 250.0, quote="USD", agents=3))
    complete_cohort(store, "done-2", cohort_summary("2025-03-02T21:00:00-05:00", bankroll=250.0,
                                                    quote="USD", roi=-0.5, breaches=0, failed=0))
    cohort_at(store, T0 + timedelta(minutes=2), "running", header=cohort_header("2025-03-04T08:00:00Z"))
    cohort_at(store, T0 + timedelta(minutes=3), "failed", header=cohort_header("2025-03-05"))
    store.fail_run("failed", "boom")
    cohort_at(store, T0 + timedelta(minutes=4), "bt", kind="backtest",
              header=cohort_header("2025-03-01", 500.0, agents=1, seeded_from="backtest"))


def legacy_request(start: str | None = None, bankroll: float | None = 1000.0,
                   quote: str | None = None, agents: int = 3) -> dict[str, Any]:
    """A run config as the runner recorded it before the typed header:
    ``{"request": asdict(CohortRequest), ...}`` (read only by migration 0005)."""
    return {"request": {"bankroll": bankroll, "agents": agents, "seed": 7,
                        "bars": {"data": None, "symbols": None, "start": start, "end": None,
                                 "warmup_bars": 200, "quote": quote, "seed": 0}},
            "seeded_from": "random"}


def make_legacy_runs(store: Store) -> None:
    """Runs as cohortlab stored them before the typed header: the window, bankroll
    and quote only in ``config.request``, the summary, or top-level caller keys
    (migration 0005 backfills their header from these; see :data:`LEGACY_HEADERS`)."""
    cohort_at(store, T0, "done", config=legacy_request("2025-03-01", 1000.0),
              genomes=[{"g": i} for i in range(3)])
    complete_cohort(store, "done", cohort_summary("2025-03-01T00:00:00Z", quote="BTC"))
    cohort_at(store, T0 + timedelta(minutes=1), "done-2", config=legacy_request("2025-03-02", 250.0))
    complete_cohort(store, "done-2", cohort_summary("2025-03-02T21:00:00-05:00", bankroll=250.0,
                                                    quote="USD", roi=-0.5, breaches=0, failed=0))
    cohort_at(store, T0 + timedelta(minutes=2), "running",
              config={**legacy_request("2025-03-04T08:00", quote="ETH"), "market": "binance-1m|1m|ETH"})
    cohort_at(store, T0 + timedelta(minutes=3), "failed", window_start="2025-03-05T00:00:00Z")
    store.fail_run("failed", "boom")
    cohort_at(store, T0 + timedelta(minutes=4), "bt", kind="backtest", genomes=[{"g": 0}],
              config={"bars": {"start": "2025-03-01", "end": "2025-03-02", "quote": "BTC"},
                      "bankroll": 500.0, "engine": {}})


LEGACY_HEADERS: dict[str, dict[str, Any]] = {
    "done": {"day": "2025-03-01", "window_start": "2025-03-01T00:00:00Z", "window_end": None,
             "bankroll": 1000.0, "quote": "BTC", "agents": 3, "data_label": DATA_LABEL,
             "market": None, "seeded_from": "random"},
    "done-2": {"day": "2025-03-03", "window_start": "2025-03-03T02:00:00Z", "window_end": None,
               "bankroll": 250.0, "quote": "USD", "agents": 3, "data_label": DATA_LABEL,
               "market": None, "seeded_from": "random"},
    "running": {"day": "2025-03-04", "window_start": "2025-03-04T08:00:00Z", "window_end": None,
                "bankroll": 1000.0, "quote": "ETH", "agents": 2, "data_label": DATA_LABEL,
                "market": "binance-1m|1m|ETH", "seeded_from": "random"},
    "failed": {"day": "2025-03-05", "window_start": "2025-03-05T00:00:00Z", "window_end": None,
               "bankroll": None, "quote": None, "agents": 2, "data_label": DATA_LABEL,
               "market": None, "seeded_from": None},
    "bt": {"day": "2025-03-01", "window_start": "2025-03-01T00:00:00Z",
           "window_end": "2025-03-02T00:00:00Z", "bankroll": 500.0, "quote": "BTC", "agents": 1,
           "data_label": DATA_LABEL, "market": None, "seeded_from": "backtest"},
}
"""The headers migration 0005 derives for the runs of :func:`make_legacy_runs`
("done": the summary's window, bankroll and quote, its three agents; "done-2":
the summary's window start in UTC; "running": the request, two genomes;
"failed": the top-level ``window_start``; "bt": a backtest's own config)."""


def assert_legacy_listing(store: Store) -> None:
    """The cohort listing of :func:`make_legacy_runs` once their headers are backfilled."""
    page = store.list_cohort_summaries()
    rows = {row["run_id"]: row for row in page["items"]}
    assert [row["run_id"] for row in page["items"]] == ["failed", "running", "done-2", "done"]
    for run_id, row in rows.items():
        header = LEGACY_HEADERS[run_id]
        assert (row["date"], row["bankroll"], row["quote"], row["agents"]) == (
            header["day"], header["bankroll"], header["quote"], header["agents"]), run_id
    assert (rows["done"]["roi"], rows["done"]["breaches"], rows["done"]["failed_agents"]) == (0.0125, 2, 1)
    assert (rows["done-2"]["roi"], rows["done-2"]["failed_agents"]) == (-0.5, 0)
    assert rows["running"]["roi"] is None and rows["failed"]["reason"] == "boom"
    assert [r["run_id"] for r in store.list_cohort_summaries(date="2025-03-03")["items"]] == ["done-2"]
    assert [r["run_id"] for r in store.list_cohort_summaries(bankroll=1000)["items"]] == [
        "running", "done"]


# -- learning -----------------------------------------------------------------------------


def make_genomes(n: int = 3, tag: str = "g") -> list[dict[str, Any]]:
    """``n`` genome dicts with ids ``<tag><i>``."""
    return [
        {"id": f"{tag}{i}", "family": "sma_cross", "params": {"fast": 3 + i, "slow": 20}, "leverage": 1.5}
        for i in range(n)
    ]


def make_knowledge(cycle_id: str, mode: str = "daily", **extra: Any) -> dict[str, Any]:
    """A knowledge record of one learning cycle."""
    record: dict[str, Any] = {
        "cycle_id": cycle_id,
        "mode": mode,
        "tried": {"families": ["sma_cross", "rsi_revert"], "population": 30, "generations": 12},
        "winner": {"family": "sma_cross", "params": {"fast": 5, "slow": 20}},
        "in_sample": {"sharpe": 1.8, "roi": 0.021},
        "out_of_sample": {"sharpe": 0.9, "roi": 0.008, "psr": 0.71},
    }
    record.update(extra)
    return record


def knowledge_at(store: Store, cycle_id: str, when: datetime, mode: str = "daily") -> str:
    """Save a knowledge record created at ``when``."""
    return store.save_knowledge(make_knowledge(cycle_id, mode, created_at=when.isoformat()))


def make_trial(i: int, value: float | None = None, **extra: Any) -> dict[str, Any]:
    """Search trial number ``i`` (value ``-0.5 * i`` unless given)."""
    trial: dict[str, Any] = {
        "params": {"mutpb": 0.1 + i / 100, "cxpb": 0.5, "pop": 20 + i, "family": "sma_cross"},
        "value": -0.5 * i if value is None else value,
    }
    trial.update(extra)
    return trial


SPACE_META = {
    "space": {"mutpb": [0.05, 0.5, "uniform"], "pop": [10, 60]},
    "objective": "neg_oos_sharpe",
    "n_initial_points": 10,
    "seed": 7,
}


# -- keyset pages ------------------------------------------------------------------------------


def paginate(store: Store, limit: int, **filters: Any) -> list[list[str]]:
    """Every ``list_runs`` page, following the ``before`` cursor."""
    pages: list[list[str]] = []
    before = None
    while True:
        page = [r["run_id"] for r in store.list_runs(limit=limit, before=before, **filters)]
        if not page:
            return pages
        assert len(page) <= limit
        pages.append(page)
        before = page[-1]
        assert len(pages) < 100, "pagination does not terminate"


def knowledge_pages(store: Store, limit: int, **filters: Any) -> list[list[str]]:
    """Every ``list_knowledge`` page, following the ``before`` cursor."""
    pages: list[list[str]] = []
    before = None
    while True:
        page = [r["cycle_id"] for r in store.list_knowledge(limit=limit, before=before, **filters)]
        if not page:
            return pages
        assert len(page) <= limit
        pages.append(page)
        before = page[-1]
        assert len(pages) < 100, "pagination does not terminate"


# -- raw views of the databases -------------------------------------------------------------


def raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection to a store's file (rows as :class:`sqlite3.Row`)."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def tables(path: Path) -> set[str]:
    """Table names of an SQLite file."""
    conn = raw(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def user_version(path: Path) -> int:
    """``PRAGMA user_version`` of an SQLite file."""
    conn = raw(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def mongo_docs(store: Any, collection: str, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The raw documents of a MongoStore's collection."""
    async def read(db: Any) -> list[dict[str, Any]]:
        return await db[collection].find(query or {}).to_list(None)

    return store.run_async(read)


def mongo_index_keys(store: Any, collection: str) -> dict[tuple[tuple[str, int], ...], bool]:
    """Index key patterns of a collection -> unique (names differ between servers)."""
    async def read(db: Any) -> dict[str, Any]:
        return await db[collection].index_information()

    return {tuple(info["key"]): bool(info.get("unique")) for info in store.run_async(read).values()}
