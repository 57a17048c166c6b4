"""The DEAP toolbox: named operators that create genomes.

:func:`make_toolbox` returns a :class:`deap.base.Toolbox` whose operators are
registered by name, so later code (crossover, mutation, selection; a config
file) can swap any of them with ``toolbox.register(name, other_function, ...)``
without subclassing. The operators call each other *through the toolbox*, so
replacing a low-level one (say ``params_for_family``) changes everything built
on it (``genome_for_family``, ``genome``, ``population``).

Registered operators (all draw from one ``random.Random(seed)``; global random
state is never touched, so two toolboxes with the same arguments produce the
same genomes in the same call order):

==========================  ====================================================
``param_value(param)``      one value of a :class:`Param`, uniform within its
                            space (int: uniform integer; float: uniform real;
                            categorical: uniform choice)
``params_for_family(name)`` a random parameter set of a family, each parameter
                            drawn with ``param_value`` then ``repair``-ed
``risk_genes()``            dict of the risk genes, each uniform within
                            :func:`evolution.genome.risk_genes` (``max_leverage``)
``symbols_subset()``        sorted tuple of ``k`` distinct symbols, ``k`` uniform
                            in ``[min_symbols, max_symbols]``
``genome_for_family(name)`` a random valid :class:`Genome` of that family
``genome()``                ``genome_for_family`` of a uniformly random family
``population(n)``           ``n`` genomes, families assigned round-robin in
                            sorted family-name order
``mate(a, b, generation=)`` two children by :func:`evolution.operators.crossover`
                            (``indpb=cx_indpb``, ``alpha=cx_alpha``)
``mutate(g, generation=)``  one child by :func:`evolution.operators.mutate`
                            (``indpb=mut_indpb``, ``sigma=mut_sigma``;
                            ``params_only=True`` mutates only the strategy
                            parameters)
==========================  ====================================================

``mate`` and ``mutate`` read ``cx_indpb``, ``cx_alpha``, ``mut_indpb`` and
``mut_sigma`` from the toolbox at call time, so a learning loop may retune them
between generations (``tb.mut_sigma = 0.05``); a keyword given to the call
(``tb.mutate(g, generation=3, indpb=0.5)``) wins for that call. Unlike DEAP's
built-in operators they return new genomes (genomes are frozen) instead of
modifying their arguments.

Individuals are plain :class:`Genome` objects; fitness lives outside them.
"""
from __future__ import annotations

import random
from typing import Any, Mapping, Sequence

from deap import base

from evolution.genome import (
    Genome,
    GenomeError,
    RiskGene,
    check_max_leverage,
    check_symbols,
    resolve_families,
    risk_genes,
)
from evolution.operators import check_rate, crossover, mutate
from simulator.strategies.base import Param, Strategy, StrategyError

__all__ = ["make_toolbox", "random_genomes", "sample_param"]


def sample_param(param: Param, rng: random.Random) -> Any:
    """Draw one value of ``param`` uniformly within its space.

    Args:
        param: the parameter (``int``: uniform integer in ``[low, high]``;
            ``float``: uniform real in ``[low, high]``, or ``(low, high]`` for a
            :class:`RiskGene` with ``open_low``; ``categorical``: uniform choice).
        rng: the random source.

    Returns:
        The value (``int``, ``float`` or one of ``choices``).
    """
    if param.kind == "categorical":
        return rng.choice(param.choices)
    if param.kind == "int":
        return rng.randint(int(param.low), int(param.high))
    low, high = float(param.low), float(param.high)
    if isinstance(param, RiskGene) and param.open_low:
        value = high - (high - low) * rng.random()  # in (low, high]
        return value if value > low else high
    return min(high, max(low, rng.uniform(low, high)))


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GenomeError(f"{name}={value!r} is not an integer")
    if value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise GenomeError(f"{name}={value!r} is out of bounds; allowed: {allowed}")
    return value


