#!/usr/bin/env python
"""Fill a store with synthetic completed cohort runs, and time the cohort listing.

The store half of ``scripts/bench_api.py``: :func:`fill_store` writes ``n``
completed cohorts through the storage port (``create_run`` + ``complete_run``,
so every adapter stores them exactly as it stores real runs, listing fields
included), each shaped like a real ``cohortlab run`` result: a summary as
``manager.report.cohort_report`` writes it (window, parent figures, a
30-agent leaderboard with genomes, hourly PnL, settings), 30 agent rows, one
trade per agent, a small balanced ledger and small equity curves.
:func:`time_listing` times ``Store.list_cohort_summaries`` itself.

Run as a script it fills a fresh SQLite file and a fresh database on an
nx-27017 server it starts (as the contract tests do; ``--mongo-url`` for a real
MongoDB), printing the fill time and the listing's p50/p95 for each.

Usage: python scripts/bench_fill.py [--cohorts 10000] [--calls 200] [--mongo-url URL] [--skip-mongo]
"""
from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from manager.store import Store, open_store  # noqa: E402

AGENTS = 30
BARS = 96  # curve length (e.g. one day of 15-minute bars)
SYMBOLS = ["ETH_BTC", "LTC_BTC", "XRP_BTC", "ADA_BTC", "BNB_BTC"]
FAMILIES = ["sma_cross", "ema_macd", "rsi_reversion", "bollinger_reversion", "donchian_breakout",
            "vwap_deviation"]
BANKROLLS = [100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0]
DAYS = 365  # window start days, the last DAYS days before FIRST_CREATED's year end
FIRST_DAY = datetime(2024, 1, 1, tzinfo=timezone.utc)
FIRST_CREATED = datetime(2025, 1, 1, tzinfo=timezone.utc)


class Filled(NamedTuple):
    """What :func:`fill_store` wrote: ``run_ids`` (creation order), and the
    distinct ``dates`` ("YYYY-MM-DD") and ``bankrolls`` used, for filters."""

    run_ids: list[str]
    dates: list[str]
    bankrolls: list[float]


def _genome(rng: random.Random, i: int) -> dict[str, Any]:
    family = FAMILIES[i % len(FAMILIES)]
    fast = rng.randint(3, 30)
    return {
        "family": family,
        "params": {"fast": fast, "slow": fast + rng.randint(5, 60), "threshold": round(rng.random(), 4)},
        "size": round(rng.uniform(0.2, 1.0), 4),
        "stop_loss": round(rng.uniform(0.0, 0.05), 4),
        "take_profit": round(rng.uniform(0.0, 0.1), 4),
        "max_hold_bars": rng.choice([0, 12, 48]),
        "leverage": round(rng.uniform(1.0, 2.0), 3),
        "symbols": rng.sample(SYMBOLS, rng.randint(1, len(SYMBOLS))),
        "generation": rng.randint(0, 40),
        "parents": [f"{rng.getrandbits(48):012x}" for _ in range(2)],
        "genome_id": f"{rng.getrandbits(64):016x}",
    }


