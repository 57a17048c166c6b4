"""Documents of the runs aggregate: the run document and its typed header, agent
results, trades, ledger transactions, and the cohort listing's fields.

Every adapter prepares what it stores with these functions and computes the
listing fields with :func:`cohort_listing_fields`, so all adapters accept,
refuse and list exactly the same runs. Shapes: see
:mod:`manager.store.ports.runs`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import numpy as np

from manager.store.errors import InvalidDocument
from manager.store.documents.values import (
    check_day,
    check_limit,
    check_offset,
    check_run_id,
    new_run_id,
    normalise_timestamp,
    require_int,
    require_list,
    require_mapping,
    require_number,
    require_str,
    timestamp_or_now,
    to_document,
)

__all__ = [
    "BASELINE_LISTING_FIELDS",
    "COHORT_LISTING_FIELDS",
    "COHORT_SUMMARY_KEYS",
    "LISTING_METRICS",
    "RUN_HEADER_FIELDS",
    "RUN_KINDS",
    "RUN_STATUSES",
    "check_cohort_listing",
    "cohort_listing_fields",
    "empty_header",
    "baseline_listing_fields",
    "listing_metrics",
    "prepare_agent",
    "prepare_header",
    "prepare_run",
    "prepare_trade",
    "prepare_txn",
]

RUN_KINDS: tuple[str, ...] = ("cohort", "backtest")
"""Allowed values of a run's ``kind``."""

RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed")
"""Allowed values of a run's ``status``."""

RUN_HEADER_FIELDS: tuple[str, ...] = (
    "day", "window_start", "window_end", "bankroll", "quote", "agents", "data_label", "market",
    "seeded_from",
)
"""Keys of a run's typed header (:func:`prepare_header`), in order."""

LISTING_METRICS: tuple[str, ...] = (
    "roi", "final_equity", "max_drawdown", "peak_utilisation", "breaches", "failed_agents",
)
"""The listing fields read from a completed cohort's summary (``summary["parent"]``)."""

COHORT_LISTING_FIELDS: tuple[str, ...] = ("date", "bankroll", "quote", "agents", *LISTING_METRICS)
"""Fields every adapter keeps on a cohort run (see :func:`cohort_listing_fields`)
so that ``list_cohort_summaries`` reads no summary document: ``date``,
``bankroll``, ``quote`` and ``agents`` are the run header's ``day``,
``bankroll``, ``quote`` and ``agents``; the others come from the summary."""

BASELINE_LISTING_FIELDS: tuple[str, ...] = ("baseline_percentile",)
"""Listing fields of migration 0007, kept by every adapter beside :data:`COHORT_LISTING_FIELDS`:
``baseline_percentile`` = ``summary["baselines"]["random"]["percentile"]`` (0..100, the
cohort's ROI percentile among its random-genome cohorts, see :mod:`manager.baselines`;
None for a run without baselines)."""

COHORT_SUMMARY_KEYS: tuple[str, ...] = (
    "run_id", "created_at", "finished_at", "status", "reason", "date", "bankroll", "quote",
    "agents", "data_label", "roi", "final_equity", "max_drawdown", "peak_utilisation",
    "breaches", "failed_agents", *BASELINE_LISTING_FIELDS,
)
"""Keys of a ``list_cohort_summaries`` row, in order."""

# Keys of a run document that only the store sets.
_STORE_SET_RUN_KEYS = ("finished_at", "reason", "timings", "summary")
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_POSTING_KEYS = ("account", "amount", "qty", "symbol")


# -- the run document and its header -------------------------------------------------


def _header_moment(value: Any, where: str) -> datetime:
    require_str(value, where)
    return datetime.fromisoformat(normalise_timestamp(value, where))


