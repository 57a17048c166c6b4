"""A small real campaign for the promotion tests: 3 days from 2018-01-14 on
binance-5m (ETH, LTC, XMR against BTC), 8 agents, 2 generations; ranked on Day 3
(2018-01-16) and confirmed on the holdout day 2018-01-17. The bankroll (0.1 BTC)
keeps the proposed allocation small against the bars' volume.

``RELAXED`` is a promoter configuration under which agent ``a06`` passes every
guard rail on these figures (its trades 2, DSR 0.21, the cycle's PBO 0.65); each
promoter test then tightens exactly one rule."""
from __future__ import annotations

import pandas as pd

from evolution.evolve import GAConfig
from evolution.promoter import PromoterConfig
from manager.campaigns import CampaignRequest, run_campaign
from manager.learning_jobs import Source
from manager.runner import CohortRequest
from tests.helpers import BINANCE

SYMBOLS = ["ETH_BTC", "LTC_BTC", "XMR_BTC"]
BANKROLL = 0.1
RELAXED = PromoterConfig(min_trades=2, dsr_min=0.2, pbo_max=0.7, n_random=50)
BEST = "a06"


def source() -> Source:
    return Source(data=str(BINANCE), symbols=SYMBOLS)


def run(store=None) -> dict:
    req = CampaignRequest(source=source(), start="2018-01-14", days=3, lookback="1d",
                          cohort=CohortRequest(agents=8, bankroll=BANKROLL, seed=3, baselines=0),
                          ga=GAConfig(generations=2, population=8), min_trades=1, dsr_threshold=0.0)
    return run_campaign(req, store)


def day_market(report: dict, day: int = 3, warmup: int = 200):
    start = pd.Timestamp(report["days"][day - 1]["date"], tz="UTC")
    end = start + pd.Timedelta(days=1)
    return source().load(start, end, warmup).between(start, end, warmup)
