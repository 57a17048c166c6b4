"""Where a cohort's or a learning cycle's starting genomes come from.

One lookup serves ``cohortlab run``, ``learn``, ``campaign``, the Celery tasks
and the API: :func:`resolve_seed` takes the user's choice (``--seed-from``):

* ``random`` -- DEAP random initialisation (families round-robin, ``--seed``);
* ``latest`` (default) -- the newest stored artefact **bred on the same market**
  (:func:`stored_seed`), else random;
* a stored run id -- that run's genomes (its market must be this market);
* a path to a genomes JSON file.

**The market rule.** A stored population or hall of fame may seed a run only
when it was bred on the same market: the same data identity (folder name, e.g.
``binance-5m``, or ``SYNTHETIC``), timeframe and quote currency
(:class:`MarketIdentity`), and only its genomes whose symbols the run's market
covers are used. Otherwise the run starts from random genomes and its
``seeded_from`` says ``random``, with the reason in ``seeding_note``.

**The point-in-time rule.** Whatever is computed for time ``t`` uses only
stored state whose own data ended by ``t``: ``latest`` looks only at
populations and hall-of-fame versions whose training window ended at or before
``t`` (``train_end <= t``, the store's ``trained_by`` filter), and at cohort
runs (the ``cohort`` kind of intraday seeding) whose traded window ended at or
before ``t``. Artefacts stored without a training window (before migration
0006) never match. ``t`` (the ``as_of`` argument) is:

* for a cohort run (``cohortlab run``, the API, a Celery cohort): the start of
  its traded window -- the open of its first traded bar;
* for a learning cycle that trains on ``[a, b)`` and scores out of sample on
  ``[b, c)`` (``learn``, ``evolve``): ``b``, the end of its training window,
  which is the start of its out-of-sample window;
* for a campaign day ``d`` (a cycle on ``[d - lookback, d)``, then the cohort
  trades ``[d, d + 1 day)``): ``d``, for the cycle and the cohort alike.

Why ``b`` and not the cycle's training start ``a``: the cycle itself reads the
bars of ``[a, b)``, so a starting population bred on data up to ``b`` brings
it nothing it does not see anyway; what must stay unseen is the out-of-sample
window ``[b, c)``, or the cycle's out-of-sample figures (and, in a campaign,
the day traded) would be scored on data the genomes were bred on. It is also
what a campaign does in memory: day ``d`` starts from day ``d - 1``'s
population, trained up to ``d - 1 day > a``; with ``t = b`` a campaign day
seeded from the store (``execute_campaign_day``) may start from that same
population, so resuming a campaign day by day and running it in one go obey one
rule. Choice ``random``, a run id or a file are explicit and not filtered (a
run id must still be of the same market).

With this rule a run or cycle gives bit-identical results whether or not the
store holds artefacts bred later (e.g. later days of a campaign on the same
market).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence

import pandas as pd

from evolution.genome import Genome, GenomeError, load_genomes
from evolution.toolbox import random_genomes
from manager.store import InvalidDocument, NotFound, Store
from simulator.market import SYNTHETIC_LABEL, MarketData

__all__ = ["MarketIdentity", "Seed", "SeedError", "market_identity", "point_in_time", "resolve_seed",
           "stored_seed", "traded_from", "SEED_FROM_HELP", "STORED_KINDS"]

SEED_FROM_HELP = ("Starting genomes: latest (the newest hall of fame / population bred on this same market: data "
                  "folder, timeframe and quote, on data that ended by this run's start; else random), random, a "
                  "stored RUN_ID, or a genomes JSON FILE.")

#: What ``latest`` may seed from, in order of preference, per use.
STORED_KINDS = {
    "run": ("hall_of_fame",),
    "daily": ("population:daily", "population", "hall_of_fame"),
    "intraday": ("cohort", "population:intraday", "population", "hall_of_fame"),
}

_RUN_SCAN = 50  # cohort runs looked at (newest first) for the current cohort of a market


class SeedError(ValueError):
    """A ``--seed-from`` choice that cannot be used; the message says why and what is allowed."""


@dataclass(frozen=True)
class MarketIdentity:
    """What makes two runs the same market for seeding.

    Attributes:
        data: the bar folder's name (``binance-5m``), or ``SYNTHETIC``.
        timeframe: bar size, e.g. ``5m``.
        quote: quote currency, e.g. ``BTC``.
    """

    data: str
    timeframe: str
    quote: str

    @property
    def key(self) -> str:
        """``"<data>|<timeframe>|<quote>"``: what the store filters on."""
        return f"{self.data}|{self.timeframe}|{self.quote}"

    def __str__(self) -> str:
        return f"{self.data} ({self.timeframe} bars, quote {self.quote})"


def market_identity(market: MarketData) -> MarketIdentity:
    """The :class:`MarketIdentity` of loaded bars (folder name, timeframe, quote)."""
    label = market.label()
    data = label if label == SYNTHETIC_LABEL else (Path(label).name or label)
    return MarketIdentity(data, market.timeframe, market.quote)


@dataclass
class Seed:
    """Starting genomes and where they came from.

    Attributes:
        genomes: exactly the requested number of genomes (topped up with random ones).
        seeded_from: ``random``, ``file``, ``run:<id>``, ``hall_of_fame``,
            ``population:<cycle_id>`` or ``cohort:<run_id>``; ``+random`` when topped up.
        note: one sentence for people: why these genomes (e.g. why random).
    """

    genomes: list[Genome]
    seeded_from: str
    note: str


def _usable(docs: Sequence[dict], market: MarketData, max_leverage: float) -> list[Genome]:
    """The stored genomes this market can trade: symbols covered, leverage within the ceiling."""
    out = []
    syms = set(market.symbols)
    for d in docs:
        try:
            g = Genome.from_dict(d)
        except GenomeError:
            continue
        if set(g.symbols) <= syms and g.leverage <= max_leverage:
            out.append(g)
    return out


def _run_market(run: dict) -> str | None:
    return (run.get("config") or {}).get("market")


def point_in_time(as_of: object) -> str:
    """``as_of`` (a pandas/datetime timestamp or ISO 8601 text; naive = UTC) as
    ISO 8601 UTC with an offset, what the store's ``trained_by`` filters take.

    Raises:
        SeedError: not a readable time.
    """
    try:
        moment = pd.Timestamp(as_of)
    except (TypeError, ValueError):
        raise SeedError(f"point in time {as_of!r} is not a time") from None
    if pd.isna(moment):
        raise SeedError(f"point in time {as_of!r} is not a time")
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    return moment.isoformat()


def traded_from(market: MarketData) -> pd.Timestamp:
    """Open of the first traded bar of ``market`` (after its warm-up bars), UTC:
    the point in time of a cohort run trading these bars."""
    return pd.Timestamp(market.timestamps[market.warmup], tz="UTC")


def _ended_by(run: dict, as_of: str) -> bool:
    """Whether a stored run's traded window ended at or before ``as_of``."""
    end = (run.get("header") or {}).get("window_end")
    if not end:
        return False
    try:
        return pd.Timestamp(end) <= pd.Timestamp(as_of)
    except (TypeError, ValueError):
        return False


