#!/usr/bin/env python
"""Engine throughput and single-backtest speed on real bars.

1. A cohort of 30 random agents (seed 7), every agent on all 10 symbols of
   ``binance-5m``, over all its bars: signals (indicators included) + lockstep
   engine. Prints agent-symbol-bars per second. File loading and JIT warm-up are
   excluded; the best of ``--repeat`` runs is reported, with the median.
2. The single ``sma_cross`` backtest of the README (ETH_BTC, fast=10, slow=30,
   size 1.0, fee 10 bps, slippage 0, bankroll 1000) timed the same way, next to
   vectorbt's ``Portfolio.from_signals`` on the same bars, with entries and
   exits vectorbt computes itself (``MA`` + ``ma_crossed_above`` /
   ``ma_crossed_below``; if vectorbt is installed: ``pip install -e .[bench]``),
   and the final equity of both as an independent cross-check.
3. The random-genome baseline of a cohort report: 20 random cohorts x 30 agents
   for one day (288 bars of binance-5m, 10 symbols) in one engine call (target < 1 s).

Usage: python scripts/bench_engine.py [--data ../shared/data/binance-5m] [--repeat 7]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolution.baselines import random_cohorts  # noqa: E402
from evolution.genome import Genome  # noqa: E402
from evolution.toolbox import random_genomes  # noqa: E402
from simulator.allocation import allocate  # noqa: E402
from simulator.cohort import agent_arrays, build_signals, simulate_cohort  # noqa: E402
from simulator.data import load_market  # noqa: E402
from simulator.engine import EngineConfig, run_engine  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def cohort_once(market, genomes, config):
    sig, weight = build_signals(market, genomes)
    alloc, bank = allocate(1000.0, "equal", n_agents=len(genomes))
    return run_engine(market, sig, agent_arrays(genomes, weight, alloc), bankroll_units=bank, config=config)


def baselines_once(data: str, config, repeat: int, cohorts: int = 20, agents: int = 30) -> None:
    """The random-genome baseline of one cohort day (issue 10): ``cohorts`` random cohorts of
    ``agents`` agents on one day (288 bars of 5m after 200 warm-up bars), drawn and run in ONE
    engine call (:func:`evolution.baselines.random_cohorts`, net of costs only; the report runs
    it twice, net and gross). Genome drawing + signals + engine + per-cohort aggregation."""
    import pandas as pd

    full = load_market(data)
    start = pd.Timestamp(full.timestamps[-1], tz="UTC").normalize() - pd.Timedelta(days=1)
    day = load_market(data, None, start, start + pd.Timedelta(days=1), warmup_bars=200)

    def once():
        return random_cohorts(day, n_cohorts=cohorts, cohort_size=agents, bankroll=1000.0, config=config,
                              seed=7, max_leverage=2.0, gross=False)

    once()  # JIT warm-up of the kernels at this shape
    best, med = timed(once, repeat)
    print(f"baselines: {cohorts} random cohorts x {agents} agents = {cohorts * agents} genomes, one day "
          f"({day.n_trading_bars} bars of {day.timeframe}, {len(day.symbols)} symbols) in one engine call: "
          f"best {best * 1e3:.0f} ms, median {med * 1e3:.0f} ms (target < 1 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "binance-5m"))
    ap.add_argument("--agents", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    market = load_market(args.data)
    T, S = market.close.shape
    genomes = [replace(g, symbols=tuple(market.symbols))
               for g in random_genomes(args.agents, market.symbols, seed=7, max_leverage=2.0)]
    config = EngineConfig()
    cohort_once(market.head(300), genomes, config)  # JIT warm-up
    best, med = timed(lambda: cohort_once(market, genomes, config), args.repeat)
    work = args.agents * S * T
    print(f"cohort: {args.agents} agents x {S} symbols x {T} bars = {work:,} agent-symbol-bars")
    print(f"  signals + engine: best {best * 1e3:.1f} ms, median {med * 1e3:.1f} ms "
          f"-> {work / best / 1e6:.1f} M agent-symbol-bars/s (median {work / med / 1e6:.1f} M/s)")
    best_full, _ = timed(lambda: simulate_cohort(market, genomes, bankroll=1000.0, config=config),
                         max(3, args.repeat))
    print(f"  full cohort incl. scoring, trades and ledger journal + hash chain + verify: "
          f"{best_full * 1e3:.0f} ms = {best_full / best:.2f}x signals + engine (target <= 3x)")
    baselines_once(args.data, config, args.repeat)

    eth = market.select(["ETH_BTC"])
    g = Genome("sma_cross", {"fast": 10, "slow": 30}, symbols=("ETH_BTC",), size=1.0)
    bt_cfg = EngineConfig(fee_bps=10, slippage_bps=0)

    def backtest():
        return simulate_cohort(eth, [g], bankroll=1000.0, config=bt_cfg, with_ledger=False)

    res = backtest()
    bt_best, bt_med = timed(backtest, args.repeat * 3)
    print(f"backtest sma_cross(10, 30) on ETH_BTC, {eth.n_bars} bars: best {bt_best * 1e3:.2f} ms, "
          f"median {bt_med * 1e3:.2f} ms; final equity {res.parent['final_equity']:.8f} BTC")
    try:
        import pandas as pd
        import vectorbt as vbt
    except ImportError:
        print("vectorbt not installed: pip install -e '.[bench]' for the comparison")
        return
    idx = pd.DatetimeIndex(eth.timestamps)
    close = pd.Series(eth.close[:, 0], index=idx)
    open_ = pd.Series(eth.open[:, 0], index=idx)
    # vectorbt's own signals (its MAs and crosses), decided at the close of bar t, filled at the open of t+1
    fast, slow = vbt.MA.run(close, 10), vbt.MA.run(close, 30)
    en = fast.ma_crossed_above(slow).shift(1, fill_value=False)
    ex = fast.ma_crossed_below(slow).shift(1, fill_value=False)

    def vbt_backtest():
        return vbt.Portfolio.from_signals(close, en, ex, price=open_, fees=0.001, init_cash=1000.0,
                                          freq="5min")

    pf = vbt_backtest()
    v_best, v_med = timed(vbt_backtest, args.repeat * 3)
    print(f"vectorbt {vbt.__version__} Portfolio.from_signals on the same bars: best {v_best * 1e3:.2f} ms, "
          f"median {v_med * 1e3:.2f} ms; final equity {float(pf.final_value()):.8f} BTC")
    print(f"  cohortlab / vectorbt time (best): {bt_best / v_best:.2f}")


if __name__ == "__main__":
    main()
