"""Variation operators of the genetic algorithm: crossover and mutation.

Both operators take parent :class:`~evolution.genome.Genome` objects (frozen,
never modified) and return **new, valid** genomes: every child passes
``child.validated(families, symbols=symbols, max_leverage=max_leverage)``.
All randomness comes from the ``rng`` argument (a :class:`random.Random`), so the
same seed and the same call order give the same children; global random state
is never touched.

How a child is made valid:

1. numeric genes are kept inside their bounds while they are varied (strategy
   parameters: :class:`~simulator.strategies.base.Param` bounds; risk genes:
   :func:`evolution.genome.risk_genes` with the cohort's ``max_leverage``, so a
   parent whose leverage is above a lowered ceiling has children at the ceiling);
2. symbols are restricted to the market's ``symbols`` and never empty;
3. the family's :meth:`~simulator.strategies.base.Strategy.repair` fixes
   cross-parameter rules (``fast < slow`` ...), then ``validate`` checks the set;
4. if that still fails (a family whose ``repair`` is broken), the child is a copy
   of its parent with the new genealogy, and a warning is logged on the
   ``evolution.operators`` logger. With the built-in families this never happens.

Design choices:

* **Crossover is uniform** by default: each gene is exchanged between the two
  children with probability ``indpb``, so every int, float and categorical value
  of a child is one of its parents' values (before ``repair``). ``alpha > 0``
  turns float genes into BLX-alpha blends (Eshelman & Schaffer 1993): an
  exchanged float gene is drawn uniformly from ``[min - alpha*d, max + alpha*d]``
  (``d`` = the parents' distance), independently per child, then clipped. Ints
  and categoricals are always exchanged, never averaged.
* **Mutation clips** at the bounds rather than reflecting: the lower bound of
  ``stop_loss``, ``take_profit`` and ``max_hold_bars`` means "off", and clipping
  gives "off" a positive probability (and keeps it sticky), which reflection would
  not. Two exceptions keep a mutation from being a no-op or invalid: an int whose
  step is clipped back onto its old value steps the other way instead, and a float
  with an open lower bound (``size`` in ``(0, 1]``) that would reach the bound goes
  halfway between its old value and the bound.
"""
from __future__ import annotations

import functools
import logging
import math
import random
from typing import Any, Mapping, Sequence

from evolution.genome import (
    RISK_GENE_NAMES,
    Genome,
    GenomeError,
    RiskGene,
    check_symbols,
    resolve_families,
    risk_genes,
)
from simulator.strategies.base import Param, Strategy

__all__ = ["crossover", "mutate", "check_rate"]

log = logging.getLogger(__name__)

_LEVERAGE = RISK_GENE_NAMES.index("leverage")


# -- configuration (cached: the GA calls the operators thousands of times) ----------------------


@functools.lru_cache(maxsize=64)
def _space(max_leverage: float | None) -> tuple[tuple[RiskGene, ...], float]:
    space = risk_genes(max_leverage)
    return space, float(space[_LEVERAGE].high)


@functools.lru_cache(maxsize=64)
def _market(symbols: tuple) -> tuple[tuple[str, ...], frozenset]:
    syms = check_symbols(symbols, "market symbols")
    return syms, frozenset(syms)


def _config(families, symbols, max_leverage):
    fams = resolve_families(None) if families is None else families
    if type(symbols) is not tuple:
        if isinstance(symbols, str) or not isinstance(symbols, Sequence):
            raise GenomeError(f"symbols={symbols!r} is not a sequence of market symbols")
        symbols = tuple(symbols)
    market, market_set = _market(symbols)
    space, ceiling = _space(max_leverage)
    return fams, market, market_set, space, ceiling


def check_rate(name: str, value: Any, high: float | None = 1.0) -> float:
    """Check an operator rate (``indpb`` in [0, 1], ``sigma``/``alpha`` >= 0).

    Raises:
        GenomeError: not a finite number in range, naming the value.
    """
    allowed = f"a number in [0, {high}]" if high is not None else "a finite number >= 0"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise GenomeError(f"{name}={value!r} is not a number; allowed: {allowed}")
    if not math.isfinite(value) or value < 0 or (high is not None and value > high):
        raise GenomeError(f"{name}={value!r} is out of bounds; allowed: {allowed}")
    return float(value)


