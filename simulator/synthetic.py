r"""A seeded synthetic market: regime-switching random walk with jumps.

The generator drives demos, tests that must not depend on files, and (later)
stress scenarios: a crash is a regime with a large negative drift, high
volatility and frequent jumps; a volatility shock is ``vol_scale``.

Model (one bar = ``Δ = timeframe_s / 86400`` days; ``t`` = bar, ``s`` = symbol):

* **Regime.** A Markov chain ``k_t`` over the given regimes, shared by all
  symbols (a market-wide state). Unless ``transition`` is given,

  ``P(k_t = i | k_{t-1} = i) = exp(-24 Δ / D_i)`` (``D_i`` = mean duration in hours),
  ``P(k_t = j | k_{t-1} = i) = (1 - exp(-24 Δ / D_i)) w_j / Σ_{l≠i} w_l`` for ``j ≠ i``

  (``w`` = entry weights). ``k_0`` is ``initial_regime`` or drawn from the chain's
  stationary distribution ``π = π A``.
* **Diffusion inside the bar** (open -> close log-return), with a common factor
  giving every pair of symbols the correlation ``ρ``:

  ``ε_{t,s} = √ρ Z_t + √(1-ρ) Z_{t,s}``,  ``Z ~ N(0, 1)`` i.i.d.
  ``b_{t,s} = μ_k Δ + σ_k v √Δ ε_{t,s}``

  (``μ_k`` drift per day, ``σ_k`` volatility per √day of regime ``k``,
  ``v`` = ``vol_scale``).
* **Jumps at the open** (a gap against the previous close), compound Poisson
  (Merton 1976, "Option pricing when underlying stock returns are discontinuous"):

  ``N_{t,s} ~ Poisson(λ j_k Δ)``, ``J_{t,s} = Σ_{n≤N} Y_n``, ``Y_n ~ N(μ_J, σ_J²)``

  (``λ`` = ``jump_intensity`` per day, ``j_k`` the regime's jump multiplier).
* **Prices.** ``O_{0,s} = P_s exp(J_{0,s})``, ``O_{t,s} = C_{t-1,s} exp(J_{t,s})``,
  ``C_{t,s} = O_{t,s} exp(b_{t,s})``. High and low are drawn from the exact
  marginal laws of the maximum and minimum of a Brownian bridge from 0 to ``b``
  with variance ``S² = (σ_k v)² Δ`` (Glasserman 2004, *Monte Carlo Methods in
  Financial Engineering*, §6.4: ``P(max ≥ x) = exp(-2x(x-b)/S²)``), by inversion
  with ``U, U' ~ U(0, 1]``:

  ``M = (b + √(b² - 2 S² ln U)) / 2``,  ``m = (b - √(b² - 2 S² ln U')) / 2``,
  ``H = O e^M``, ``L = O e^m``.

  Since ``M ≥ max(0, b)`` and ``m ≤ min(0, b)``: ``L ≤ O, C ≤ H``, all > 0.
  (``M`` and ``m`` are drawn independently: exact marginals, approximate joint.)
* **Volume** (base units per bar), sinusoidal time-of-day seasonality times a
  mean-one lognormal noise:

  ``V_{t,s} = V_day Δ g_k (1 + a cos(2π (τ_t - h) / 24)) exp(σ_V η - σ_V²/2)``

  (``τ_t`` = UTC hour of the bar open, ``h`` = ``volume_peak_hour``,
  ``a`` = ``volume_amplitude``, ``g_k`` the regime's volume multiplier,
  ``η ~ N(0, 1)``).

Everything comes from one ``numpy.random.default_rng(seed)``: same arguments,
same arrays. ``meta["regime"]`` holds the ``(T,) int`` regime path and
``meta["regime_names"]`` the names.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Sequence

import numpy as np
import pandas as pd

from simulator.market import SYNTHETIC_LABEL, MarketData

__all__ = ["Regime", "DEFAULT_REGIMES", "DEFAULT_SYMBOLS", "synthetic_market", "transition_matrix"]


@dataclass(frozen=True)
class Regime:
    """One market regime of the synthetic generator.

    Attributes:
        name: label (``calm``, ``crash``, ...).
        drift_per_day: ``μ``, expected log-return per day (0.01 = about +1 %/day).
        vol_per_day: ``σ``, standard deviation of the log-return over one day
            (0.02 = 2 %/√day), >= 0.
        mean_duration_hours: ``D``, mean time spent in the regime per visit, > 0.
        volume_mult: ``g``, multiplier on volume while in the regime, > 0.
        jump_mult: ``j``, multiplier on the jump intensity, >= 0.
        weight: ``w``, relative probability of entering this regime when the
            chain leaves another one, >= 0.
    """

    name: str
    drift_per_day: float = 0.0
    vol_per_day: float = 0.02
    mean_duration_hours: float = 12.0
    volume_mult: float = 1.0
    jump_mult: float = 1.0
    weight: float = 1.0

    def __post_init__(self) -> None:
        checks = (
            ("vol_per_day", self.vol_per_day >= 0),
            ("mean_duration_hours", self.mean_duration_hours > 0),
            ("volume_mult", self.volume_mult > 0),
            ("jump_mult", self.jump_mult >= 0),
            ("weight", self.weight >= 0),
        )
        for field, ok in checks:
            if not ok or not np.isfinite(getattr(self, field)):
                raise ValueError(
                    f"regime {self.name!r}: {field}={getattr(self, field)!r} out of range"
                )


#: Default regimes: calm most of the time, trends of a few hours, short volatile bursts.
DEFAULT_REGIMES: tuple[Regime, ...] = (
    Regime("calm", 0.0, 0.02, 12.0, volume_mult=0.8, jump_mult=0.5, weight=3.0),
    Regime("trend_up", 0.04, 0.025, 6.0, volume_mult=1.0, jump_mult=1.0, weight=1.0),
    Regime("trend_down", -0.04, 0.025, 6.0, volume_mult=1.1, jump_mult=1.0, weight=1.0),
    Regime("volatile", 0.0, 0.06, 2.0, volume_mult=2.5, jump_mult=3.0, weight=1.0),
)

#: Default symbol names (quote currency USD after the last ``_``).
DEFAULT_SYMBOLS: tuple[str, ...] = ("SYN_A_USD", "SYN_B_USD", "SYN_C_USD")


def transition_matrix(regimes: Sequence[Regime], timeframe_s: int) -> np.ndarray:
    """Per-bar regime transition matrix ``(K, K) float64``, rows sum to 1.

    ``A[i, i] = exp(-24 Δ / D_i)`` with ``Δ = timeframe_s / 86400`` days; the rest
    of row ``i`` is shared among the other regimes in proportion to their weight
    (all of it stays on the diagonal when the others all weigh 0 or K = 1).
    """
    k = len(regimes)
    dt_hours = timeframe_s / 3600.0
    a = np.zeros((k, k))
    w = np.array([r.weight for r in regimes], dtype=float)
    for i, r in enumerate(regimes):
        stay = float(np.exp(-dt_hours / r.mean_duration_hours))
        others = w.copy()
        others[i] = 0.0
        total = others.sum()
        if total <= 0:
            a[i, i] = 1.0
            continue
        a[i] = (1.0 - stay) * others / total
        a[i, i] = stay
    return a


def _stationary(a: np.ndarray) -> np.ndarray:
    """A stationary distribution ``π = π A`` (left eigenvector for eigenvalue 1)."""
    vals, vecs = np.linalg.eig(a.T)
    v = np.abs(np.real(vecs[:, int(np.argmin(np.abs(vals - 1.0)))]))
    return v / v.sum()


def _utc(value: str | datetime | pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(value)
    if t is pd.NaT:
        raise ValueError(f"start={value!r} is not a date/time")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def synthetic_market(
    symbols: Sequence[str] = DEFAULT_SYMBOLS,
    start: str | datetime | pd.Timestamp = "2024-01-01",
    bars: int = 288,
    timeframe_s: int = 300,
    seed: int = 0,
    warmup_bars: int = 0,
    base_price: float | Sequence[float] = 100.0,
    regimes: Sequence[Regime] = DEFAULT_REGIMES,
    transition: np.ndarray | Sequence[Sequence[float]] | None = None,
    initial_regime: int | str | None = None,
    jump_intensity: float = 1.0,
    jump_mean: float = 0.0,
    jump_std: float = 0.01,
    vol_scale: float = 1.0,
    correlation: float = 0.3,
    volume_per_day: float = 100_000.0,
    volume_amplitude: float = 0.5,
    volume_peak_hour: float = 14.5,
    volume_noise: float = 0.3,
    quote: str = "USD",
) -> MarketData:
    """Generate a seeded synthetic market (model and equations: module docstring).

    Args:
        symbols: symbol names; S = ``len(symbols)``.
        start: bar-open time of the first *trading* bar (naive = UTC); warm-up
            bars come before it.
        bars: trading bars T - warmup, >= 1.
        timeframe_s: bar length in seconds, > 0.
        seed: seed of ``numpy.random.default_rng``.
        warmup_bars: extra history bars before ``start``; ``MarketData.warmup``.
        base_price: ``P_s``, price before the first bar in the quote currency,
            > 0; one number for all symbols or one per symbol.
        regimes: the regime set (:class:`Regime`), K >= 1.
        transition: optional ``(K, K)`` per-bar transition matrix (rows sum to 1)
            replacing the one built from durations and weights.
        initial_regime: index or name of ``k_0``; None draws it from the
            stationary distribution.
        jump_intensity: ``λ``, expected jumps per symbol per day, >= 0.
        jump_mean: ``μ_J``, mean log size of one jump.
        jump_std: ``σ_J``, standard deviation of the log size of one jump, >= 0.
        vol_scale: ``v``, multiplier on every regime's volatility, >= 0.
        correlation: ``ρ`` in [0, 1], correlation of the diffusive returns of any
            two symbols (through the common factor).
        volume_per_day: ``V_day``, mean volume per symbol per day in base units, > 0.
        volume_amplitude: ``a`` in [0, 1), relative amplitude of the daily cycle.
        volume_peak_hour: ``h``, UTC hour of the volume peak.
        volume_noise: ``σ_V`` >= 0, log-standard deviation of the volume noise.
        quote: quote currency of the prices.

    Returns:
        :class:`MarketData` with ``timestamps (T,) datetime64[ns]`` UTC,
        ``T = warmup_bars + bars``; ``open/high/low/close/volume (T, S) float64``;
        ``tradable (T, S)`` all True; ``source = SYNTHETIC_LABEL``;
        ``meta = {"regime": (T,) int64, "regime_names": tuple, "seed": seed}``.

    Raises:
        ValueError: an argument outside the range given above.
    """
    syms = tuple(symbols)
    n_s = len(syms)
    if n_s == 0 or len(set(syms)) != n_s:
        raise ValueError(f"symbols={syms!r}: need at least one, without repeats")
    if int(bars) < 1 or int(warmup_bars) < 0 or int(timeframe_s) <= 0:
        raise ValueError(
            f"bars={bars}, warmup_bars={warmup_bars}, timeframe_s={timeframe_s}: "
            "need bars >= 1, warmup_bars >= 0, timeframe_s > 0"
        )
    regs = tuple(regimes)
    if not regs:
        raise ValueError("regimes is empty")
    prices = np.broadcast_to(np.asarray(base_price, dtype=float), (n_s,)).copy()
    for name, ok in (
        ("base_price", bool(np.all(prices > 0)) and bool(np.all(np.isfinite(prices)))),
        ("jump_intensity", jump_intensity >= 0),
        ("jump_std", jump_std >= 0),
        ("vol_scale", vol_scale >= 0),
        ("correlation", 0.0 <= correlation <= 1.0),
        ("volume_per_day", volume_per_day > 0),
        ("volume_amplitude", 0.0 <= volume_amplitude < 1.0),
        ("volume_noise", volume_noise >= 0),
    ):
        if not ok:
            raise ValueError(f"{name} out of range (see synthetic_market docstring)")

    k = len(regs)
    if transition is None:
        a = transition_matrix(regs, int(timeframe_s))
    else:
        a = np.asarray(transition, dtype=float)
        if a.shape != (k, k) or np.any(a < 0) or not np.allclose(a.sum(axis=1), 1.0):
            raise ValueError(
                f"transition must be a ({k}, {k}) matrix of probabilities with rows summing to 1"
            )
    names = tuple(r.name for r in regs)
    if initial_regime is None:
        k0 = None
    elif isinstance(initial_regime, str):
        if initial_regime not in names:
            raise ValueError(f"initial_regime={initial_regime!r}; allowed: {', '.join(names)}")
        k0 = names.index(initial_regime)
    else:
        k0 = int(initial_regime)
        if not 0 <= k0 < k:
            raise ValueError(f"initial_regime={initial_regime}; allowed: 0..{k - 1}")

    n_w, n_t = int(warmup_bars), int(warmup_bars) + int(bars)
    tf = int(timeframe_s)
    dt = tf / 86400.0
    rng = np.random.default_rng(seed)

    # Regime path (shared by all symbols).
    cum = np.cumsum(a, axis=1)
    cum[:, -1] = 1.0
    u = rng.random(n_t)
    if k0 is None:
        k0 = min(int(np.searchsorted(np.cumsum(_stationary(a)), rng.random(), side="right")), k - 1)
    path = np.empty(n_t, dtype=np.int64)
    state = k0
    path[0] = state
    for t in range(1, n_t):
        state = min(int(np.searchsorted(cum[state], u[t], side="right")), k - 1)
        path[t] = state

    mu = np.array([r.drift_per_day for r in regs])[path][:, None]
    sig = (np.array([r.vol_per_day for r in regs]) * vol_scale)[path][:, None]
    jmult = np.array([r.jump_mult for r in regs])[path][:, None]
    vmult = np.array([r.volume_mult for r in regs])[path][:, None]

    z_common = rng.standard_normal((n_t, 1))
    z_idio = rng.standard_normal((n_t, n_s))
    eps = np.sqrt(correlation) * z_common + np.sqrt(1.0 - correlation) * z_idio
    b = mu * dt + sig * np.sqrt(dt) * eps

    n_jumps = rng.poisson(jump_intensity * jmult * dt * np.ones((1, n_s)), size=(n_t, n_s))
    jumps = n_jumps * jump_mean + np.sqrt(n_jumps) * jump_std * rng.standard_normal((n_t, n_s))

    s2 = sig**2 * dt
    u_hi = 1.0 - rng.random((n_t, n_s))  # (0, 1]
    u_lo = 1.0 - rng.random((n_t, n_s))
    m_hi = 0.5 * (b + np.sqrt(b * b - 2.0 * s2 * np.log(u_hi)))
    m_lo = 0.5 * (b - np.sqrt(b * b - 2.0 * s2 * np.log(u_lo)))

    # log O_t = log P + Σ_{u<=t} J_u + Σ_{u<t} b_u ; C_t = O_t e^{b_t}
    log_close = np.log(prices)[None, :] + np.cumsum(jumps + b, axis=0)
    log_open = log_close - b
    open_ = np.exp(log_open)
    close = np.exp(log_close)
    high = open_ * np.exp(m_hi)
    low = open_ * np.exp(m_lo)
    # Guard the invariants against rounding between the two routes to C.
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))

    start_ts = _utc(start)
    start_ns = int(start_ts.as_unit("ns").value)
    offsets = (np.arange(n_t, dtype=np.int64) - n_w) * (tf * 1_000_000_000)
    ts = (start_ns + offsets).astype("datetime64[ns]")
    hours = ((start_ns + offsets) % (86400 * 10**9)) / 3.6e12
    season = 1.0 + volume_amplitude * np.cos(2.0 * np.pi * (hours - volume_peak_hour) / 24.0)
    noise = np.exp(volume_noise * rng.standard_normal((n_t, n_s)) - 0.5 * volume_noise**2)
    volume = volume_per_day * dt * vmult * season[:, None] * noise

    for name, arr in (("open", open_), ("high", high), ("low", low), ("close", close)):
        if not np.all(np.isfinite(arr)) or not np.all(arr > 0):
            raise ValueError(
                f"parameters produce non-finite or non-positive {name} prices; "
                "reduce drift, volatility, jump sizes or the number of bars"
            )

    return MarketData(
        timestamps=ts,
        symbols=syms,
        open=np.ascontiguousarray(open_),
        high=np.ascontiguousarray(high),
        low=np.ascontiguousarray(low),
        close=np.ascontiguousarray(close),
        volume=np.ascontiguousarray(volume),
        tradable=np.ones((n_t, n_s), dtype=bool),
        timeframe_s=tf,
        quote=quote,
        source=SYNTHETIC_LABEL,
        warmup=n_w,
        meta={"regime": path, "regime_names": names, "seed": seed},
    )