def prepare_header(header: Any, data_label: str) -> dict[str, Any]:
    """Validate a run's typed header (what listings, queries and pages read).

    Args:
        header: dict with exactly the keys of :data:`RUN_HEADER_FIELDS`:
            ``day`` (``"YYYY-MM-DD"``, the UTC day of ``window_start``),
            ``window_start`` / ``window_end`` (ISO 8601 strs with a UTC offset,
            e.g. ``"2025-03-01T00:00:00Z"``: the traded window ``[start, end)``,
            end after start; kept exactly as given), ``bankroll`` (finite
            number >= 0, quote currency; stored as float), ``quote`` (non-empty
            str), ``agents`` (int >= 0, the cohort size), ``data_label`` (str,
            equal to the run's ``data_label``), ``market`` (non-empty str, the
            seeding market key of :mod:`manager.seeding`) and ``seeded_from``
            (non-empty str: where the genomes came from).
        data_label: the run's ``data_label``.

    Returns:
        A new dict with the keys in the order of :data:`RUN_HEADER_FIELDS`.

    Raises:
        InvalidDocument: not a dict, a missing or unknown key, a value of the
            wrong type or out of range, or fields that disagree (``day`` vs
            ``window_start``, ``window_end`` not after ``window_start``,
            ``data_label`` vs the run's); the message names the field
            (``run header.bankroll``).
    """
    require_mapping(header, "run header")
    unknown = [key for key in header if key not in RUN_HEADER_FIELDS]
    if unknown:
        raise InvalidDocument(
            f"run header has unknown keys {unknown}; allowed: {', '.join(RUN_HEADER_FIELDS)}"
        )
    missing = [key for key in RUN_HEADER_FIELDS if key not in header]
    if missing:
        raise InvalidDocument(
            f"run header is missing {missing}; required: {', '.join(RUN_HEADER_FIELDS)}"
        )
    start = _header_moment(header["window_start"], "run header.window_start")
    end = _header_moment(header["window_end"], "run header.window_end")
    if end <= start:
        raise InvalidDocument(
            f"run header.window_end={header['window_end']!r} is not after "
            f"window_start={header['window_start']!r}; the window is [start, end)"
        )
    day = check_day(header["day"], "run header.day", "the UTC day of window_start")
    start_day = start.astimezone(timezone.utc).date().isoformat()
    if day != start_day:
        raise InvalidDocument(
            f"run header.day={day!r} is not the UTC day of "
            f"window_start={header['window_start']!r} ({start_day})"
        )
    bankroll = require_number(header["bankroll"], "run header.bankroll")
    if bankroll < 0:
        raise InvalidDocument(
            f"run header.bankroll={bankroll!r} is negative; allowed: a number >= 0 (quote currency)"
        )
    agents = require_int(header["agents"], "run header.agents")
    if agents < 0:
        raise InvalidDocument(f"run header.agents={agents!r} is negative; allowed: an int >= 0")
    label = require_str(header["data_label"], "run header.data_label", empty=True)
    if label != data_label:
        raise InvalidDocument(
            f"run header.data_label={label!r} differs from the run's data_label={data_label!r}"
        )
    return {
        "day": day,
        "window_start": str.__str__(header["window_start"]),
        "window_end": str.__str__(header["window_end"]),
        "bankroll": bankroll,
        "quote": require_str(header["quote"], "run header.quote"),
        "agents": agents,
        "data_label": label,
        "market": require_str(header["market"], "run header.market"),
        "seeded_from": require_str(header["seeded_from"], "run header.seeded_from"),
    }


def empty_header(data_label: str) -> dict[str, Any]:
    """The header of a run created without one: every field None but ``data_label``."""
    header: dict[str, Any] = dict.fromkeys(RUN_HEADER_FIELDS)
    header["data_label"] = data_label
    return header


