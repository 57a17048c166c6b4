#!/usr/bin/env python
"""API latency: fill a store with 10,000 cohorts, then time the list endpoint and
the cohort page over HTTP against a real uvicorn server.

For each store (SQLite, and MongoDB through an nx-27017 wire-protocol server
started here unless ``--mongo-url`` names a real one) it prints p50/p95 of
``GET /api/experiments/cohorts`` (pages and filters) and ``GET /trading/cohorts/{id}``
(the dashboard page of one cohort). Target: p95 under 50 ms.

Usage: python scripts/bench_api.py [--cohorts 10000] [--requests 300] [--mongo-url URL] [--skip-mongo]
"""
from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_fill import bench_stores, fill_store, percentile  # noqa: E402
from manager.store import open_store  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(store_url: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "COHORTLAB_STORE": store_url}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "api.app:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the API did not start")


def bench(label: str, store_url: str, n: int, requests: int) -> None:
    with open_store(store_url) as st:
        t0 = time.perf_counter()
        ids, dates, bankrolls = fill_store(st, n=n)
        fill_s = time.perf_counter() - t0
    proc, base = serve(store_url)
    rng = random.Random(1)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            for _ in range(10):  # warm-up
                c.get("/api/experiments/cohorts")
                c.get(f"/trading/cohorts/{ids[0]}")
            lists, pages = [], []
            for i in range(requests):
                params = {"page": rng.randint(1, 50), "page_size": 20}
                if i % 3 == 1:
                    params["date"] = rng.choice(dates)
                elif i % 3 == 2:
                    params["bankroll"] = rng.choice(bankrolls)
                t = time.perf_counter()
                r = c.get("/api/experiments/cohorts", params=params)
                lists.append((time.perf_counter() - t) * 1e3)
                assert r.status_code == 200, r.text
                t = time.perf_counter()
                r = c.get(f"/trading/cohorts/{rng.choice(ids)}")
                pages.append((time.perf_counter() - t) * 1e3)
                assert r.status_code == 200, r.text[:200]
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{label}: {n:,} cohorts (filled in {fill_s:.1f} s), {requests} requests each")
    print(f"  GET /api/experiments/cohorts  p50 {statistics.median(lists):6.1f} ms   p95 {percentile(lists, 0.95):6.1f} ms")
    print(f"  GET /trading/cohorts/{{id}}     p50 {statistics.median(pages):6.1f} ms   p95 {percentile(pages, 0.95):6.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohorts", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--mongo-url", default=None, help="a real MongoDB (default: start nx-27017)")
    ap.add_argument("--skip-mongo", action="store_true")
    args = ap.parse_args()
    for label, url in bench_stores(mongo_url=args.mongo_url, skip_mongo=args.skip_mongo):
        bench(label, url, args.cohorts, args.requests)

if __name__ == "__main__":
    main()