def stored_seed(store: Store, market: MarketData, kinds: Sequence[str], *,
                max_leverage: float, as_of: datetime | pd.Timestamp | str) -> tuple[list[Genome], str] | None:
    """The newest stored genomes bred on ``market``'s market, on data that ended
    by ``as_of`` (the market rule and the point-in-time rule of the module docstring).

    Args:
        store: the store to look in.
        market: the bars to be traded (identity and symbols).
        kinds: what to look at, in order: ``cohort`` (the latest completed cohort
            run on this market whose traded window ended by ``as_of``),
            ``population:<mode>``, ``population`` (any mode), ``hall_of_fame``
            (see :data:`STORED_KINDS`); populations and hall-of-fame versions
            only when their training window ended by ``as_of``.
        max_leverage: genomes with a higher leverage gene are left out.
        as_of: the point in time t (naive = UTC): see the module docstring.

    Returns:
        ``(genomes, seeded_from)`` of the first kind that has usable genomes, or None.

    Raises:
        SeedError: ``as_of`` is not a time.
    """
    key = market_identity(market).key
    t = point_in_time(as_of)
    for kind in kinds:
        if kind == "cohort":
            for run in store.list_runs(limit=_RUN_SCAN, status="completed", kind="cohort"):
                full = store.get_run(run["run_id"])
                if _run_market(full) == key and _ended_by(full, t):
                    gs = _usable(full.get("genomes") or [], market, max_leverage)
                    if gs:
                        return gs, f"cohort:{run['run_id']}"
                    break
        elif kind.startswith("population"):
            mode = kind.partition(":")[2] or None
            pop = store.latest_population(mode, market=key, trained_by=t)
            if pop:
                gs = _usable(pop["genomes"], market, max_leverage)
                if gs:
                    return gs, f"population:{pop['cycle_id']}"
        elif kind == "hall_of_fame":
            gs = _usable(store.latest_hall_of_fame(market=key, trained_by=t) or [], market, max_leverage)
            if gs:
                return gs, "hall_of_fame"
        else:
            raise ValueError(f"unknown seed kind {kind!r}")
    return None