def prepare_run(run: Any) -> dict[str, Any]:
    """Validate a run document for ``create_run`` and fill defaults.

    Args:
        run: dict with ``kind`` (one of :data:`RUN_KINDS`), ``config`` (dict),
            ``genomes`` (list of dicts) and ``data_label`` (str); optional
            ``header`` (the typed header, see :func:`prepare_header`; absent or
            None = unknown), ``run_id`` (made with
            :func:`~manager.store.documents.values.new_run_id` when absent or
            None), ``created_at`` (ISO 8601 with offset; default now) and
            ``status`` (must be ``"running"`` if given). Other keys are kept as given.

    Returns:
        A new document with ``run_id``, ``kind``, ``status="running"``,
        ``created_at`` (canonical UTC), ``data_label``, ``header`` (always a
        dict with the keys of :data:`RUN_HEADER_FIELDS`; :func:`empty_header`
        when none was given), ``config``, ``genomes`` first, then the other
        keys. ``finished_at``/``reason``/``timings``/``summary`` are not
        included (the store sets them).

    Raises:
        InvalidDocument: a missing or wrong-typed field (the header's are named
            ``run header.<field>``), a store-set key, or a value that is not
            JSON-able.
    """
    require_mapping(run, "run")
    reserved = [key for key in _STORE_SET_RUN_KEYS if key in run]
    if reserved:
        raise InvalidDocument(
            f"run has store-set keys {reserved}; these are written by complete_run/fail_run, "
            "leave them out of create_run"
        )
    missing = [key for key in ("kind", "config", "genomes", "data_label") if key not in run]
    if missing:
        raise InvalidDocument(
            f"run is missing {missing}; required: kind, config, genomes, data_label"
        )
    run_id = run.get("run_id")
    run_id = new_run_id() if run_id is None else check_run_id(run_id)
    kind = run["kind"]
    if kind not in RUN_KINDS:
        raise InvalidDocument(f"run kind {kind!r} is not allowed; allowed: {', '.join(RUN_KINDS)}")
    status = run.get("status", "running")
    if status != "running":
        raise InvalidDocument(
            f"run status {status!r} is not allowed at creation; a new run is 'running'"
        )
    created = run.get("created_at")
    created_at = timestamp_or_now(created, "run created_at")
    data_label = require_str(run["data_label"], "run data_label", empty=True)
    header = run.get("header")
    config = to_document(require_mapping(run["config"], "run config"), "run.config")
    genomes = require_list(run["genomes"], "run genomes")
    genome_docs = [
        to_document(require_mapping(g, f"run genomes[{i}]"), f"run.genomes[{i}]")
        for i, g in enumerate(genomes)
    ]
    doc: dict[str, Any] = {
        "run_id": run_id,
        "kind": str(kind),
        "status": "running",
        "created_at": created_at,
        "data_label": data_label,
        "header": empty_header(data_label) if header is None else prepare_header(header, data_label),
        "config": config,
        "genomes": genome_docs,
    }
    owner, lease_until = run.get("owner"), run.get("lease_until")
    if owner is not None or lease_until is not None:  # the run's lease (see RunStore.claim_run)
        doc["owner"] = require_str(owner, "run owner")
        doc["lease_until"] = normalise_timestamp(lease_until, "run lease_until")
    for key, value in run.items():
        if key not in doc:
            if not isinstance(key, str):
                raise InvalidDocument(f"run: key {key!r} is not a str; document keys must be str")
            doc[key] = to_document(value, f"run.{key}")
    return doc


# -- results and the ledger ---------------------------------------------------------------


def _decimal_string(value: Any, where: str) -> tuple[str, Decimal]:
    if not isinstance(value, str):
        hint = " (floats are not exact)" if isinstance(value, (float, np.floating)) else ""
        raise InvalidDocument(
            f"{where} must be a decimal string such as '-12.50' or '1E-8'{hint}, "
            f"got {type(value).__name__} {value!r}"
        )
    if not _DECIMAL_RE.fullmatch(value):
        raise InvalidDocument(
            f"{where}={value!r} is not a finite decimal number; allowed: digits with an "
            "optional sign, point and exponent, e.g. '-12.50' or '1E-8'"
        )
    return str.__str__(value), Decimal(value)


def prepare_agent(agent: Any, where: str) -> dict[str, Any]:
    """Validate one agent result: a dict with a non-empty ``str`` ``agent_id``.

    Raises:
        InvalidDocument: not a dict, ``agent_id`` missing/not a str, or a value
            that is not JSON-able (message names ``where``).
    """
    require_mapping(agent, where)
    require_str(agent.get("agent_id"), f"{where} agent_id")
    return to_document(agent, where)


