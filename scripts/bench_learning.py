#!/usr/bin/env python
"""Time of one learning cycle: 40 generations x 30 genomes, trained on 3 days of
5-minute bars of the 10 symbols of ``binance-5m`` (2018-01-12 .. 2018-01-15) and
scored out of sample on the next day. File loading and JIT warm-up are excluded;
best and median of ``--repeat`` runs.

Usage: python scripts/bench_learning.py [--data ../shared/data/binance-5m] [--repeat 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evolution.evolve import GAConfig  # noqa: E402
from learning.cycle import run_cycle  # noqa: E402
from learning.walkforward import Split, Window  # noqa: E402
from simulator.data import load_market  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "binance-5m"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    market = load_market(args.data)
    day = pd.Timedelta(days=1)
    t1 = pd.Timestamp("2018-01-15", tz="UTC")
    split = Split(Window(t1 - 3 * day, t1), Window(t1, t1 + day))
    ga = GAConfig(generations=40, population=30)
    run_cycle(market, split, ga=GAConfig(generations=1, population=30), seed=0)  # JIT warm-up
    times, res = [], None
    for i in range(args.repeat):
        t0 = time.perf_counter()
        res = run_cycle(market, split, ga=ga, seed=i)
        times.append(time.perf_counter() - t0)
    train = market.between(split.train.start, split.train.end)
    print(f"learning cycle: {ga.generations} generations x {ga.population} genomes, train {split.train} "
          f"({train.n_bars} bars x {len(market.symbols)} symbols), out of sample {split.validation}")
    print(f"  best {min(times):.2f} s, median {statistics.median(times):.2f} s over {args.repeat} runs "
          f"({res.evolution.trials} distinct genomes evaluated in the last run; one process, one core)")
    print(f"  in sample: median Sharpe {res.in_sample['median_sharpe']:.2f}; "
          f"out of sample: median Sharpe {res.out_of_sample['median_sharpe']:.2f}")


if __name__ == "__main__":
    main()