def _params_for_family(name: str, *, toolbox: base.Toolbox, families: Mapping[str, Strategy]) -> dict:
    strategy = _family(name, families)
    raw = {p.name: toolbox.param_value(p) for p in strategy.params}
    repaired = strategy.repair(raw)
    try:
        return strategy.validate(repaired)
    except StrategyError as exc:
        raise GenomeError(
            f"family {name}: repair() returned an invalid parameter set {repaired!r}: {exc}"
        ) from None


def _risk_genes(*, toolbox: base.Toolbox, space: Sequence[RiskGene]) -> dict:
    return {g.name: toolbox.param_value(g) for g in space}


def _symbols_subset(*, rng: random.Random, symbols: tuple[str, ...], low: int, high: int) -> tuple:
    k = rng.randint(low, high)
    return tuple(sorted(rng.sample(symbols, k)))


def _genome_for_family(name: str, *, toolbox: base.Toolbox, families: Mapping[str, Strategy]) -> Genome:
    _family(name, families)
    return Genome(
        name,
        toolbox.params_for_family(name),
        symbols=toolbox.symbols_subset(),
        **toolbox.risk_genes(),
    )


def _random_genome(*, toolbox: base.Toolbox, rng: random.Random, names: tuple[str, ...]) -> Genome:
    return toolbox.genome_for_family(rng.choice(names))


def _population(n: int, *, toolbox: base.Toolbox, names: tuple[str, ...]) -> list[Genome]:
    _check_int("population size n", n, 0)
    return [toolbox.genome_for_family(names[i % len(names)]) for i in range(n)]


def _mate(
    a: Genome,
    b: Genome,
    *,
    generation: int,
    toolbox: base.Toolbox,
    indpb: float | None = None,
    alpha: float | None = None,
) -> tuple[Genome, Genome]:
    return crossover(
        a,
        b,
        toolbox.rng,
        families=toolbox.families,
        symbols=toolbox.symbols,
        max_leverage=toolbox.max_leverage,
        generation=generation,
        indpb=toolbox.cx_indpb if indpb is None else indpb,
        alpha=toolbox.cx_alpha if alpha is None else alpha,
    )


def _mutate(
    g: Genome,
    *,
    generation: int,
    toolbox: base.Toolbox,
    indpb: float | None = None,
    sigma: float | None = None,
    params_only: bool = False,
) -> Genome:
    return mutate(
        g,
        toolbox.rng,
        families=toolbox.families,
        symbols=toolbox.symbols,
        max_leverage=toolbox.max_leverage,
        generation=generation,
        indpb=toolbox.mut_indpb if indpb is None else indpb,
        sigma=toolbox.mut_sigma if sigma is None else sigma,
        params_only=params_only,
    )


def _family(name: str, families: Mapping[str, Strategy]) -> Strategy:
    strategy = families.get(name) if isinstance(name, str) else None
    if strategy is None:
        raise GenomeError(
            f"strategy family {name!r} is unknown; available: {', '.join(sorted(families))}"
        )
    return strategy


