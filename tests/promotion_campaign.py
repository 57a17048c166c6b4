"""A small real campaign for the promotion tests: 3 days from 2018-01-14 on
binance-5m (ETH, LTC, XMR against BTC), 8 agents, 2 generations; ranked on Day 3
(2018-01-16) and confirmed on the holdout day 2018-01-17. The bankroll (0.1 BTC)
keeps the proposed allocation small against the bars' volume.

``RELAXED`` is a promoter configuration under which agent ``a06`` passes every
guard rail on these figures (its trades 2, DSR 0.21, the cycle's PBO 0.65); each
promoter test then tightens exactly one rule.

The campaign's leverage policy does not apply the Kelly cap (``kelly_min_bars`` above
the campaign's bars: "not applied"): a06's lineage lost over Days 1-2, so its half-Kelly
leverage is 0 and the promoter would rightly block it for an empty allocation (the
``policy`` rail needs a gross exposure > 0; tested on its own in
``tests/evolution/test_promoter.py``)."""
from __future__ import annotations

import pandas as pd

from evolution.evolve import GAConfig
from evolution.promoter import PromoterConfig
from risk.policy import PolicyConfig
from manager.campaigns import CampaignRequest, run_campaign
from manager.learning_jobs import Source
from manager.runner import CohortRequest
from tests.helpers import BINANCE

SYMBOLS = ["ETH_BTC", "LTC_BTC", "XMR_BTC"]
BANKROLL = 0.1
RELAXED = PromoterConfig(min_trades=2, dsr_min=0.2, pbo_max=0.7, n_random=50)
BEST = "a06"
NO_KELLY = PolicyConfig(kelly_min_bars=1_000_000)


def source(data=BINANCE) -> Source:
    return Source(data=str(data), symbols=SYMBOLS)


def run(store=None, data=BINANCE) -> dict:
    """Run the campaign on ``data`` (default the shared binance-5m folder; the go-live
    journey passes a copy it can plant a crash in)."""
    req = CampaignRequest(source=source(data), start="2018-01-14", days=3, lookback="1d",
                          cohort=CohortRequest(agents=8, bankroll=BANKROLL, seed=3, baselines=0),
                          ga=GAConfig(generations=2, population=8), min_trades=1, dsr_threshold=0.0,
                          policy_config=NO_KELLY)
    return run_campaign(req, store)


def day_market(report: dict, day: int = 3, warmup: int = 200):
    start = pd.Timestamp(report["days"][day - 1]["date"], tz="UTC")
    end = start + pd.Timedelta(days=1)
    return source().load(start, end, warmup).between(start, end, warmup)
