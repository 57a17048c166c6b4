"""Genomes: the heritable description of one agent.

A :class:`Genome` names a strategy family, carries a complete parameter set of
that family, the common risk genes every agent has (position size, stop loss,
take profit, maximum holding time, leverage ceiling), the symbols the agent
trades, and its genealogy (generation and parent ids).

The bounds of the risk genes live in one place, :data:`RISK_GENES`, a tuple of
:class:`~simulator.strategies.base.Param`; validation here and random sampling in
:mod:`evolution.toolbox` both read them. The leverage gene's upper bound is an
absolute sanity limit (:data:`LEVERAGE_LIMIT`); a cohort narrows it to its own
ceiling with :func:`risk_genes` (``max_leverage``).

Genomes are serialised as plain JSON objects::

    {"family": "sma_cross", "params": {"fast": 5, "slow": 20},
     "symbols": ["BTC_USDT", "ETH_USDT"], "size": 0.5, "stop_loss": 0.02,
     "take_profit": 0.0, "max_hold_bars": 120, "leverage": 2.0,
     "generation": 3, "parents": ["3fa2c91b0d", "77e01ac4b2"],
     "genome_id": "9c1d0e77aa"}

Only ``family`` and ``symbols`` are required; omitted parameters take the
family's defaults, omitted risk genes take the dataclass defaults, and
``genome_id`` (written by :meth:`Genome.to_dict`) is checked against the content
when present.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from simulator.strategies.base import Param, Strategy, StrategyError

__all__ = [
    "GenomeError",
    "RiskGene",
    "RISK_GENES",
    "RISK_GENE_NAMES",
    "LEVERAGE_LIMIT",
    "check_max_leverage",
    "check_symbols",
    "Genome",
    "risk_genes",
    "resolve_families",
    "load_genomes",
    "save_genomes",
]

#: Absolute upper bound of the ``leverage`` gene (multiple of agent equity). A
#: cohort's own ceiling (``max_leverage``) is never allowed above it.
LEVERAGE_LIMIT = 100.0

#: Length of :attr:`Genome.genome_id` in hex characters.
GENOME_ID_LENGTH = 10


class GenomeError(ValueError):
    """Invalid genome, genome file or genome-sampling configuration.

    The message names the offending field and value and what is allowed; for a
    file it also names the file and the index of the bad genome.
    """


@dataclass(frozen=True)
class RiskGene(Param):
    """A :class:`Param` whose lower bound may be exclusive.

    Attributes:
        open_low: when True the allowed range is ``(low, high]`` rather than
            ``[low, high]`` (used by ``size``: committing 0 of equity is not an agent).
    """

    open_low: bool = False

    def coerce(self, value: Any) -> Any:
        """Check one value like :meth:`Param.coerce`; booleans are rejected and a
        value equal to an open lower bound is out of bounds. ``-0.0`` becomes ``0.0``.

        Raises:
            StrategyError: not a number of this kind, or outside the bounds; the
                message names the gene, the value and the allowed range.
        """
        if isinstance(value, bool):
            raise StrategyError(f"{self.name}={value!r} is not a number; allowed: {self.describe()}")
        num = super().coerce(value)
        if self.open_low and num <= self.low:
            raise StrategyError(f"{self.name}={value!r} is out of bounds; allowed: {self.describe()}")
        return num + 0 if self.kind == "int" else float(num) + 0.0

    def describe(self) -> str:
        """``float in (0.0, 1.0]``-style text for errors and ``--help``."""
        if self.open_low:
            return f"{self.kind} in ({self.low}, {self.high}]"
        return super().describe()


#: The common risk genes, in serialisation order. Bounds are inclusive unless
#: ``open_low``; 0 means "off" for ``stop_loss``, ``take_profit`` and ``max_hold_bars``.
RISK_GENES: tuple[RiskGene, ...] = (
    RiskGene(
        "size", "float", 1.0, 0.0, 1.0, open_low=True,
        help="fraction of agent equity committed when all its symbols signal",
    ),
    RiskGene(
        "stop_loss", "float", 0.0, 0.0, 0.2,
        help="stop distance as a fraction of entry price; 0 = off",
    ),
    RiskGene(
        "take_profit", "float", 0.0, 0.0, 0.5,
        help="profit target as a fraction of entry price; 0 = off",
    ),
    RiskGene(
        "max_hold_bars", "int", 0, 0, 2000,
        help="close a position after this many bars; 0 = off",
    ),
    RiskGene(
        "leverage", "float", 1.0, 1.0, LEVERAGE_LIMIT,
        help="agent leverage ceiling, multiple of agent equity (capped by the cohort ceiling)",
    ),
)

#: Names of :data:`RISK_GENES`, in order.
RISK_GENE_NAMES: tuple[str, ...] = tuple(g.name for g in RISK_GENES)

_GENEALOGY_KEYS = ("generation", "parents")
_DICT_KEYS = ("family", "params", "symbols", *RISK_GENE_NAMES, *_GENEALOGY_KEYS, "genome_id")


def check_max_leverage(max_leverage: Any) -> float:
    """Check a cohort leverage ceiling and return it as a float.

    Args:
        max_leverage: multiple of agent equity; must be a finite number in
            ``[1, LEVERAGE_LIMIT]``.

    Raises:
        GenomeError: not a number or outside ``[1, LEVERAGE_LIMIT]``.
    """
    allowed = f"a number in [1.0, {LEVERAGE_LIMIT}]"
    if isinstance(max_leverage, bool) or not isinstance(max_leverage, (int, float)):
        raise GenomeError(f"max_leverage={max_leverage!r} is not a number; allowed: {allowed}")
    if not math.isfinite(max_leverage) or not 1.0 <= max_leverage <= LEVERAGE_LIMIT:
        raise GenomeError(f"max_leverage={max_leverage!r} is out of bounds; allowed: {allowed}")
    return float(max_leverage)


def risk_genes(max_leverage: float | None = None) -> tuple[RiskGene, ...]:
    """The risk-gene space of a cohort.

    Args:
        max_leverage: the cohort's leverage ceiling (multiple of agent equity);
            the ``leverage`` gene's upper bound becomes this value. ``None``
            keeps :data:`LEVERAGE_LIMIT`.

    Returns:
        :data:`RISK_GENES`, with the leverage bound narrowed when asked.

    Raises:
        GenomeError: ``max_leverage`` not in ``[1, LEVERAGE_LIMIT]``.
    """
    if max_leverage is None:
        return RISK_GENES
    ceiling = check_max_leverage(max_leverage)
    return tuple(
        dataclasses.replace(g, high=ceiling) if g.name == "leverage" else g for g in RISK_GENES
    )


def resolve_families(families: Mapping[str, Strategy] | None = None) -> dict[str, Strategy]:
    """The strategy families to use, checked.

    Args:
        families: family name -> :class:`Strategy` instance. ``None`` means every
            family of :mod:`simulator.strategies.registry`.

    Returns:
        A new dict, name -> strategy.

    Raises:
        GenomeError: the mapping is empty, a name is not a non-empty string, or a
            value is not a :class:`Strategy` instance.
    """
    if families is None:
        from simulator.strategies import registry

        families = registry.all_strategies()
    if not isinstance(families, Mapping):
        raise GenomeError(
            f"families={families!r} is not a mapping; allowed: a dict of family name -> Strategy"
        )
    if not families:
        raise GenomeError("families is empty; allowed: at least one strategy family")
    out: dict[str, Strategy] = {}
    for name, strategy in families.items():
        if not isinstance(name, str) or not name:
            raise GenomeError(f"family name {name!r} is not a non-empty string")
        if not isinstance(strategy, Strategy):
            raise GenomeError(
                f"family {name!r} maps to {strategy!r}, which is not a Strategy instance"
            )
        out[name] = strategy
    return out


def check_symbols(symbols: Any, what: str = "symbols") -> tuple[str, ...]:
    """Check a symbol list and return it as a sorted tuple.

    Args:
        symbols: an iterable (not a string) of non-empty symbol names.
        what: how the list is named in error messages.

    Raises:
        GenomeError: not a list, empty, a non-string or empty name, or duplicates.
    """
    if isinstance(symbols, (str, bytes)) or not isinstance(symbols, Iterable):
        raise GenomeError(f"{what}={symbols!r} is not a list of symbol names")
    items = list(symbols)
    if not items:
        raise GenomeError(f"{what}=[] is empty; allowed: at least one symbol")
    for s in items:
        if not isinstance(s, str) or not s:
            raise GenomeError(f"{what} contains {s!r}, which is not a non-empty string")
    dupes = sorted({s for s in items if items.count(s) > 1})
    if dupes:
        raise GenomeError(f"{what}={items!r} lists {dupes} more than once")
    return tuple(sorted(items))


def _check_param_values(family: str, params: Any) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise GenomeError(f"genome params={params!r} is not a mapping of parameter name -> value")
    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise GenomeError(f"genome params of {family}: parameter name {key!r} is not a string")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            raise GenomeError(
                f"genome params of {family}: {key}={value!r} is not a JSON scalar "
                "(string, number, boolean or null)"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise GenomeError(f"genome params of {family}: {key}={value!r} is not finite")
        out[key] = value
    return out


@dataclass(frozen=True)
class Genome:
    """The heritable description of one agent.

    Construction checks everything that does not depend on a family registry or
    a market (types, risk-gene bounds with the absolute leverage limit, symbol
    list shape, genealogy) and normalises values (symbols sorted, ``-0.0`` to
    ``0.0``, ints for ``max_hold_bars``). :meth:`validated` and
    :meth:`from_dict` also check the family, its parameters, the market's
    symbols and the cohort leverage ceiling. Treat ``params`` as read-only.

    Attributes:
        family: strategy family name (``sma_cross``).
        params: complete, validated parameter set of the family.
        symbols: symbols the agent trades; a non-empty subset of the market's
            symbols, stored sorted (order is irrelevant).
        size: fraction of agent equity committed when all its symbols signal,
            in ``(0, 1]``; default 1.0.
        stop_loss: stop distance, fraction of entry price, ``[0, 0.2]``; 0 = off.
        take_profit: profit target, fraction of entry price, ``[0, 0.5]``; 0 = off.
        max_hold_bars: maximum holding time in bars, ``[0, 2000]``; 0 = off.
        leverage: the agent's leverage ceiling, multiple of agent equity,
            ``[1, cohort ceiling]``; default 1.0.
        generation: generation the genome was born in (0 = random seed population).
        parents: ``genome_id`` of each parent (empty for a random genome).

    Raises:
        GenomeError: on construction, for any value outside the above.
    """

    family: str
    params: dict
    _: KW_ONLY
    symbols: tuple[str, ...]
    size: float = 1.0
    stop_loss: float = 0.0
    take_profit: float = 0.0
    max_hold_bars: int = 0
    leverage: float = 1.0
    generation: int = 0
    parents: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.family, str) or not self.family:
            raise GenomeError(f"genome family={self.family!r} is not a non-empty string")
        object.__setattr__(self, "params", _check_param_values(self.family, self.params))
        object.__setattr__(self, "symbols", check_symbols(self.symbols, "genome symbols"))
        for gene in RISK_GENES:
            try:
                value = gene.coerce(getattr(self, gene.name))
            except StrategyError as exc:
                raise GenomeError(f"genome risk gene {exc}") from None
            object.__setattr__(self, gene.name, value)
        gen = self.generation
        if isinstance(gen, bool) or not isinstance(gen, int) or gen < 0:
            raise GenomeError(f"genome generation={gen!r} is not allowed; allowed: an integer >= 0")
        parents = self.parents
        if isinstance(parents, (str, bytes)) or not isinstance(parents, Iterable):
            raise GenomeError(f"genome parents={parents!r} is not a list of genome ids")
        parents = tuple(parents)
        for p in parents:
            if not isinstance(p, str) or not p:
                raise GenomeError(f"genome parents contains {p!r}, which is not a non-empty genome id")
        object.__setattr__(self, "parents", parents)

    # -- identity --------------------------------------------------------------

    def content(self) -> dict[str, Any]:
        """The heritable content (family, params, risk genes, symbols) as a
        JSON-ready dict; genealogy excluded. :attr:`genome_id` hashes this."""
        out: dict[str, Any] = {"family": self.family, "params": dict(self.params)}
        out["symbols"] = list(self.symbols)
        for name in RISK_GENE_NAMES:
            out[name] = getattr(self, name)
        return out

    @property
    def genome_id(self) -> str:
        """Short stable id: the first 10 hex digits of the SHA-1 of the canonical
        JSON (sorted keys, no whitespace) of :meth:`content`. Two genomes with the
        same content share an id whatever their generation or parents."""
        canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:GENOME_ID_LENGTH]

    def __hash__(self) -> int:
        return hash(self.genome_id)

    # -- validation ------------------------------------------------------------

    def validated(
        self,
        families: Mapping[str, Strategy] | None = None,
        symbols: Sequence[str] | None = None,
        max_leverage: float | None = None,
    ) -> Genome:
        """This genome checked against a family registry, a market and a cohort.

        Args:
            families: family name -> :class:`Strategy`; ``None`` = the registry.
            symbols: the market's symbols; when given, every genome symbol must be
                one of them.
            max_leverage: the cohort leverage ceiling (multiple of agent
                equity); when given, ``leverage`` must not exceed it.

        Returns:
            A genome equal to this one except that ``params`` is the family's
            complete validated set (defaults filled in, values coerced).

        Raises:
            GenomeError: unknown family (the message lists the available ones),
                a bad parameter (from the family's ``validate``), an unknown
                symbol, or leverage above the ceiling.
        """
        fams = resolve_families(families)
        strategy = fams.get(self.family)
        if strategy is None:
            raise GenomeError(
                f"genome family {self.family!r} is unknown; available: {', '.join(sorted(fams))}"
            )
        try:
            params = strategy.validate(self.params)
        except StrategyError as exc:
            raise GenomeError(f"genome params of family {self.family}: {exc}") from None
        if symbols is not None:
            known = set(check_symbols(symbols, "market symbols"))
            unknown = [s for s in self.symbols if s not in known]
            if unknown:
                raise GenomeError(
                    f"genome symbols {unknown} are not market symbols; "
                    f"available: {', '.join(sorted(known))}"
                )
        if max_leverage is not None:
            ceiling = check_max_leverage(max_leverage)
            if self.leverage > ceiling:
                lev = risk_genes(ceiling)[RISK_GENE_NAMES.index("leverage")]
                raise GenomeError(
                    f"genome risk gene leverage={self.leverage!r} exceeds the cohort ceiling "
                    f"max_leverage={ceiling!r}; allowed: {lev.describe()}"
                )
        return dataclasses.replace(self, params=params)

    # -- serialisation ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: :meth:`content`, genealogy and ``genome_id``."""
        out = self.content()
        out["generation"] = self.generation
        out["parents"] = list(self.parents)
        out["genome_id"] = self.genome_id
        return out

    @classmethod
    def from_dict(
        cls,
        d: Mapping[str, Any],
        families: Mapping[str, Strategy] | None = None,
        symbols: Sequence[str] | None = None,
        max_leverage: float | None = None,
    ) -> Genome:
        """Build and fully validate a genome from a dict (as :meth:`to_dict` writes).

        Args:
            d: ``family`` and ``symbols`` are required; ``params`` (missing keys
                take family defaults), risk genes, ``generation`` and ``parents``
                are optional. ``genome_id``, when present, must match the content.
            families: family name -> :class:`Strategy`; ``None`` = the registry.
            symbols: the market's symbols; when given, the genome's must be among them.
            max_leverage: cohort leverage ceiling (multiple of agent equity);
                when given, ``leverage`` must not exceed it.

        Raises:
            GenomeError: not a mapping, an unknown or missing key, or any check of
                :class:`Genome` and :meth:`validated` fails.
        """
        if not isinstance(d, Mapping):
            raise GenomeError(f"genome {d!r} is not a JSON object (mapping)")
        unknown = [k for k in d if k not in _DICT_KEYS]
        if unknown:
            raise GenomeError(
                f"genome has unknown key(s) {unknown}; allowed: {', '.join(_DICT_KEYS)}"
            )
        for key in ("family", "symbols"):
            if key not in d:
                raise GenomeError(f"genome is missing required key {key!r}")
        kwargs = {k: d[k] for k in _DICT_KEYS if k in d and k not in ("family", "params", "genome_id")}
        raw = cls(d["family"], d.get("params", {}), **kwargs)
        genome = raw.validated(families, symbols, max_leverage)
        # a genome saved before its defaults were filled in carries the id of its raw content
        if "genome_id" in d and d["genome_id"] not in (genome.genome_id, raw.genome_id):
            raise GenomeError(
                f"genome_id={d['genome_id']!r} does not match the content (computed "
                f"{genome.genome_id!r}); fix it or remove the key after editing a genome"
            )
        return genome

    def to_json(self, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text (keys sorted)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True, allow_nan=False)

    @classmethod
    def from_json(
        cls,
        text: str,
        families: Mapping[str, Strategy] | None = None,
        symbols: Sequence[str] | None = None,
        max_leverage: float | None = None,
    ) -> Genome:
        """Parse one genome from JSON text; arguments as :meth:`from_dict`.

        Raises:
            GenomeError: invalid JSON (with line and column) or an invalid genome.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GenomeError(f"genome JSON is invalid: {exc}") from None
        return cls.from_dict(data, families, symbols, max_leverage)


def load_genomes(
    path: str | os.PathLike,
    families: Mapping[str, Strategy] | None = None,
    symbols: Sequence[str] | None = None,
    max_leverage: float | None = None,
) -> list[Genome]:
    """Read genomes from a JSON file.

    Args:
        path: a file holding a JSON list of genome dicts, or an object with a
            ``"genomes"`` list (other keys of the object are ignored).
        families, symbols, max_leverage: as :meth:`Genome.from_dict`, applied to
            every genome.

    Returns:
        The genomes in file order.

    Raises:
        GenomeError: the file cannot be read, is not valid JSON, has the wrong
            shape, or a genome is invalid; the message names the file and (for a
            bad genome) its index.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise GenomeError(f"genome file {path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenomeError(f"genome file {path}: invalid JSON: {exc}") from None
    if isinstance(data, dict):
        if "genomes" not in data:
            raise GenomeError(
                f"genome file {path}: object has no 'genomes' key (keys: {sorted(data)}); "
                "allowed: a list of genomes or {\"genomes\": [...]}"
            )
        data = data["genomes"]
    if not isinstance(data, list):
        raise GenomeError(
            f"genome file {path}: top level is {type(data).__name__}; "
            "allowed: a list of genomes or {\"genomes\": [...]}"
        )
    fams = resolve_families(families)
    out = []
    for i, item in enumerate(data):
        try:
            out.append(Genome.from_dict(item, fams, symbols, max_leverage))
        except GenomeError as exc:
            raise GenomeError(f"genome file {path}: genome at index {i}: {exc}") from None
    return out


def save_genomes(path: str | os.PathLike, genomes: Iterable[Genome]) -> Path:
    """Write genomes to a JSON file as ``{"genomes": [genome dicts]}``.

    The file is written to a temporary sibling and moved into place, so a
    reader never sees half a file.

    Args:
        path: destination file; its folder must exist.
        genomes: the genomes, written in order.

    Returns:
        The path written.

    Raises:
        GenomeError: an item is not a :class:`Genome`, or the file cannot be written.
    """
    path = Path(path)
    items = list(genomes)
    for i, g in enumerate(items):
        if not isinstance(g, Genome):
            raise GenomeError(f"save_genomes: item at index {i} is {g!r}, not a Genome")
    text = json.dumps({"genomes": [g.to_dict() for g in items]}, indent=2, allow_nan=False) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise GenomeError(f"genome file {path}: cannot write: {exc}") from None
    return path
