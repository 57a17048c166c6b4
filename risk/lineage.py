"""Lineages: the policy subjects that carry a track record across days.

A genetic algorithm rewrites its population every generation, so the genealogy
kept in a genome (``parents``) does not survive a learning cycle of twenty
generations: the parents of Day 2's agents are intermediate genomes nobody
stored. Descent is therefore recognised by **similarity to a founder**:

* A **lineage** is founded by a genome (its *founder*) and is named after it:
  ``lineage:<founder genome_id>``.
* A later genome **belongs** to a lineage when it has the founder's strategy
  family and every strategy parameter stays within the tolerance of the
  founder's value:

  - float parameters: ``|x - f| <= tol x |f|`` (relative; ``|x - f| <= tol``
    when ``f == 0``);
  - int parameters (periods in bars): ``|x - f| <= max(1, tol x |f|)``, so a
    20-bar moving average stays in the lineage of a 19- or 21-bar one;
  - categorical parameters: equal.

  The default tolerance is 10 % (:data:`DEFAULT_TOLERANCE`): close enough that
  the descendant trades the same idea on nearly the same horizon, loose enough
  that the mutation steps of :mod:`evolution.operators` (a few bars, a few
  percent) keep an agent in its lineage.
* Risk genes (size, stops, leverage) and symbols are not part of the identity:
  the policy grants the leverage, and the track record is of the idea.
* A genome matching several lineages joins the nearest (smallest largest
  relative difference); ties go to the earliest founded. A genome matching none
  founds a new lineage.

Everything here is pure: the caller passes the lineages known at the point in
time of the decision (never later ones).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["DEFAULT_TOLERANCE", "Lineage", "LineageError", "param_distance", "assign_lineages",
           "lineage_subject"]

#: Relative tolerance of a lineage's parameters around its founder's (fraction).
DEFAULT_TOLERANCE = 0.10


class LineageError(ValueError):
    """Bad lineage input; the message names the value and what is allowed."""


@dataclass(frozen=True)
class Lineage:
    """One policy subject of kind ``lineage``.

    Attributes:
        founder: ``genome_id`` of the founding genome.
        family: strategy family of the founder (and of every member).
        params: the founder's strategy parameters (read-only by convention).
    """

    founder: str
    family: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        """The subject id, ``lineage:<founder>``."""
        return lineage_subject(self.founder)

    def to_dict(self) -> dict:
        """JSON-ready ``{"subject", "founder", "family", "params"}``."""
        return {"subject": self.subject, "founder": self.founder, "family": self.family,
                "params": dict(self.params)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Lineage":
        """Inverse of :meth:`to_dict` (``subject`` is derived, not read)."""
        return cls(founder=str(d["founder"]), family=str(d["family"]), params=dict(d.get("params") or {}))


def lineage_subject(founder: str) -> str:
    """``lineage:<founder genome_id>``."""
    return f"lineage:{founder}"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def param_distance(params: Mapping[str, Any], founder: Mapping[str, Any], tol: float = DEFAULT_TOLERANCE) -> float | None:
    """How far ``params`` are from ``founder``'s, in units of the tolerance.

    Returns:
        The largest per-parameter difference divided by its allowance (0 =
        identical, <= 1 = within tolerance), or None when the parameter names
        differ or a categorical value differs (never the same lineage).

    Raises:
        LineageError: ``tol`` not a finite number >= 0.
    """
    if not (_is_number(tol) and math.isfinite(tol) and tol >= 0):
        raise LineageError(f"tolerance={tol!r} is not allowed; allowed: a fraction >= 0 (0.10 = 10 %)")
    if set(params) != set(founder):
        return None
    worst = 0.0
    for name, f in founder.items():
        x = params[name]
        if _is_number(f) and _is_number(x):
            diff = abs(float(x) - float(f))
            if isinstance(f, int) and isinstance(x, int):
                allow = max(1.0, tol * abs(f))
            else:
                allow = tol * abs(float(f)) if f != 0 else tol
            if allow == 0.0:
                if diff > 0.0:
                    return None
                continue
            worst = max(worst, diff / allow)
        elif x != f:
            return None
    return worst


def assign_lineages(genomes: Iterable[tuple[str, str, Mapping[str, Any]]], known: Sequence[Lineage],
                    tol: float = DEFAULT_TOLERANCE) -> tuple[dict[str, Lineage], list[Lineage]]:
    """Assign each genome to a lineage, founding new ones where none fits.

    Args:
        genomes: ``(genome_id, family, params)`` in the caller's order (best
            first, so that the better of two near-twins founds the lineage).
        known: lineages known at the decision's point in time, oldest first.
        tol: relative tolerance (see the module docstring).

    Returns:
        ``({genome_id: lineage}, [lineages founded here, in order])``.

    Raises:
        LineageError: bad tolerance or a genome id given twice with different content.
    """
    pool = list(known)
    out: dict[str, Lineage] = {}
    founded: list[Lineage] = []
    seen: dict[str, tuple[str, dict]] = {}
    for gid, family, params in genomes:
        params = dict(params)
        if gid in seen:
            if seen[gid] != (family, params):
                raise LineageError(f"genome {gid!r} given twice with different family/params")
            continue
        seen[gid] = (family, params)
        best, best_d = None, None
        for lin in pool:
            if lin.family != family:
                continue
            d = param_distance(params, lin.params, tol)
            if d is not None and d <= 1.0 and (best_d is None or d < best_d):
                best, best_d = lin, d
        if best is None:
            best = Lineage(founder=gid, family=family, params=params)
            pool.append(best)
            founded.append(best)
        out[gid] = best
    return out, founded