def prepare_trade(trade: Any, where: str) -> dict[str, Any]:
    """Validate one trade: a dict with a non-empty ``str`` ``agent_id``.

    Raises:
        InvalidDocument: not a dict, ``agent_id`` missing/not a str, or a value
            that is not JSON-able (message names ``where``).
    """
    require_mapping(trade, where)
    require_str(trade.get("agent_id"), f"{where} agent_id")
    return to_document(trade, where)


def prepare_txn(txn: Any, where: str = "txn") -> dict[str, Any]:
    """Validate one ledger transaction (shape in :mod:`manager.store.ports.runs`).

    Args:
        txn: the transaction dict.
        where: its position (e.g. ``"ledger[12]"``), used in error messages.

    Returns:
        A new dict: ``txn_id``, ``seq``, ``bar``, ``time``, ``kind``, ``memo``
        (``""`` when absent), ``postings`` (each with all four keys; ``qty`` and
        ``symbol`` default to None), then other keys as given.

    Raises:
        InvalidDocument: a missing/wrong-typed field, an amount or qty that is not
            a decimal string, an unknown posting key, no postings, or postings that
            do not sum to exactly zero.
    """
    require_mapping(txn, where)
    txn_id = require_str(txn.get("txn_id"), f"{where} txn_id")
    label = f"{where} (txn_id {txn_id!r})"
    out: dict[str, Any] = {
        "txn_id": txn_id,
        "seq": require_int(txn.get("seq"), f"{label} seq"),
        "bar": require_int(txn.get("bar"), f"{label} bar"),
        "time": require_str(txn.get("time"), f"{label} time"),
        "kind": require_str(txn.get("kind"), f"{label} kind"),
        "memo": require_str(txn.get("memo", ""), f"{label} memo", empty=True),
    }
    try:
        datetime.fromisoformat(out["time"])
    except ValueError:
        raise InvalidDocument(
            f"{label} time={out['time']!r} is not an ISO 8601 timestamp"
        ) from None
    postings = require_list(txn.get("postings"), f"{label} postings")
    if not postings:
        raise InvalidDocument(f"{label} has no postings; a transaction needs at least one")
    total = Decimal(0)
    clean = []
    for i, posting in enumerate(postings):
        at = f"{label} postings[{i}]"
        require_mapping(posting, at)
        unknown = [key for key in posting if key not in _POSTING_KEYS]
        if unknown:
            raise InvalidDocument(
                f"{at} has unknown keys {unknown}; allowed: {', '.join(_POSTING_KEYS)}"
            )
        amount, value = _decimal_string(posting.get("amount"), f"{at} amount")
        total += value
        qty = posting.get("qty")
        if qty is not None:
            qty = _decimal_string(qty, f"{at} qty")[0]
        symbol = posting.get("symbol")
        if symbol is not None:
            symbol = require_str(symbol, f"{at} symbol")
        clean.append(
            {
                "account": require_str(posting.get("account"), f"{at} account"),
                "amount": amount,
                "qty": qty,
                "symbol": symbol,
            }
        )
    if total != 0:
        raise InvalidDocument(
            f"{label} postings sum to {total}, not 0; every transaction must balance"
        )
    out["postings"] = clean
    for key, value in txn.items():
        if key not in out:
            if not isinstance(key, str):
                raise InvalidDocument(f"{label}: key {key!r} is not a str")
            out[key] = to_document(value, f"{where}.{key}")
    return out


# -- the cohort listing ---------------------------------------------------------------------


