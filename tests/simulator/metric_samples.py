"""Return series shared by the metrics tests (plain helpers, not fixtures):
realistic 5-minute returns and the hypothesis strategies that draw them."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

PPY_5M = 365 * 24 * 12  # 5-minute bars per year


def realistic_returns(n_agents: int, n_bars: int, seed: int) -> np.ndarray:
    """``(N, T)`` 5-minute returns with volatility clustering and fat tails.

    GARCH(1,1) variance with Student-t(4) innovations and a small per-agent
    drift; some agents flat (0 return) on a fraction of bars, like a strategy
    out of the market.
    """
    rng = np.random.default_rng(seed)
    omega, alpha, beta = 2e-8, 0.08, 0.9
    var = np.full(n_agents, omega / (1 - alpha - beta))
    drift = rng.normal(0.0, 2e-4, n_agents)
    out = np.empty((n_agents, n_bars))
    for t in range(n_bars):
        eps = rng.standard_t(4, n_agents) / math.sqrt(2.0)  # unit variance
        out[:, t] = drift + np.sqrt(var) * eps
        var = omega + alpha * out[:, t] ** 2 + beta * var
    flat = rng.random((n_agents, n_bars)) < rng.uniform(0.0, 0.6, (n_agents, 1))
    out[flat] = 0.0
    return out


def equity_from_returns(r: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """``(N, T)`` equity curves compounding the returns ``r`` from ``initial`` ``(N,)``."""
    return initial[:, None] * np.cumprod(1.0 + r, axis=1)


# Realistic per-bar returns: multiples of 1e-8 so that squares never underflow.
ret_elem = st.floats(-0.3, 0.3, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 8))
ret_matrix = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 4), st.integers(0, 60)),
    elements=ret_elem,
)
# Returns of an equity curve that may be liquidated (-1); after -1, equity is 0.
eq_ret_elem = st.one_of(
    st.floats(-0.5, 0.5, allow_nan=False).map(lambda x: round(x, 8)),
    st.just(-1.0),
    st.just(0.0),
)