def _stored_run(store: Store | None, choice: str) -> dict | None:
    if store is None:
        return None
    try:
        return store.get_run(choice)
    except (NotFound, InvalidDocument):
        return None


def _from_run(run: dict, market: MarketData, max_leverage: float) -> list[Genome]:
    run_id, key, theirs = run["run_id"], market_identity(market).key, _run_market(run)
    if theirs != key:
        raise SeedError(f"--seed-from {run_id}: that run traded {theirs or 'an unrecorded market'}, this run "
                        f"trades {key}; genomes only seed runs on the market they were bred on")
    try:
        return [Genome.from_dict(d, symbols=market.symbols, max_leverage=max_leverage)
                for d in run.get("genomes") or []]
    except GenomeError as exc:
        raise SeedError(f"--seed-from {run_id}: {exc}") from None


def resolve_seed(choice: str | None, market: MarketData, n: int | None, *, seed: int, max_leverage: float,
                 store: Store | None, as_of: datetime | pd.Timestamp | str,
                 kinds: Sequence[str] = STORED_KINDS["run"]) -> Seed:
    """Starting genomes for a run or cycle on ``market`` (see the module docstring).

    Args:
        choice: ``latest`` (None means latest), ``random``, a stored run id or a
            genomes JSON file path (a stored run id wins over a file of that name).
        market: bars to be traded.
        n: genomes wanted (agents); more are cut, fewer topped up with random
            ones. None = what was found, as it is (learning cycles fill their own population).
        seed: seed of the random genomes.
        max_leverage: cohort ceiling of the leverage gene (multiple of agent equity).
        store: where ``latest`` and run ids are looked up (None = neither).
        as_of: the point in time t of the run or cycle (naive = UTC): ``latest``
            only uses what was trained on data that ended by it (module docstring).
        kinds: what ``latest`` looks at (:data:`STORED_KINDS`).

    Raises:
        SeedError: an unknown run id / missing file, a run of another market,
            or an ``as_of`` that is not a time.
        GenomeError: a genomes file invalid for this market (the message names the genome).
    """
    if n is not None and n < 1:
        raise SeedError(f"--agents {n} must be >= 1")
    choice = (choice or "latest").strip()
    ident = market_identity(market)
    genomes: list[Genome] = []
    if choice == "random":
        source, note = "random", "random genomes, as asked (--seed-from random)"
    elif choice == "latest":
        found = (stored_seed(store, market, kinds, max_leverage=max_leverage, as_of=as_of)
                 if store is not None else None)
        by = pd.Timestamp(point_in_time(as_of)).strftime("%Y-%m-%d %H:%M UTC")
        if found:
            genomes, source = found
            note = f"the latest {source.split(':')[0].replace('_', ' ')} bred on {ident} on data up to {by}"
        else:
            source = "random"
            note = (f"random genomes: nothing stored was bred on {ident} on data up to {by}" if store is not None
                    else "random genomes: no store")
    elif (run := _stored_run(store, choice)) is not None:
        genomes = _from_run(run, market, max_leverage)
        source, note = f"run:{choice}", f"the genomes of run {choice}"
    elif Path(choice).expanduser().is_file():
        genomes = load_genomes(choice, symbols=market.symbols, max_leverage=max_leverage)
        source, note = "file", f"genomes from {Path(choice).name}"
    else:
        raise SeedError(f"--seed-from {choice!r} is neither a stored run id nor a genomes file; allowed: latest, "
                        "random, a RUN_ID (see `cohortlab runs list`) or the path of a genomes JSON FILE")
    if n is None:
        return Seed(genomes, source, note)
    genomes = genomes[:n]
    if len(genomes) < n:
        extra = random_genomes(n - len(genomes), market.symbols, seed=seed, max_leverage=max_leverage)
        if genomes:
            source += "+random"
            note += f", topped up with {n - len(genomes)} random"
        genomes += extra
    return Seed(genomes, source, note)
