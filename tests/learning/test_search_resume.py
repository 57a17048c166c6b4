"""Resuming a Bayesian search (issue 8, part 6): a complete study returns its
stored trials without building an optimizer or fitting a surrogate; a partial
one replays the stored trials in one batched ``tell`` (one Gaussian-process
fit, the same surrogate as replaying them one by one)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from skopt import Optimizer
from skopt.learning import GaussianProcessRegressor
from typer.testing import CliRunner

from learning.search import family_space, run_search
from manager.cli import app
from manager.store import open_store
from simulator.strategies.registry import get_strategy
from tests.helpers import BINANCE

runner = CliRunner()
SPACE = family_space(get_strategy("rsi_reversion"))


@pytest.fixture
def gp_fits(monkeypatch):
    """Counts Gaussian-process fits (every surrogate skopt builds is one)."""
    fits = []
    real = GaussianProcessRegressor.fit

    def fit(self, X, y):
        fits.append(len(y))
        return real(self, X, y)

    monkeypatch.setattr(GaussianProcessRegressor, "fit", fit)
    return fits


def _objective(calls):
    def objective(p):
        calls.append(p)
        return (p["period"] - 20) ** 2 / 100 + abs(p["oversold"] - 25) / 10, {"note": len(calls)}
    return objective


def _stored_study(tmp_path, n):
    url = f"sqlite:///{tmp_path / 's.db'}"
    calls = []
    with open_store(url) as st:
        first = run_search("rsi", SPACE, _objective(calls), log=st, n_trials=n, seed=3, n_initial_points=3)
    assert first.ran == n == len(calls)
    return url, first


def test_complete_study_returns_without_optimizer_or_fit(tmp_path, gp_fits):
    url, first = _stored_study(tmp_path, 6)
    gp_fits.clear()
    calls = []
    with open_store(url) as st:
        again = run_search("rsi", SPACE, _objective(calls), log=st, n_trials=6, seed=3, n_initial_points=3)
        fewer = run_search("rsi", SPACE, _objective(calls), log=st, n_trials=4, seed=3, n_initial_points=3)
        assert len(st.list_trials("rsi")) == 6
    assert gp_fits == [] and calls == []  # no surrogate fitted, nothing asked or evaluated
    for res in (again, fewer):
        assert (res.resumed, res.ran) == (6, 0)
        assert [t["params"] for t in res.trials] == [t["params"] for t in first.trials]
        assert res.best["params"] == first.best["params"] and res.best["value"] == first.best["value"]
        assert res.best["note"] == first.best["note"] and res.best["index"] == first.best["index"]


def test_partial_resume_replays_with_one_fit(tmp_path, gp_fits):
    url, first = _stored_study(tmp_path, 6)
    gp_fits.clear()
    calls = []
    with open_store(url) as st:
        more = run_search("rsi", SPACE, _objective(calls), log=st, n_trials=8, seed=3, n_initial_points=3)
        assert [t["index"] for t in st.list_trials("rsi")] == list(range(8))
    assert (more.resumed, more.ran, len(calls)) == (6, 2, 2)
    # one fit on the 6 replayed trials, then one per new trial (one by one it was 4 + 2)
    assert gp_fits == [6, 7, 8]
    assert [t["params"] for t in more.trials[:6]] == [t["params"] for t in first.trials]


def test_batched_replay_fits_the_same_surrogate_as_one_by_one(tmp_path):
    _, first = _stored_study(tmp_path, 6)
    xs = [[t["params"][d.name] for d in SPACE] for t in first.trials]
    ys = [t["value"] for t in first.trials]
    one_by_one = Optimizer(list(SPACE), base_estimator="GP", n_initial_points=3, random_state=3)
    for x, y in zip(xs, ys):
        one_by_one.tell(x, y)
    batched = Optimizer(list(SPACE), base_estimator="GP", n_initial_points=3, random_state=3)
    batched.tell(xs, ys)
    assert len(one_by_one.models) == 4 and len(batched.models) == 1
    assert batched.Xi == one_by_one.Xi and batched.yi == one_by_one.yi
    a, b = batched.models[-1], one_by_one.models[-1]
    assert a.kernel_ == b.kernel_  # same data, same estimator seed: the same fitted GP
    grid = batched.space.transform(batched.space.rvs(n_samples=50, random_state=0))
    np.testing.assert_allclose(a.predict(grid), b.predict(grid))
    nxt = batched.ask()
    assert nxt in batched.space and nxt not in xs


def _optimize(tmp_path, url, name):
    out = tmp_path / f"{name}.json"
    res = runner.invoke(app, ["optimize", "--strategy", "rsi_reversion", "--data", str(BINANCE),
                              "--train-start", "2018-01-13", "--train-end", "2018-01-14", "--trials", "6",
                              "--seed", "7", "--no-progress", "--store", url, "--json", str(out)],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output, json.loads(out.read_text())


def test_cli_rerun_of_a_complete_study_stores_nothing_and_reports_the_same_best(tmp_path, gp_fits):
    url = f"sqlite:///{tmp_path / 'o.db'}"
    out1, rep1 = _optimize(tmp_path, url, "first")
    assert "0 resumed from the store, 6 run now" in out1
    assert gp_fits  # the first run does fit surrogates (6 trials, 5 initial points)
    gp_fits.clear()
    out2, rep2 = _optimize(tmp_path, url, "again")
    assert "6 resumed from the store, 0 run now" in out2
    assert gp_fits == []  # rerun: no surrogate fitted
    with open_store(url) as st:
        assert len(st.list_trials(rep1["study"])) == 6  # no new trial stored
    assert rep2["study"] == rep1["study"]
    assert rep2["result"] == rep1["result"]  # best set, in and out of sample
    # the same trials and best (read back from the store, so with its saved_at stamp)
    assert [{k: v for k, v in t.items() if k != "saved_at"} for t in rep2["trials"]] == rep1["trials"]
    assert {k: v for k, v in rep2["best"].items() if k != "saved_at"} == rep1["best"]
