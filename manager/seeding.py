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

The point-in-time rule (only artefacts whose training data ended by the run's
start) is one more filter inside :func:`stored_seed`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from evolution.genome import Genome, GenomeError, load_genomes
from evolution.toolbox import random_genomes
from manager.store import InvalidDocument, NotFound, Store
from simulator.market import SYNTHETIC_LABEL, MarketData

__all__ = ["MarketIdentity", "Seed", "SeedError", "market_identity", "resolve_seed", "stored_seed",
           "SEED_FROM_HELP", "STORED_KINDS"]

SEED_FROM_HELP = ("Starting genomes: latest (the newest hall of fame / population bred on this same market: data "
                  "folder, timeframe and quote; else random), random, a stored RUN_ID, or a genomes JSON FILE.")

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


def stored_seed(store: Store, market: MarketData, kinds: Sequence[str], *,
                max_leverage: float) -> tuple[list[Genome], str] | None:
    """The newest stored genomes bred on ``market``'s market (the market rule).

    Args:
        store: the store to look in.
        market: the bars to be traded (identity and symbols).
        kinds: what to look at, in order: ``cohort`` (the latest completed cohort
            run on this market), ``population:<mode>``, ``population`` (any mode),
            ``hall_of_fame`` (see :data:`STORED_KINDS`).
        max_leverage: genomes with a higher leverage gene are left out.

    Returns:
        ``(genomes, seeded_from)`` of the first kind that has usable genomes, or None.
    """
    key = market_identity(market).key
    for kind in kinds:
        if kind == "cohort":
            for run in store.list_runs(limit=_RUN_SCAN, status="completed", kind="cohort"):
                full = store.get_run(run["run_id"])
                if _run_market(full) == key:
                    gs = _usable(full.get("genomes") or [], market, max_leverage)
                    if gs:
                        return gs, f"cohort:{run['run_id']}"
                    break
        elif kind.startswith("population"):
            mode = kind.partition(":")[2] or None
            pop = store.latest_population(mode, market=key)
            if pop:
                gs = _usable(pop["genomes"], market, max_leverage)
                if gs:
                    return gs, f"population:{pop['cycle_id']}"
        elif kind == "hall_of_fame":
            gs = _usable(store.latest_hall_of_fame(market=key) or [], market, max_leverage)
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
                 store: Store | None, kinds: Sequence[str] = STORED_KINDS["run"]) -> Seed:
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
        kinds: what ``latest`` looks at (:data:`STORED_KINDS`).

    Raises:
        SeedError: an unknown run id / missing file, or a run of another market.
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
        found = stored_seed(store, market, kinds, max_leverage=max_leverage) if store is not None else None
        if found:
            genomes, source = found
            note = f"the latest {source.split(':')[0].replace('_', ' ')} bred on {ident}"
        else:
            source = "random"
            note = (f"random genomes: nothing stored was bred on {ident}" if store is not None
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