def _run(rng: random.Random, k: int, run_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The run document and the complete_run arguments of synthetic cohort ``k``."""
    day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
    start, end = day, day + timedelta(days=1)
    bankroll = rng.choice(BANKROLLS)
    created = FIRST_CREATED + timedelta(minutes=10 * k, microseconds=rng.randrange(1_000_000))
    genomes = [_genome(rng, i) for i in range(AGENTS)]
    allocated = bankroll / AGENTS
    rois = sorted((rng.gauss(0.0, 0.03) for _ in range(AGENTS)), reverse=True)
    leaderboard = []
    for rank, (genome, roi) in enumerate(zip(genomes, rois), start=1):
        leaderboard.append({
            "agent_id": f"a{rank - 1:02d}", "family": genome["family"], "genome": genome,
            "allocated": allocated, "final_equity": allocated * (1 + roi), "roi": roi,
            "hourly_roi": roi / 24, "realized_pnl": allocated * roi * 0.8,
            "unrealized_pnl": allocated * roi * 0.2, "fees": allocated * 0.001,
            "sharpe": roi * 40, "sortino": roi * 55, "max_drawdown": abs(rng.gauss(0.02, 0.01)),
            "trades": rng.randint(0, 40), "win_rate": rng.random(), "utilisation": rng.random(),
            "peak_utilisation": rng.random(), "breaches": rng.randint(0, 3), "liquidated": False,
            "confidence": rng.random(), "rank": rank,
        })
    roi = sum(rois) / AGENTS
    failed = rng.choice([0, 0, 0, 1])
    summary = {
        "run_id": run_id, "seed": k, "bankroll": bankroll, "allocation": "equal",
        "window": {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "end": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "timeframe": "15m", "bars": BARS,
                   "symbols": SYMBOLS},
        "parent": {"final_equity": bankroll * (1 + roi), "roi": roi,
                   "max_drawdown": abs(rng.gauss(0.03, 0.01)), "peak_gross_exposure": rng.random(),
                   "peak_utilisation": rng.random(), "unallocated_cash": 0.0,
                   "breaches": rng.randint(0, 20), "sharpe": roi * 40,
                   "mean_gross_exposure": rng.random() / 2, "liquidations": 0,
                   "fees": bankroll * 0.001, "failed_agents": failed},
        "agents": leaderboard,
        "hourly": [{"hour": h, "pnl": rng.gauss(0, 1), "gross_exposure": rng.random()}
                   for h in range(24)],
        "ledger": {"transactions": 2, "balanced": True},
        "failed_agents": [{"agent_id": f"a{AGENTS - 1:02d}", "family": genomes[-1]["family"],
                           "error": "EngineError: synthetic"}] * failed,
        "data": "binance-5m", "quote": "BTC",
        "settings": {"reserve": 0.0, "fee_bps": 10.0, "slippage_bps": 5.0,
                     "max_gross_leverage": 1.0, "max_symbol_exposure": 1.0,
                     "maintenance_margin": 0.05, "allow_short": False, "settle": False},
        "seeded_from": "hall_of_fame",
    }
    run = {
        "run_id": run_id, "kind": "cohort", "created_at": created.isoformat(),
        "header": {"day": start.date().isoformat(), "window_start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "window_end": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "bankroll": bankroll, "quote": "BTC",
                   "agents": AGENTS, "data_label": "binance-5m", "market": "binance-5m|15m|BTC",
                   "seeded_from": "hall_of_fame"},
        "config": {"request": {"bankroll": bankroll, "agents": AGENTS, "seed": k,
                               "bars": {"data": "binance-5m", "symbols": None,
                                        "start": start.date().isoformat(), "end": None,
                                        "warmup_bars": 200, "quote": None, "seed": 0}},
                   "seeded_from": "hall_of_fame"},
        "genomes": genomes,
        "data_label": "binance-5m",
    }
    micro = f"{round(allocated * 1e8):d}"
    ledger = [
        {"txn_id": "deposit", "seq": 0, "bar": 0, "time": start.isoformat(), "kind": "deposit",
         "memo": "bankroll", "postings": [
             {"account": "capital", "amount": f"-{round(bankroll * 1e8):d}E-8"},
             {"account": "parent:cash", "amount": f"{round(bankroll * 1e8):d}E-8"}]},
        {"txn_id": "allocate", "seq": 1, "bar": 0, "time": start.isoformat(), "kind": "allocate",
         "memo": "equal", "postings": [
             {"account": "parent:cash", "amount": f"-{int(micro) * AGENTS:d}E-8"},
             *({"account": f"agent:a{i:02d}:cash", "amount": f"{micro}E-8"} for i in range(AGENTS))]},
    ]
    trades = [{"agent_id": a["agent_id"], "symbol": a["genome"]["symbols"][0],
               "entry_time": start.isoformat(), "entry_price": 0.05, "exit_time": end.isoformat(),
               "exit_price": 0.05 * (1 + a["roi"]), "qty": 1.0, "fees": 0.0001, "pnl": a["roi"]}
              for a in leaderboard]
    # The runner's curves, in the engine's layout: per agent (agents, bars).
    t = np.datetime64(start.replace(tzinfo=None), "ns") + np.arange(BARS) * np.timedelta64(15, "m")
    steps = np.random.default_rng(k).normal(0, 1e-3, (AGENTS, BARS))
    equity = allocated * (1 + np.cumsum(steps, axis=1))
    curves = {"timestamps": t.astype(np.int64), "equity": equity,
              "position_value": equity * 0.5, "parent_equity": equity.sum(axis=0)}
    results = {"summary": summary, "agents": leaderboard, "trades": trades, "ledger": ledger,
               "curves": curves, "timings": {"simulate_s": 1.2, "store_s": 0.1}}
    return run, results


def fill_store(store: Store, n: int = 10_000, seed: int = 0, *, workers: int | None = None,
               progress: Callable[[int], None] | None = None) -> Filled:
    """Write ``n`` synthetic completed cohort runs to ``store`` (see the module docstring).

    Deterministic for a given ``seed`` (run ids ``bench-<seed>-<k>``, created 10
    minutes apart from 2025-01-01; window start days spread over 2024;
    bankrolls from :data:`BANKROLLS`). Runs go through the port, so they are
    stored as real runs are.

    Args:
        store: an open store (fresh, or at least without these run ids).
        n: how many cohorts.
        seed: seed of the synthetic values.
        workers: threads writing at once; default 1 for SQLite (one connection,
            writes are serialised anyway) and 8 for other stores (overlaps the
            round trips to the server).
        progress: called with the number of runs written so far, every 500.

    Returns:
        :class:`Filled` ``(run_ids, dates, bankrolls)``.
    """
    from manager.store import SQLiteStore

    if workers is None:
        workers = 1 if isinstance(store, SQLiteStore) else 8
    ids = [f"bench-{seed}-{k:06d}" for k in range(n)]
    dates: set[str] = set()
    bankrolls: set[float] = set()

    def write(k: int) -> None:
        run, results = _run(random.Random(seed * 1_000_003 + k), k, ids[k])
        store.create_run(run)
        store.complete_run(ids[k], **results)
        dates.add(run["header"]["day"])
        bankrolls.add(run["header"]["bankroll"])

    done = 0
    if workers <= 1:
        for k in range(n):
            write(k)
            done += 1
            if progress and done % 500 == 0:
                progress(done)
    else:
        with ThreadPoolExecutor(workers) as pool:
            for _ in pool.map(write, range(n)):
                done += 1
                if progress and done % 500 == 0:
                    progress(done)
    return Filled(ids, sorted(dates), sorted(bankrolls))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def time_listing(store: Store, filled: Filled, calls: int = 200, seed: int = 1) -> dict[str, Any]:
    """Time ``store.list_cohort_summaries`` over ``calls`` calls: pages 1-50 of 20
    rows, a third unfiltered, a third by date, a third by bankroll, and every
    fifth call also with ``created_after``. Returns p50/p95/max in ms."""
    rng = random.Random(seed)
    start = FIRST_CREATED.isoformat()
    for _ in range(10):  # warm-up
        store.list_cohort_summaries()
    times = []
    for i in range(calls):
        kwargs: dict[str, Any] = {"limit": 20, "offset": 20 * rng.randrange(50)}
        if i % 3 == 1:
            kwargs["date"] = rng.choice(filled.dates)
            kwargs["offset"] = 0
        elif i % 3 == 2:
            kwargs["bankroll"] = rng.choice(filled.bankrolls)
        if i % 5 == 4:
            kwargs["created_after"] = start
        t = time.perf_counter()
        page = store.list_cohort_summaries(**kwargs)
        times.append((time.perf_counter() - t) * 1e3)
        assert page["total"] > 0, kwargs
    return {"calls": calls, "p50_ms": statistics.median(times), "p95_ms": percentile(times, 0.95),
            "max_ms": max(times)}


# -- the script ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_nx_27017(folder: Path) -> tuple[subprocess.Popen, str]:
    """Start nx-27017 on a free localhost port with its own data folder (as the
    contract tests do); returns the process and ``mongodb://127.0.0.1:<port>/``."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nx_27017.nx_27017", "--host", "127.0.0.1", "--port", str(port),
         "--data-dir", str(folder / "nx-data"), "--pid-file", str(folder / "nx.pid"),
         "--log-file", str(folder / "nx.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    url = f"mongodb://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            with MongoClient(url, serverSelectionTimeoutMS=250) as client:
                client.admin.command("ping")
            return proc, url
        except PyMongoError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise RuntimeError("nx-27017 did not start")


def bench(label: str, url: str, n: int, calls: int) -> None:
    with open_store(url) as store:
        t = time.perf_counter()
        filled = fill_store(store, n=n, progress=lambda k: print(f"  {label}: {k:,} runs", flush=True))
        fill_s = time.perf_counter() - t
        print(f"{label}: filled {n:,} cohorts in {fill_s:.1f} s ({fill_s / n * 1e3:.2f} ms per run)")
        stats = time_listing(store, filled, calls)
        print(f"  list_cohort_summaries: p50 {stats['p50_ms']:.2f} ms  p95 {stats['p95_ms']:.2f} ms  "
              f"max {stats['max_ms']:.2f} ms over {calls} calls", flush=True)


def bench_stores(*, mongo_url: str | None = None, skip_mongo: bool = False,
                 skip_sqlite: bool = False) -> Iterator[tuple[str, str]]:
    """Yield ``(label, store URL)`` for each store to benchmark: a fresh SQLite file,
    then ``mongo_url`` or, without it, a temporary nx-27017 server (stopped when
    the iteration ends). Everything lives in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not skip_sqlite:
            yield "SQLite", f"sqlite:///{folder / 'bench.db'}"
        if skip_mongo:
            return
        if mongo_url:
            yield "MongoDB", mongo_url
            return
        proc, url = start_nx_27017(folder)
        try:
            yield "MongoDB (nx-27017)", url + "bench"
        finally:
            proc.terminate()
            proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--mongo-url", default=None, help="a real MongoDB (default: start nx-27017)")
    ap.add_argument("--skip-mongo", action="store_true")
    ap.add_argument("--skip-sqlite", action="store_true")
    args = ap.parse_args()
    for label, url in bench_stores(mongo_url=args.mongo_url, skip_mongo=args.skip_mongo,
                                   skip_sqlite=args.skip_sqlite):
        bench(label, url, args.cohorts, args.calls)

if __name__ == "__main__":
    main()
