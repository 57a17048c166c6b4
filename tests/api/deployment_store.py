"""A running deployment in any store, for the API and CLI tests of issue 14: a promotion
inserted ``risk_approved`` through the store (what ``manager.promotions.approve`` leaves) and
started by :func:`manager.deployments.start_deployment` on two real binance-5m days (the
first is the approving backtest's history, the second is traded from row :data:`START`), as
``tests/manager/test_deployments.py`` does."""
from __future__ import annotations

import uuid
from functools import lru_cache

from evolution.genome import Genome
from evolution.promoter import allocation_for
from manager import deployments as dep
from simulator.data import load_market
from tests.helpers import BINANCE

GENOME = Genome("sma_cross", {"fast": 5, "slow": 20}, symbols=("ETH_BTC",), size=1.0, leverage=1.0)
ALLOCATION = 0.005  # BTC
START = 100 + 288  # first traded row: 2018-01-15 00:00


@lru_cache(maxsize=1)
def market():
    """ETH_BTC 2018-01-14..16 with 100 warm-up bars."""
    return load_market(BINANCE, symbols=["ETH_BTC"], start="2018-01-14", end="2018-01-16", warmup_bars=100)


def deploy(store, *, steps: int = 0, campaign_id: str = "camp-dep") -> dict:
    """Start a deployment of a fresh ``risk_approved`` promotion and step it ``steps`` bars."""
    m = market()
    pid = f"promo-{uuid.uuid4().hex[:12]}"
    alloc = allocation_for(0.1, GENOME.leverage, 2.0, None)
    alloc = {**alloc, "amount": ALLOCATION, "gross_exposure": ALLOCATION * alloc["leverage"]}
    store.create_promotion({"promotion_id": pid, "campaign_id": campaign_id, "day": 3, "run_id": "r3",
                            "agent_id": "a06", "status": "risk_approved", "genome": GENOME.to_dict(),
                            "allocation": alloc, "created_at": "2018-01-14T23:00:00Z"})
    now = m.timestamps[START].astype("datetime64[us]").item().isoformat() + "+00:00"
    d = dep.start_deployment(store, pid, market=m, now=now, start_bar=START)
    for b in range(START, START + steps):
        dep.step(store, d["deployment_id"], b, market=m)
    return store.get_deployment(d["deployment_id"])