def _check_generation(generation: Any) -> int:
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise GenomeError(f"generation={generation!r} is not allowed; allowed: an integer >= 0")
    return generation


def _strategy(name: str, families: Mapping[str, Strategy]) -> Strategy:
    strategy = families.get(name)
    if strategy is None:
        raise GenomeError(
            f"strategy family {name!r} is unknown; available: {', '.join(sorted(families))}"
        )
    return strategy


# -- gene values ------------------------------------------------------------------------------


def _fit(gene: Param, value: Any, fallback: Any) -> Any:
    """``value`` clipped into ``gene``'s space (ints rounded). For an open lower
    bound a value on the bound becomes ``fallback`` when that is inside, else the
    upper bound."""
    if gene.kind == "categorical":
        return value
    lo, hi = gene.low, gene.high
    if value < lo:
        value = lo
    elif value > hi:
        value = hi
    if gene.kind == "int":
        return int(round(value))
    value = float(value) + 0.0
    if value <= lo and getattr(gene, "open_low", False):
        value = float(fallback) if lo < fallback <= hi else float(hi)
    return value


def _param_values(strategy: Strategy, params: Mapping[str, Any]) -> list:
    """The genome's value of each family parameter, in ``strategy.params`` order:
    defaults for missing ones, strings from a hand-written file coerced, anything
    unusable replaced by the default."""
    out = []
    for p in strategy.params:
        v = params.get(p.name, p.default)
        if p.kind == "categorical":
            ok = v in p.choices
        else:
            ok = not isinstance(v, bool) and isinstance(v, (int, float))
        if not ok:
            try:
                v = p.coerce(v)
            except ValueError:
                v = p.default
        out.append(v)
    return out


def _risk_values(g: Genome) -> list:
    return [getattr(g, name) for name in RISK_GENE_NAMES]


def _cross_genes(space, xs, ys, rng: random.Random, indpb: float, alpha: float):
    c1, c2 = [], []
    for gene, x, y in zip(space, xs, ys):
        if rng.random() < indpb:
            if alpha > 0.0 and gene.kind == "float":
                lo, hi = (x, y) if x <= y else (y, x)
                d = (hi - lo) * alpha
                x, y = rng.uniform(lo - d, hi + d), rng.uniform(lo - d, hi + d)
                fx, fy = lo, hi  # fallbacks for an open lower bound: a parent value
            else:
                x, y = y, x
                fx, fy = x, y
        else:
            fx, fy = x, y
        c1.append(_fit(gene, x, fx))
        c2.append(_fit(gene, y, fy))
    return c1, c2


def _mutate_gene(gene: Param, v: Any, rng: random.Random, indpb: float, sigma: float) -> Any:
    if rng.random() >= indpb:
        return _fit(gene, v, v)
    if gene.kind == "categorical":
        others = [c for c in gene.choices if c != v]
        return rng.choice(others) if others else v
    lo, hi = gene.low, gene.high
    v = _fit(gene, v, hi)
    sd = sigma * (hi - lo)
    if gene.kind == "int":
        step = round(rng.gauss(0.0, sd)) if sd > 0 else 0
        if step == 0:
            step = 1 if rng.random() < 0.5 else -1
        new = min(max(v + step, lo), hi)
        if new == v:  # clipped back onto itself: step the other way
            new = min(max(v - step, lo), hi)
        return int(new)
    new = min(max(v + rng.gauss(0.0, sd), lo), hi) + 0.0
    if new <= lo and getattr(gene, "open_low", False):
        half = (lo + v) / 2.0
        new = half if half > lo else v
    return float(new)


def _cross_symbols(sa, sb, rng, indpb, market, market_set):
    """Uniform crossover of the symbol membership masks over the parents' union."""
    in_a, in_b = set(sa), set(sb)
    union = sorted(s for s in in_a | in_b if s in market_set)
    c1, c2 = [], []
    for s in union:
        x, y = s in in_a, s in in_b
        if rng.random() < indpb:
            x, y = y, x
        if x:
            c1.append(s)
        if y:
            c2.append(s)
    pool = union or market
    if not c1:
        c1.append(rng.choice(pool))
    if not c2:
        c2.append(rng.choice(pool))
    return tuple(c1), tuple(c2)


