"""The broker port: PaperBroker + LiveAgent replayed on real bars reproduce the engine.

THE test: a deployment replayed bar by bar through :class:`ReplayFeed`,
:class:`LiveAgent` and :class:`PaperBroker` gives the same fills (bar, symbol, qty,
price, fee), the same equity at every close and the same gate breaches as
:func:`simulator.cohort.simulate_cohort` of that one agent over the same window.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from evolution.genome import Genome
from simulator.broker import BrokerError, Order, PaperBroker
from simulator.cohort import simulate_cohort
from simulator.data import load_market
from simulator.engine import EngineConfig
from simulator.feed import ReplayFeed
from simulator.kernel import UNITS
from simulator.live_agent import LiveAgent, LiveAgentError
from tests.helpers import BINANCE, market_from_prices

DAY = dict(start="2018-01-15", end="2018-01-16", warmup_bars=100)


def _replay(market, genome, config, bankroll=1.0, allow_short=False):
    feed = ReplayFeed(market)
    agent = LiveAgent(genome, feed.history(), deployment_id="dep-1", allow_short=allow_short)
    broker = PaperBroker.from_config(bankroll, market.symbols, config, leverage_cap=agent.leverage_ceiling)
    equity = []
    for bar in feed:
        broker.on_bar(bar)
        equity.append(broker.equity())
        for order in agent.on_bar(bar):
            broker.submit(order)
    return broker, np.array(equity)


CASES = {
    "one symbol, long only": (("ETH_BTC",), dict(size=1.0, leverage=1.0), EngineConfig(), False),
    "two symbols, shorts, gate clips": (
        ("ETH_BTC", "LTC_BTC"), dict(size=0.8, leverage=3.0),
        EngineConfig(allow_short=True, max_gross_leverage=1.5, max_symbol_exposure=0.9), True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_replay_on_historical_bars_reproduces_the_engine_backtest(case):
    symbols, genes, config, short = CASES[case]
    market = load_market(BINANCE, symbols=list(symbols), **DAY)
    assert market.warmup == 100 and market.n_trading_bars == 288
    genome = Genome("sma_cross", {"fast": 5, "slow": 20}, symbols=symbols, **genes)
    eng = simulate_cohort(market, [genome], bankroll=1.0, config=config, with_ledger=False).engine
    broker, equity = _replay(market, genome, config, allow_short=short)

    f = eng.fills
    got = broker.fills()
    assert len(got) == len(f["bar"]) > 10
    for k, fill in enumerate(got):
        assert fill.bar == f["bar"][k]
        assert fill.symbol == market.symbols[f["symbol"][k]]
        assert fill.qty == pytest.approx(f["qty"][k], rel=1e-8)
        assert fill.price == pytest.approx(f["price"][k], rel=1e-8)
        assert fill.fee_units == pytest.approx(f["fee_units"][k], rel=1e-8, abs=1)
        assert fill.kind == "signal"
    assert broker.fee_units == pytest.approx(int(eng.fee_units[0]), rel=1e-8)
    assert broker.cash_units == pytest.approx(int(eng.cash_units[0]), rel=1e-8)
    np.testing.assert_allclose(equity, eng.equity[0], rtol=1e-8)
    assert broker.balances()["equity"] == pytest.approx(float(eng.equity[0, -1]), rel=1e-8)
    assert broker.positions() == {s: pytest.approx(q, rel=1e-8)
                                  for s, q in zip(market.symbols, eng.qty[0]) if q != 0.0}
    assert broker.breaches == int(eng.breaches[0])
    if short:
        assert broker.breaches > 0 and any(fl.position < 0 for fl in got)  # the gate and shorts were exercised


def test_resubmitting_a_client_order_id_fills_once():
    m = market_from_prices([[1.0], [1.0], [2.0], [2.0]], symbols=("X_USD",))
    feed = ReplayFeed(m, start=0)
    broker = PaperBroker(100.0, 10.0, 5.0, m.symbols)
    broker.on_bar(feed.next_bar())
    order = Order("dep:0:X_USD", "X_USD", 0.5)
    oid = broker.submit(order)
    assert broker.submit(order) == oid  # a restarted loop resubmits: same order
    broker.on_bar(feed.next_bar())
    assert broker.submit(order) == oid  # even after it filled
    broker.on_bar(feed.next_bar())
    assert len(broker.fills()) == 1 and broker.order(oid).status == "filled"
    fill = broker.fills()[0]
    # the engine's sizing: half the equity, spent including slippage and fee
    assert fill.price == pytest.approx(1.0005)
    assert fill.qty == pytest.approx(0.5 * 100.0 / (1.0005 * 1.001))
    assert fill.fee_units == round(fill.notional_units * 0.001)
    with pytest.raises(BrokerError, match="already used"):
        broker.submit(Order("dep:0:X_USD", "X_USD", 0.9))


def test_cancel_replace_and_untradable_bars():
    m = market_from_prices([[1.0], [1.1], [1.2], [1.3]], symbols=("X_USD",),
                           tradable=[[True], [False], [True], [True]])
    feed = ReplayFeed(m, start=0)
    broker = PaperBroker(10.0, 0.0, 0.0, m.symbols)
    broker.on_bar(feed.next_bar())
    a = broker.submit(Order("c1", "X_USD", 1.0))
    assert broker.cancel(a) is True and broker.cancel(a) is False
    b = broker.submit(Order("c2", "X_USD", 1.0))
    c = broker.submit(Order("c3", "X_USD", 0.5))  # a newer target replaces the pending one
    assert broker.order(b).status == "replaced" and [o.order_id for o in broker.open_orders()] == [c]
    assert broker.on_bar(feed.next_bar()) == []  # bar 1 is not tradable: the order waits
    fills = broker.on_bar(feed.next_bar())
    assert [(fl.bar, fl.price, fl.qty) for fl in fills] == [(2, 1.2, pytest.approx(0.5 * 10.0 / 1.2))]
    assert broker.balances() == {"cash": pytest.approx(5.0), "equity": pytest.approx(10.0)}
    assert broker.fills(since=1) == [] and broker.fills(since=0) == fills
    with pytest.raises(BrokerError, match="unknown order id"):
        broker.cancel("nope")
    with pytest.raises(BrokerError, match="unknown symbol"):
        broker.submit(Order("c4", "Y_USD", 1.0))
    with pytest.raises(BrokerError, match="long-only"):
        broker.submit(Order("c5", "X_USD", -1.0))


def test_an_order_for_bar_t_plus_1_uses_only_bars_up_to_t():
    market = load_market(BINANCE, symbols=["ETH_BTC", "LTC_BTC"], **DAY)
    genome = Genome("sma_cross", {"fast": 5, "slow": 20}, symbols=("ETH_BTC", "LTC_BTC"))

    def orders(m):
        feed = ReplayFeed(m, start=market.warmup)
        agent = LiveAgent(genome, feed.history())
        return [(o.client_order_id, o.target) for bar in feed for o in agent.on_bar(bar)]

    full = orders(market)
    assert len(full) > 10
    for cut in (market.warmup + 60, market.warmup + 150, market.n_bars - 1):
        part = orders(market.head(cut))
        assert part == [o for o in full if int(o[0].split(":")[1]) < cut]
    shocked = market.head(market.n_bars)  # a different future changes no earlier decision
    close = shocked.close.copy()
    close[200:] *= 1.5
    later = orders(replace(shocked, close=close, high=np.maximum(shocked.high, close)))
    assert [o for o in later if int(o[0].split(":")[1]) < 200] == [o for o in full if int(o[0].split(":")[1]) < 200]


def test_live_agent_refuses_exits_it_does_not_model():
    market = load_market(BINANCE, symbols=["ETH_BTC"], **DAY)
    genome = Genome("sma_cross", {"fast": 5, "slow": 20}, symbols=("ETH_BTC",), stop_loss=0.02)
    with pytest.raises(LiveAgentError, match="stop_loss=0.02"):
        LiveAgent(genome, market.head(10))
    assert LiveAgent(genome, market.head(10), ignore_exits=True).weight.tolist() == [1.0]


def test_money_is_kept_in_1e8_units():
    broker = PaperBroker(0.123456789, 10.0, 5.0, ("X_USD",))
    assert broker.cash_units == 12345679 and broker.balances()["cash"] == 12345679 / UNITS
