"""One agent trading bar by bar: the engine's signal code on the history so far.

:class:`LiveAgent` keeps the bars it has seen and, at the close of every new bar,
computes the agent's target signals with :func:`simulator.cohort.build_signals`
— the strategy plugin's ``targets`` on the history up to and including that bar,
the very code path of a backtest — and turns a *change* of signal into a target
order (:class:`simulator.broker.Order`) for the next open, as the kernel does:

* ``x = signal[t, s]`` (negative clipped to 0 unless ``allow_short``);
* when ``x`` differs from the last signal acted on for ``s``, an order with
  ``target = x * weight[s]`` where ``weight = size x leverage / (number of the
  agent's symbols)`` (:func:`build_signals`); the broker sizes it at the open and
  applies the leverage ceiling (:attr:`LiveAgent.leverage_ceiling`, pass it to
  :class:`~simulator.broker.PaperBroker` as ``leverage_cap``).

Left out (the engine has them; a deployment's rollback triggers stand in, and
the replay-equals-backtest test uses genomes with them off): **stop-loss,
take-profit and max-holding exits**, maintenance-margin liquidation and the
daily hard stop. :class:`LiveAgent` refuses a genome with ``stop_loss``,
``take_profit`` or ``max_hold_bars`` set unless ``ignore_exits=True``.

Signals are bit-identical to a backtest only when the history starts at the same
bar as the backtest's market (cross families carry state from their first
defined bar), so the whole history is kept (memory O(T x S)); each bar costs one
``targets`` call over it.
"""
from __future__ import annotations

import numpy as np

from simulator.broker import Order
from simulator.cohort import AgentLike, build_signals
from simulator.feed import Bar
from simulator.market import MarketData

__all__ = ["LiveAgent", "LiveAgentError"]


class LiveAgentError(ValueError):
    """Bad agent or bar (exits the live path does not model, symbols, time order)."""


class LiveAgent:
    """Decide one agent's orders at each bar close from the bars seen so far.

    Args:
        agent: a genome (:class:`simulator.cohort.AgentLike`: ``family, params,
            symbols, size, leverage, stop_loss, take_profit, max_hold_bars``).
        history: the bars before the first live bar (a :class:`MarketData`, e.g.
            :meth:`simulator.feed.ReplayFeed.history`); its symbols are the feed's
            columns. May hold 0 bars only if its arrays are ``(0, S)``.
        deployment_id: prefix of client order ids:
            ``f"{deployment_id}:{bar_index}:{symbol}"`` (idempotent per bar and symbol).
        allow_short: keep negative signals (the engine's ``allow_short``).
        leverage_cap: policy cap on the ceiling (the engine's ``leverage_caps``);
            None = the genome's ``leverage``.
        ignore_exits: accept a genome with stop-loss / take-profit / max-hold set
            and trade it without them.

    Raises:
        LiveAgentError: exits set without ``ignore_exits``.
        AllocationError: the agent trades a symbol the history lacks.
        StrategyError: unknown family or bad parameters.
    """

    def __init__(self, agent: AgentLike, history: MarketData, *, deployment_id: str = "dep",
                 allow_short: bool = False, leverage_cap: float | None = None,
                 ignore_exits: bool = False) -> None:
        exits = {k: getattr(agent, k) for k in ("stop_loss", "take_profit", "max_hold_bars") if getattr(agent, k)}
        if exits and not ignore_exits:
            raise LiveAgentError(
                f"the live path does not model {', '.join(f'{k}={v}' for k, v in exits.items())}; "
                "pass ignore_exits=True to trade the agent without them")
        self.agent = agent
        self.deployment_id = str(deployment_id)
        self.allow_short = bool(allow_short)
        lev = float(agent.leverage)
        self.leverage_ceiling = lev if leverage_cap is None else min(lev, float(leverage_cap))
        self.symbols = tuple(history.symbols)
        S = len(self.symbols)
        n = history.n_bars
        cap = max(64, 2 * n)
        self._base = history
        self._buf = {k: np.empty((cap, S)) for k in ("open", "high", "low", "close", "volume")}
        self._buf["tradable"] = np.empty((cap, S), dtype=bool)
        self._ts = np.empty(cap, dtype="datetime64[ns]")
        for k in self._buf:
            self._buf[k][:n] = getattr(history, k)
        self._ts[:n] = history.timestamps.astype("datetime64[ns]")
        self._n = n
        self.prev_signal = np.zeros(S)
        # weights do not depend on the bars: build_signals' own formula, computed once
        self.weight = build_signals(self._market(), [agent])[1][0]
        self.last_signal: np.ndarray | None = None

    def _market(self) -> MarketData:
        n = self._n
        return MarketData(
            timestamps=self._ts[:n], symbols=self.symbols,
            **{k: self._buf[k][:n] for k in ("open", "high", "low", "close", "volume", "tradable")},
            timeframe_s=self._base.timeframe_s, quote=self._base.quote, source=self._base.source, warmup=0)

    def history(self) -> MarketData:
        """The bars seen so far (history plus every live bar), ``warmup`` 0."""
        return self._market()

    def _append(self, bar: Bar) -> None:
        if tuple(bar.symbols) != self.symbols:
            raise LiveAgentError(f"bar symbols {list(bar.symbols)} differ from the agent's {list(self.symbols)}")
        if self._n and not bar.timestamp > self._ts[self._n - 1]:
            raise LiveAgentError(f"bar at {bar.timestamp} is not after the last one seen ({self._ts[self._n - 1]})")
        if self._n == len(self._ts):
            cap = 2 * len(self._ts)
            for k, arr in self._buf.items():
                grown = np.empty((cap,) + arr.shape[1:], dtype=arr.dtype)
                grown[:self._n] = arr[:self._n]
                self._buf[k] = grown
            ts = np.empty(cap, dtype="datetime64[ns]")
            ts[:self._n] = self._ts[:self._n]
            self._ts = ts
        i = self._n
        for k in self._buf:
            self._buf[k][i] = getattr(bar, k)
        self._ts[i] = bar.timestamp
        self._n = i + 1

    def signals(self) -> np.ndarray:
        """``(S,)`` the agent's signals at the last bar seen (build_signals on the history)."""
        sig, _ = build_signals(self._market(), [self.agent])
        return sig[0, -1]

    def on_bar(self, bar: Bar) -> list[Order]:
        """Take ``bar`` (read at its close) and return the orders for the next open.

        Returns:
            One :class:`Order` per symbol whose signal changed, in symbol order,
            ``client_order_id = f"{deployment_id}:{bar.index}:{symbol}"``,
            ``target = signal x weight`` (fraction of equity at the fill open).

        Raises:
            LiveAgentError: the bar's symbols differ, or it is not after the last bar.
        """
        self._append(bar)
        x_all = self.signals()
        self.last_signal = x_all
        orders = []
        for s, sym in enumerate(self.symbols):
            w = self.weight[s]
            if w == 0.0:
                continue
            x = x_all[s]
            if x < 0.0 and not self.allow_short:
                x = 0.0
            if x != self.prev_signal[s]:
                self.prev_signal[s] = x
                orders.append(Order(client_order_id=f"{self.deployment_id}:{bar.index}:{sym}", symbol=sym,
                                    target=float(x * w), kind="signal", bar=int(bar.index)))
        return orders
