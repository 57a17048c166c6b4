"""Issue 10 parts 4-5: PBO by CSCV, effective number of trials, rank correlation
(simulator.metrics.overfitting) against hand-built cases with known answers."""
from __future__ import annotations

from math import comb

import numpy as np
import pytest
from scipy.stats import spearmanr

from simulator import metrics
from simulator.metrics import MetricsError


def test_pbo_hand_worked_four_blocks():
    """S = 4 blocks of 2 bars, N = 2 trials. Trial B is always 0 (Sharpe 0); trial A's
    block sums are +3, +1, -2, -4 (x 0.01), so the sign of A's Sharpe on any set of
    blocks is the sign of their sum. For each of the C(4, 2) = 6 in-sample choices:

    ======  =========  ==========  =======  ===================  =========
    IS      A IS sum   A OOS sum   IS best  best's OOS rank/3    λ <= 0 ?
    ======  =========  ==========  =======  ===================  =========
    {1,2}   +4         -6          A        1/3 (A < B = 0)      yes
    {1,3}   +1         -3          A        1/3                  yes
    {1,4}   -1         -1          B        2/3 (B = 0 > A)      no
    {2,3}   -1         -1          B        2/3                  no
    {2,4}   -3         +1          B        1/3 (B = 0 < A)      yes
    {3,4}   -6         +4          B        1/3                  yes
    ======  =========  ==========  =======  ===================  =========

    PBO = 4/6."""
    a = np.array([2, 1, 0, 1, -0.5, -1.5, -1, -3]) * 0.01
    r = np.vstack([a, np.zeros(8)])
    out = metrics.probability_of_backtest_overfitting(r, n_blocks=4)
    assert out["combinations"] == 6 and out["trials"] == 2 and out["blocks"] == 4
    assert out["pbo"] == pytest.approx(4 / 6)
    masks, is_sr, oos_sr = metrics.cscv_sharpes(r, 4)
    assert masks.shape == (6, 4) and masks.sum(axis=1).tolist() == [2] * 6
    assert (np.sign(is_sr[:, 0]) == [1, 1, -1, -1, -1, -1]).all()


def test_pbo_noise_is_near_one_half_and_planted_edge_near_zero():
    pbos, edges = [], []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        r = rng.normal(0.0, 0.01, size=(20, 640))
        pbos.append(metrics.probability_of_backtest_overfitting(r)["pbo"])
        r[3] += 0.004  # a true edge: per-bar Sharpe 0.4
        edges.append(metrics.probability_of_backtest_overfitting(r)["pbo"])
    assert abs(np.mean(pbos) - 0.5) < 0.12, pbos
    assert max(edges) < 0.05, edges


def test_pbo_uses_sixteen_blocks_by_default_and_rejects_bad_input():
    r = np.random.default_rng(0).normal(size=(3, 64))
    assert metrics.probability_of_backtest_overfitting(r)["combinations"] == comb(16, 8) == 12870
    with pytest.raises(MetricsError):
        metrics.probability_of_backtest_overfitting(r, n_blocks=5)
    with pytest.raises(MetricsError):
        metrics.probability_of_backtest_overfitting(r[:1])


def test_effective_trials_counts_clusters_of_near_duplicates():
    rng = np.random.default_rng(1)
    base = rng.normal(size=(5, 400))
    dupes = np.repeat(base, 10, axis=0) + rng.normal(scale=0.3, size=(50, 400))
    assert metrics.effective_trials(dupes) == 5
    assert metrics.effective_trials(rng.normal(size=(20, 400))) == 20
    idle = np.vstack([np.zeros((4, 400)), base[:2]])
    assert metrics.effective_trials(idle) == 3  # four idle trials are one


def test_rank_correlation_matches_scipy_and_is_none_when_undefined():
    rng = np.random.default_rng(2)
    a, b = rng.integers(0, 4, 25).astype(float), rng.normal(size=25)
    assert metrics.rank_correlation(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert metrics.rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert metrics.rank_correlation([1, 1, 1], [1, 2, 3]) is None
