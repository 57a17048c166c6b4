"""The strategy plugin interface.

A strategy *family* (``sma_cross``, ``rsi_reversion``, ...) declares a typed
parameter space and turns bars plus a batch of parameter sets into target
exposures, vectorised over the batch. Families are found by
:mod:`simulator.strategies.registry`; the engine never names one.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from simulator.market import MarketData


class StrategyError(ValueError):
    """Unknown family, unknown parameter, or a parameter value outside its space."""


@dataclass(frozen=True)
class Param:
    """One typed parameter of a strategy family.

    Attributes:
        name: parameter name as used in ``--param name=value`` and genomes.
        kind: ``"int"``, ``"float"`` or ``"categorical"``.
        default: value used when a parameter set omits this parameter.
        low, high: inclusive bounds for ``int`` / ``float`` (units in ``help``).
        choices: allowed values for ``categorical``.
        help: one line with the meaning and unit (bars, bps, standard deviations).
    """

    name: str
    kind: str
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    help: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("int", "float", "categorical"):
            raise StrategyError(f"param {self.name}: kind {self.kind!r} not int/float/categorical")
        if self.kind == "categorical":
            if not self.choices or self.default not in self.choices:
                raise StrategyError(f"param {self.name}: default must be one of its choices")
        elif self.low is None or self.high is None or not self.low <= self.default <= self.high:
            raise StrategyError(f"param {self.name}: need low <= default <= high")

    def coerce(self, value: Any) -> Any:
        """Parse and check one value (strings from the CLI are accepted).

        Raises:
            StrategyError: the value is not of this kind or is outside the bounds;
                the message names the parameter and what is allowed.
        """
        allowed = self.describe()
        if self.kind == "categorical":
            for choice in self.choices:
                if value == choice or str(value) == str(choice):
                    return choice
            raise StrategyError(f"{self.name}={value!r} is not allowed; allowed: {allowed}")
        try:
            num = float(value)
        except (TypeError, ValueError):
            raise StrategyError(f"{self.name}={value!r} is not a number; allowed: {allowed}") from None
        if not math.isfinite(num):
            raise StrategyError(f"{self.name}={value!r} is not finite; allowed: {allowed}")
        if self.kind == "int":
            if num != int(num):
                raise StrategyError(f"{self.name}={value!r} is not an integer; allowed: {allowed}")
            num = int(num)
        if not self.low <= num <= self.high:
            raise StrategyError(f"{self.name}={value!r} is out of bounds; allowed: {allowed}")
        return num

    def describe(self) -> str:
        """``int in [2, 50]``-style text for errors and ``--help``."""
        if self.kind == "categorical":
            return "one of " + ", ".join(map(str, self.choices))
        return f"{self.kind} in [{self.low}, {self.high}]"


class Strategy(ABC):
    """Base class of a strategy family (one plugin).

    Subclasses set the class attributes and implement :meth:`targets`.

    Attributes:
        name: family name used on the CLI and in genomes (``sma_cross``).
        description: one line for ``--help`` and reports.
        params: the typed parameter space.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def param(self, name: str) -> Param:
        """The :class:`Param` called ``name``.

        Raises:
            StrategyError: no such parameter in this family.
        """
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params)
        raise StrategyError(f"{self.name} has no parameter {name!r}; parameters: {known}")

    def defaults(self) -> dict[str, Any]:
        """The default parameter set."""
        return {p.name: p.default for p in self.params}

    def validate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """A complete, checked parameter set: defaults filled in, values coerced.

        Raises:
            StrategyError: unknown parameter, bad value, or a broken cross-parameter
                rule (such as ``fast < slow``), naming the offending values.
        """
        out = self.defaults()
        for key, value in values.items():
            out[key] = self.param(key).coerce(value)
        self.check(out)
        return out

    def check(self, values: dict[str, Any]) -> None:
        """Cross-parameter rules; raise :class:`StrategyError` when broken.

        The default has none. Families with rules override this and
        :meth:`repair`.
        """

    def repair(self, values: dict[str, Any]) -> dict[str, Any]:
        """Return a parameter set that satisfies :meth:`check`, changing as little
        as possible (used by evolution after crossover/mutation). Default: as is."""
        return dict(values)

    @abstractmethod
    def targets(self, market: MarketData, param_sets: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Target exposures for a batch of parameter sets.

        Args:
            market: the bars (all T bars, warm-up included).
            param_sets: P complete parameter sets (as returned by :meth:`validate`).

        Returns:
            ``(P, T, S) float64`` in [-1, 1]: the exposure each parameter set wants
            to hold *after* the close of bar t, as a fraction of the agent's
            allowed exposure (1 = fully long, -1 = fully short, 0 = flat). Must be
            causal: row t depends on bars 0..t only. Indicator values that are not
            yet defined (warm-up) give 0. Each distinct parameter value set is
            computed once.
        """
