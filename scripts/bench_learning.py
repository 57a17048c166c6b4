#!/usr/bin/env python
"""Time of one learning cycle: 40 generations x 30 genomes, trained on 3 days of
5-minute bars of the 10 symbols of ``binance-5m`` (2018-01-12 .. 2018-01-15) and
scored out of sample on the next day, once with the default settings (fold
scoring, early stopping) and once running all 40 generations (``patience=0``).
File loading and JIT warm-up are excluded; best and median of ``--repeat`` runs.

Then the Bayesian search (``cohortlab optimize --strategy rsi_reversion`` on the
same window, through ``manager.search_jobs.optimize_family``): a first run of
``--search-trials`` trials into a temporary SQLite store, a rerun of the complete
study (returns the stored trials: no optimizer, no surrogate fit), a partial
resume to 5 more trials, and the replay of the stored trials into an optimizer
in one batched ``tell`` against one ``tell`` per trial (the replay before issue
8 part 6). Each search time includes loading the bars and scoring the best set
out of sample, as the command does.

Usage: python scripts/bench_learning.py [--data ../shared/data/binance-5m] [--repeat 3]
                                        [--search-trials 20] [--skip-cycle] [--skip-search]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
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
    ap.add_argument("--search-trials", type=int, default=20)
    ap.add_argument("--skip-cycle", action="store_true", help="only the search benchmark")
    ap.add_argument("--skip-search", action="store_true", help="only the learning-cycle benchmark")
    args = ap.parse_args()
    if not args.skip_cycle:
        bench_cycle(args)
    if not args.skip_search:
        bench_search(args)


def bench_cycle(args: argparse.Namespace) -> None:
    market = load_market(args.data)
    day = pd.Timedelta(days=1)
    t1 = pd.Timestamp("2018-01-15", tz="UTC")
    split = Split(Window(t1 - 3 * day, t1), Window(t1, t1 + day))
    run_cycle(market, split, ga=GAConfig(generations=1, population=30), seed=0)  # JIT warm-up
    train = market.between(split.train.start, split.train.end)
    # default settings (3 folds, median, early stopping with patience 5), then all 40
    # generations (patience 0): the cost of fold scoring per generation
    for label, ga in (("default (early stopping on)", GAConfig(generations=40, population=30)),
                      ("all generations (--patience 0)", GAConfig(generations=40, population=30, patience=0))):
        times, runs = [], []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            runs.append(run_cycle(market, split, ga=ga, seed=i))
            times.append(time.perf_counter() - t0)
        res = runs[-1]
        gens = sum(r.evolution.stopped_at for r in runs)
        print(f"learning cycle, {label}: {ga.generations} generations x {ga.population} genomes, train "
              f"{split.train} ({train.n_bars} bars x {len(market.symbols)} symbols), out of sample {split.validation}")
        print(f"  best {min(times):.2f} s, median {statistics.median(times):.2f} s over {args.repeat} runs; "
              f"{sum(times) / max(gens, 1) * 1000:.1f} ms per generation run "
              f"(stopped at {[r.evolution.stopped_at for r in runs]}, kept {[r.evolution.best_generation for r in runs]}; "
              f"{res.evolution.trials} distinct genomes evaluated in the last run; one process, one core)")
        print(f"  in sample: median Sharpe {statistics.median(r.in_sample['median_sharpe'] for r in runs):.2f}; "
              f"out of sample: median Sharpe {statistics.median(r.out_of_sample['median_sharpe'] for r in runs):.2f} "
              f"(medians over the runs)")


def bench_search(args: argparse.Namespace) -> None:
    from learning.search import family_space, replay
    from manager.learning_jobs import Source
    from manager.search_jobs import optimize_family
    from manager.store import open_store
    from simulator.engine import EngineConfig
    from simulator.strategies.registry import get_strategy

    n = args.search_trials
    kw = dict(start="2018-01-12", end="2018-01-15", validation="1d", study=None, seed=7, engine=EngineConfig())
    src = Source(data=args.data)

    def timed(url: str, trials: int):
        with open_store(url) as st:
            t0 = time.perf_counter()
            res, _ = optimize_family(src, "rsi_reversion", trials=trials, store=st, **kw)
            return time.perf_counter() - t0, res

    with tempfile.TemporaryDirectory() as tmp:
        timed(f"sqlite:///{tmp}/warm.db", 1)  # imports, JIT warm-up
        url = f"sqlite:///{tmp}/s.db"
        t_first, first = timed(url, n)
        t_again, again = timed(url, n)
        assert (again.ran, again.resumed, again.best["params"]) == (0, n, first.best["params"])
        shutil.copy(f"{tmp}/s.db", f"{tmp}/p.db")
        t_part, part = timed(f"sqlite:///{tmp}/p.db", n + 5)
        assert (part.resumed, part.ran) == (n, 5)
        space = family_space(get_strategy("rsi_reversion"))
        xs = [[t["params"][d.name] for d in space] for t in first.trials]
        ys = [t["value"] for t in first.trials]
        t0 = time.perf_counter()
        batched = replay(space, xs, ys, seed=7)
        t_batch = time.perf_counter() - t0
        t0 = time.perf_counter()
        seq = replay(space, [], [], seed=7)
        for x, y in zip(xs, ys):
            seq.tell(x, y)
        t_seq = time.perf_counter() - t0
    print("bayesian search (optimize --strategy rsi_reversion, train 2018-01-12..2018-01-15, SQLite store):")
    print(f"  first run, {n} trials: {t_first:.2f} s; rerun of the complete study: {t_again:.2f} s "
          f"(0 trials run, same best, no surrogate fit); resume {n} -> {n + 5} trials: {t_part:.2f} s")
    print(f"  replaying {n} stored trials: one batched tell {t_batch:.2f} s ({len(batched.models)} GP fit) "
          f"vs one tell per trial {t_seq:.2f} s ({len(seq.models)} GP fits)")


if __name__ == "__main__":
    main()