def check_cohort_listing(
    date: Any, bankroll: Any, created_after: Any, limit: Any, offset: Any
) -> tuple[str | None, float | None, str | None, int, int]:
    """Validate the arguments of ``list_cohort_summaries``.

    Returns:
        ``(date, bankroll, created_after, limit, offset)``: ``date`` as
        ``"YYYY-MM-DD"``, ``bankroll`` as a float, ``created_after`` in the
        canonical UTC form (:func:`~manager.store.documents.values.normalise_timestamp`).

    Raises:
        InvalidDocument: ``date`` not a ``"YYYY-MM-DD"`` str naming a real day,
            ``bankroll`` not a finite number >= 0, ``created_after`` not an aware
            ISO 8601 timestamp, ``limit`` not an int from 1 to
            :data:`~manager.store.documents.values.MAX_LIST_LIMIT`, ``offset``
            not an int >= 0. The message names the value.
    """
    if date is not None:
        date = check_day(date, "date", "the UTC day the traded window starts")
    if bankroll is not None:
        bankroll = require_number(bankroll, "bankroll")
        if bankroll < 0:
            raise InvalidDocument(
                f"bankroll={bankroll!r} is negative; allowed: a number >= 0 "
                "(quote currency), or None for any"
            )
    if created_after is not None:
        created_after = normalise_timestamp(created_after, "created_after")
    return date, bankroll, created_after, check_limit(limit), check_offset(offset)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def listing_metrics(kind: str, summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The listing fields of :data:`LISTING_METRICS` from a cohort's summary.

    Args:
        kind: the run's kind; for anything but ``"cohort"`` every field is None.
        summary: the summary given to ``complete_run`` (``None`` before completion).

    Returns:
        From ``summary["parent"]``: ``roi``, ``final_equity``, ``max_drawdown``,
        ``peak_utilisation`` (floats), ``breaches``, ``failed_agents`` (ints;
        ``failed_agents`` falls back to ``len(summary["failed_agents"])`` when
        that is a list). Missing or wrong-typed values are None; nothing raises.
    """
    out: dict[str, Any] = dict.fromkeys(LISTING_METRICS)
    if kind != "cohort" or not isinstance(summary, Mapping):
        return out
    parent = summary.get("parent")
    parent = parent if isinstance(parent, Mapping) else {}
    for key in ("roi", "final_equity", "max_drawdown", "peak_utilisation"):
        out[key] = _number(parent.get(key))
    out["breaches"] = _count(parent.get("breaches"))
    failed = summary.get("failed_agents")
    out["failed_agents"] = _count(parent.get("failed_agents"))
    if out["failed_agents"] is None and isinstance(failed, list):
        out["failed_agents"] = len(failed)
    return out


def baseline_listing_fields(kind: str, summary: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fields of :data:`BASELINE_LISTING_FIELDS` from a cohort's summary.

    Returns:
        ``{"baseline_percentile": float | None}`` from
        ``summary["baselines"]["random"]["percentile"]``; None for other kinds, before
        completion, for a run without baselines or a wrong-typed value; nothing raises.
    """
    out: dict[str, Any] = dict.fromkeys(BASELINE_LISTING_FIELDS)
    if kind != "cohort" or not isinstance(summary, Mapping):
        return out
    base = summary.get("baselines")
    rnd = base.get("random") if isinstance(base, Mapping) else None
    if isinstance(rnd, Mapping):
        out["baseline_percentile"] = _number(rnd.get("percentile"))
    return out


def cohort_listing_fields(
    kind: str, header: Mapping[str, Any] | None, summary: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The listing fields of a run (:data:`COHORT_LISTING_FIELDS`).

    Adapters keep these on the run record: the header part when the run is
    created, the metrics when it completes (and cleared when it fails).
    Nothing here parses the run's config: the header is the source.

    Args:
        kind: the run's kind; for anything but ``"cohort"`` every field is None.
        header: the run's typed header (:func:`prepare_header`, or a header
            backfilled by migration ``0005_run_header``), or None.
        summary: the summary given to ``complete_run``, or None.

    Returns:
        ``date`` = ``header["day"]``, ``bankroll``, ``quote``, ``agents`` from
        the header (None where it has none), :func:`listing_metrics` and
        :func:`baseline_listing_fields` (:data:`BASELINE_LISTING_FIELDS`, since 0007).
    """
    out: dict[str, Any] = dict.fromkeys(COHORT_LISTING_FIELDS + BASELINE_LISTING_FIELDS)
    if kind != "cohort":
        return out
    if isinstance(header, Mapping):
        out["date"] = header.get("day")
        for key in ("bankroll", "quote", "agents"):
            out[key] = header.get(key)
    out.update(listing_metrics(kind, summary))
    out.update(baseline_listing_fields(kind, summary))
    return out