def _mutate_symbols(syms, rng, indpb, market, market_set):
    cur = [s for s in syms if s in market_set]
    if not cur:
        cur = [rng.choice(market)]
    if rng.random() >= indpb:
        return tuple(cur)
    chosen = set(cur)
    outside = [s for s in market if s not in chosen]
    ops = ["add", "swap"] if outside else []
    if len(cur) > 1:
        ops.append("remove")
    if not ops:  # the only market symbol
        return tuple(cur)
    op = rng.choice(ops)
    if op != "add":
        cur.remove(rng.choice(sorted(cur)))
    if op != "remove":
        cur.append(rng.choice(outside))
    return tuple(cur)


# -- building children ----------------------------------------------------------------------


def _child(parent: Genome, strategy: Strategy, params: list, genes: list, syms: tuple,
           generation: int, parents: tuple, market_set: frozenset, ceiling: float) -> Genome:
    """A validated genome from varied values; a copy of ``parent`` (new genealogy)
    when the family cannot repair the values."""
    names = [p.name for p in strategy.params]
    try:
        checked = strategy.validate(strategy.repair(dict(zip(names, params))))
        child = Genome(parent.family, checked, symbols=syms, generation=generation,
                       parents=parents, **dict(zip(RISK_GENE_NAMES, genes)))
        _check_cohort(child, market_set, ceiling)
        return child
    except Exception as exc:  # noqa: BLE001 - a family's repair may fail in any way
        log.warning(
            "child of %s (family %s) is invalid after repair (%s); using a copy of the parent",
            parent.genome_id, parent.family, exc,
        )
    try:
        copy = Genome(parent.family, strategy.validate(parent.params), symbols=parent.symbols,
                      generation=generation, parents=parents,
                      **dict(zip(RISK_GENE_NAMES, _risk_values(parent))))
        _check_cohort(copy, market_set, ceiling)
    except Exception as exc:  # noqa: BLE001
        raise GenomeError(
            f"cannot vary genome {parent.genome_id} (family {parent.family}): its child is "
            f"invalid after repair and the parent itself is invalid for this cohort: {exc}"
        ) from None
    return copy


def _check_cohort(g: Genome, market_set: frozenset, ceiling: float) -> None:
    if g.leverage > ceiling:
        raise GenomeError(f"leverage={g.leverage!r} exceeds max_leverage={ceiling!r}")
    if not market_set.issuperset(g.symbols):
        raise GenomeError(f"symbols {list(g.symbols)} are not all market symbols")


# -- the operators ------------------------------------------------------------------------------


