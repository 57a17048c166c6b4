"""Bayesian search with scikit-optimize's ask/tell ``Optimizer`` (Gaussian-process
surrogate, expected-improvement family of acquisitions; Snoek, Larochelle &
Adams 2012), persisted trial by trial so a search resumes where it stopped.

Two spaces:

* :func:`ga_space` — the GA's own hyper-parameters (crossover and mutation
  rates, tournament size, lookback length), scored out of sample;
* :func:`family_space` — one strategy family's parameters, from its typed
  parameter space.

Resuming: every finished trial is written to the trial log (the store) before
the next is asked for. A new run of the same study that already has the
requested number of trials returns them at once (no optimizer is built, no
surrogate fitted); otherwise the logged trials are replayed into a fresh
optimizer with one batched ``tell`` (:func:`replay`: one Gaussian-process fit,
not one per trial) and only then are new points asked for, so the surrogate
model continues from everything already tried.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # scikit-optimize (and scikit-learn under it) loads on first use: ~0.8 s of CLI start-up
    from skopt import Optimizer
    from skopt.space import Dimension

from simulator.strategies.base import Strategy


class SearchError(ValueError):
    """Bad search settings, or a stored study that does not match this search."""


class TrialLog(Protocol):
    """Where trials persist (the store implements this)."""

    def save_trial(self, study: str, trial: dict) -> int: ...

    def list_trials(self, study: str) -> list[dict]: ...


def ga_space(max_lookback_hours: int = 72) -> list[Dimension]:
    """GA hyper-parameters: ``cxpb`` [0.1, 0.9], ``mutpb`` [0.05, 0.9] (both
    probabilities; scaled down together when they sum above 1), ``tournsize``
    [2, 7] genomes, ``lookback_hours`` [6, max] hours of training data."""
    from skopt.space import Integer, Real

    return [Real(0.1, 0.9, name="cxpb"), Real(0.05, 0.9, name="mutpb"), Integer(2, 7, name="tournsize"),
            Integer(6, max(int(max_lookback_hours), 7), name="lookback_hours")]


def family_space(strategy: Strategy) -> list[Dimension]:
    """The family's typed parameters as skopt dimensions (int -> Integer,
    float -> Real, categorical -> Categorical)."""
    from skopt.space import Categorical, Integer, Real

    dims: list[Dimension] = []
    for p in strategy.params:
        if p.kind == "int":
            dims.append(Integer(int(p.low), int(p.high), name=p.name))
        elif p.kind == "float":
            dims.append(Real(float(p.low), float(p.high), name=p.name))
        else:
            dims.append(Categorical(list(p.choices), name=p.name))
    return dims


def describe_space(space: Sequence[Dimension]) -> list[dict]:
    """JSON description of a space (kept with a study to check a resume)."""
    from skopt.space import Categorical, Integer

    out = []
    for d in space:
        if isinstance(d, Categorical):
            out.append({"name": d.name, "kind": "categorical", "choices": [str(c) for c in d.categories]})
        else:
            out.append({"name": d.name, "kind": "int" if isinstance(d, Integer) else "float",
                        "low": float(d.low), "high": float(d.high)})
    return out


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return v


@dataclass
class SearchResult:
    """Trials of a study in order (``params``, ``value``, ``index`` ...), the best
    one (lowest value), and how many were run now vs replayed from the log."""

    study: str
    trials: list[dict]
    best: dict
    resumed: int
    ran: int


def run_search(
    study: str,
    space: Sequence[Dimension],
    objective: Callable[[dict], tuple[float, dict]],
    *,
    log: TrialLog,
    n_trials: int,
    seed: int = 0,
    n_initial_points: int = 5,
    progress: Callable[[dict], None] | None = None,
) -> SearchResult:
    """Minimise ``objective`` over ``space`` until the study has ``n_trials`` trials.

    Args:
        study: study name; trials already logged under it are replayed.
        space: skopt dimensions, each with a ``name``.
        objective: params dict -> (value to minimise, extra JSON-able details).
        log: trial log (the store).
        n_trials: total trials wanted in the study (including logged ones).
        seed: optimizer random state.
        n_initial_points: random points before the surrogate model is used.
        progress: called with each new trial.

    Raises:
        SearchError: a logged trial does not fit this space (different search
            under the same study name), or non-finite objective values.
    """
    if n_trials < 1:
        raise SearchError(f"trials={n_trials} must be >= 1")
    names = [d.name for d in space]
    past = log.list_trials(study)
    xs = logged_points(study, space, past)
    trials = list(past)
    if len(trials) >= n_trials:  # complete: nothing to ask, no surrogate to fit
        return SearchResult(study=study, trials=trials, best=min(trials, key=lambda t: t["value"]),
                            resumed=len(past), ran=0)
    opt = replay(space, xs, [float(t["value"]) for t in past], seed=seed, n_initial_points=n_initial_points)
    ran = 0
    while len(trials) < n_trials:
        x = opt.ask()
        params = {n: _plain(v) for n, v in zip(names, x)}
        value, details = objective(params)
        if not math.isfinite(value):
            raise SearchError(f"objective returned {value} for {params}")
        opt.tell(x, float(value))
        trial = {"params": params, "value": float(value), **details}
        trial["index"] = log.save_trial(study, trial)
        trials.append(trial)
        ran += 1
        if progress:
            progress(trial)
    best = min(trials, key=lambda t: t["value"])
    return SearchResult(study=study, trials=trials, best=best, resumed=len(past), ran=ran)


def logged_points(study: str, space: Sequence[Dimension], trials: Sequence[dict]) -> list[list]:
    """The logged trials' ``params`` as points of ``space`` (values in dimension order).

    Raises:
        SearchError: a trial's parameter names differ from the space's, or a
            value lies outside its dimension (a different search under the
            same study name).
    """
    names = [d.name for d in space]
    xs = []
    for t in trials:
        params = t.get("params", {})
        if sorted(params) != sorted(names):
            raise SearchError(
                f"study {study!r} holds trials over {sorted(params)}, not {sorted(names)}; "
                "use another --study name"
            )
        x = [params[n] for n in names]
        for d, v in zip(space, x):
            if v not in d:
                raise SearchError(f"study {study!r}: logged {d.name}={v!r} is outside this search space")
        xs.append(x)
    return xs


def replay(space: Sequence[Dimension], xs: Sequence[Sequence], ys: Sequence[float], *, seed: int = 0,
           n_initial_points: int = 5) -> Optimizer:
    """A fresh optimizer over ``space`` told the points ``xs`` and values ``ys``
    in one batch: the surrogate is fitted once (when there are at least
    ``n_initial_points`` of them), not once per point as ``tell`` in a loop would."""
    from skopt import Optimizer

    opt = Optimizer(list(space), base_estimator="GP", n_initial_points=n_initial_points, random_state=seed)
    if xs:
        opt.tell([list(x) for x in xs], [float(y) for y in ys])
    return opt