def make_toolbox(
    symbols: Sequence[str],
    *,
    max_leverage: float = 1.0,
    families: Mapping[str, Strategy] | None = None,
    seed: int = 0,
    min_symbols: int = 1,
    max_symbols: int | None = None,
    cx_indpb: float = 0.5,
    cx_alpha: float = 0.0,
    mut_indpb: float = 0.2,
    mut_sigma: float = 0.15,
) -> base.Toolbox:
    """A DEAP toolbox that draws random valid genomes (operators listed in the
    module docstring).

    Args:
        symbols: the market's symbols; each genome trades a subset of them.
        max_leverage: the cohort leverage ceiling, multiple of agent equity, in
            ``[1, LEVERAGE_LIMIT]``; the ``leverage`` gene is drawn uniformly
            in ``[1, max_leverage]``.
        families: family name -> :class:`Strategy` instance; ``None`` = every
            family of :mod:`simulator.strategies.registry`.
        seed: integer seed of the toolbox's ``random.Random``.
        min_symbols: fewest symbols per genome (>= 1).
        max_symbols: most symbols per genome; ``None`` = all of ``symbols``.
            (Limits random genomes only; crossover and mutation may leave them.)
        cx_indpb: probability that ``mate`` exchanges each gene, in [0, 1].
        cx_alpha: BLX-alpha blending of float genes in ``mate`` (>= 0; 0 = plain
            uniform crossover).
        mut_indpb: probability that ``mutate`` changes each gene, in [0, 1].
        mut_sigma: ``mutate``'s step size, fraction of each gene's range (>= 0).

    Returns:
        The toolbox. Besides the operators it carries the configuration as
        attributes: ``rng``, ``seed``, ``symbols`` (sorted tuple), ``families``
        (dict), ``family_names`` (sorted tuple), ``max_leverage``,
        ``risk_space`` (the risk genes with the cohort's leverage bound),
        ``min_symbols``, ``max_symbols``, ``cx_indpb``, ``cx_alpha``,
        ``mut_indpb``, ``mut_sigma`` (the last four may be changed afterwards).

    Raises:
        GenomeError: empty or duplicated symbols, ``max_leverage`` outside
            ``[1, LEVERAGE_LIMIT]``, bad ``seed``, ``min_symbols`` /
            ``max_symbols`` outside ``1 <= min <= max <= len(symbols)``, bad
            families, or an operator rate out of range.
    """
    syms = check_symbols(symbols, "symbols")
    ceiling = check_max_leverage(max_leverage)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise GenomeError(f"seed={seed!r} is not an integer")
    lo = _check_int("min_symbols", min_symbols, 1, len(syms))
    hi = len(syms) if max_symbols is None else _check_int("max_symbols", max_symbols, lo, len(syms))
    rates = {
        "cx_indpb": check_rate("cx_indpb", cx_indpb),
        "cx_alpha": check_rate("cx_alpha", cx_alpha, None),
        "mut_indpb": check_rate("mut_indpb", mut_indpb),
        "mut_sigma": check_rate("mut_sigma", mut_sigma, None),
    }
    fams = resolve_families(families)
    names = tuple(sorted(fams))
    rng = random.Random(seed)

    tb = base.Toolbox()
    tb.rng, tb.seed, tb.symbols = rng, seed, syms
    tb.families, tb.family_names = fams, names
    tb.max_leverage, tb.risk_space = ceiling, risk_genes(ceiling)
    tb.min_symbols, tb.max_symbols = lo, hi
    for key, value in rates.items():
        setattr(tb, key, value)

    tb.register("param_value", sample_param, rng=rng)
    tb.register("params_for_family", _params_for_family, toolbox=tb, families=fams)
    tb.register("risk_genes", _risk_genes, toolbox=tb, space=tb.risk_space)
    tb.register("symbols_subset", _symbols_subset, rng=rng, symbols=syms, low=lo, high=hi)
    tb.register("genome_for_family", _genome_for_family, toolbox=tb, families=fams)
    tb.register("genome", _random_genome, toolbox=tb, rng=rng, names=names)
    tb.register("population", _population, toolbox=tb, names=names)
    tb.register("mate", _mate, toolbox=tb)
    tb.register("mutate", _mutate, toolbox=tb)
    return tb


def random_genomes(
    n: int,
    symbols: Sequence[str],
    *,
    seed: int,
    max_leverage: float = 1.0,
    families: Mapping[str, Strategy] | None = None,
) -> list[Genome]:
    """``n`` random valid genomes, families spread round-robin (see :func:`make_toolbox`).

    Args:
        n: number of genomes (>= 0).
        symbols: the market's symbols.
        seed: integer seed; the same arguments always give the same genomes.
        max_leverage: cohort leverage ceiling, multiple of agent equity.
        families: family name -> :class:`Strategy`; ``None`` = the registry.

    Raises:
        GenomeError: as :func:`make_toolbox`, or ``n`` not an integer >= 0.
    """
    return make_toolbox(symbols, max_leverage=max_leverage, families=families, seed=seed).population(n)