def crossover(
    a: Genome,
    b: Genome,
    rng: random.Random,
    *,
    families: Mapping[str, Strategy] | None,
    symbols: Sequence[str],
    max_leverage: float | None,
    generation: int,
    indpb: float = 0.5,
    alpha: float = 0.0,
) -> tuple[Genome, Genome]:
    """Two children of ``a`` and ``b`` by uniform crossover.

    * Same family: each strategy parameter is exchanged between the children with
      probability ``indpb`` (floats blended instead when ``alpha > 0``), then the
      family's ``repair`` restores cross-parameter rules.
    * Different families: each child keeps its parent's family and parameters
      (first child: ``a``'s, second: ``b``'s); only risk genes and symbols are crossed.
    * Risk genes (``size``, ``stop_loss``, ``take_profit``, ``max_hold_bars``,
      ``leverage``): exchanged with probability ``indpb`` (floats blended when
      ``alpha > 0``), kept within ``risk_genes(max_leverage)``.
    * Symbols: uniform crossover of the membership masks over the union of the
      parents' symbols (market symbols only): a symbol both parents trade goes to
      both children, one only a parent trades goes to one child. A child left
      empty gets one symbol drawn from the union (from the market's symbols when
      neither parent trades any of them).

    Args:
        a, b: the parents (not modified).
        rng: the random source.
        families: family name -> :class:`Strategy`; ``None`` = the registry.
        symbols: the market's symbols; children trade a non-empty subset.
        max_leverage: the cohort leverage ceiling (multiple of agent equity), in
            ``[1, LEVERAGE_LIMIT]``; ``None`` = :data:`~evolution.genome.LEVERAGE_LIMIT`.
        generation: the children's ``generation`` (>= 0).
        indpb: probability that a gene is exchanged, in [0, 1].
        alpha: BLX-alpha extension for float genes (>= 0); 0 = no blending.

    Returns:
        Two valid genomes with ``parents=(a.genome_id, b.genome_id)``.

    Raises:
        GenomeError: bad configuration, an unknown family, or a parent that is
            itself invalid for this cohort when its child cannot be repaired.
    """
    indpb = check_rate("indpb", indpb)
    alpha = check_rate("alpha", alpha, None)
    _check_generation(generation)
    fams, market, market_set, space, ceiling = _config(families, symbols, max_leverage)
    sa, sb = _strategy(a.family, fams), _strategy(b.family, fams)
    pa, pb = _param_values(sa, a.params), _param_values(sb, b.params)
    if a.family == b.family:
        pa, pb = _cross_genes(sa.params, pa, pb, rng, indpb, alpha)
    ra, rb = _cross_genes(space, _risk_values(a), _risk_values(b), rng, indpb, alpha)
    ya, yb = _cross_symbols(a.symbols, b.symbols, rng, indpb, market, market_set)
    parents = (a.genome_id, b.genome_id)
    return (
        _child(a, sa, pa, ra, ya, generation, parents, market_set, ceiling),
        _child(b, sb, pb, rb, yb, generation, parents, market_set, ceiling),
    )


def mutate(
    g: Genome,
    rng: random.Random,
    *,
    families: Mapping[str, Strategy] | None,
    symbols: Sequence[str],
    max_leverage: float | None,
    generation: int,
    indpb: float = 0.2,
    sigma: float = 0.15,
    params_only: bool = False,
) -> Genome:
    """A mutated copy of ``g``; each gene mutates independently with probability ``indpb``.

    * int (parameter or ``max_hold_bars``): Gaussian step with standard deviation
      ``sigma * (high - low)``, rounded, at least +-1, clipped to the bounds (a
      step clipped back onto the old value goes the other way);
    * float: Gaussian step with the same standard deviation, clipped (see the
      module docstring for ``size``'s open lower bound);
    * categorical: a different choice, uniformly;
    * symbols (one gene): add a symbol, remove one or swap one for one not yet
      traded, chosen uniformly among the moves possible (never empty).

    Args:
        g: the parent (not modified).
        rng: the random source.
        families, symbols, max_leverage: as :func:`crossover`.
        generation: the child's ``generation`` (>= 0).
        indpb: probability that each gene mutates, in [0, 1].
        sigma: step size as a fraction of each gene's range (>= 0).
        params_only: mutate only the strategy parameters; risk genes and symbols
            are kept (only clipped to the cohort when the parent is outside it).

    Returns:
        A valid genome with ``parents=(g.genome_id,)``.

    Raises:
        GenomeError: as :func:`crossover`.
    """
    indpb = check_rate("indpb", indpb)
    sigma = check_rate("sigma", sigma, None)
    _check_generation(generation)
    fams, market, market_set, space, ceiling = _config(families, symbols, max_leverage)
    strategy = _strategy(g.family, fams)
    params = [
        _mutate_gene(p, v, rng, indpb, sigma)
        for p, v in zip(strategy.params, _param_values(strategy, g.params))
    ]
    if params_only:
        genes = [_fit(gene, v, v) for gene, v in zip(space, _risk_values(g))]
        syms = _mutate_symbols(g.symbols, rng, 0.0, market, market_set)
    else:
        genes = [_mutate_gene(gene, v, rng, indpb, sigma) for gene, v in zip(space, _risk_values(g))]
        syms = _mutate_symbols(g.symbols, rng, indpb, market, market_set)
    return _child(g, strategy, params, genes, syms, generation, (g.genome_id,), market_set, ceiling)
