"""The storage port: the few persistence operations cohortlab needs.

Every adapter (SQLite now, MongoDB later) implements :class:`Store` and passes the
same contract test suite (``tests/test_store_contract.py``). The port speaks in
*documents*: dicts whose values are JSON-able (``str``, ``int``, ``float``,
``bool``, ``None``, lists and dicts with ``str`` keys). Numpy scalars are accepted
and stored as the matching Python value; anything else (``Decimal``, ``datetime``,
sets, arrays, NaN/infinite floats, ints outside int64) is refused with
:class:`InvalidDocument` naming where it was found. The only non-document values
are equity curves, which are ``numpy.ndarray`` and round-trip exactly (dtype,
shape, bytes).

Shared validation helpers live in this module so that every adapter accepts and
refuses exactly the same input.

Run document (what :meth:`Store.get_run` returns)::

    {
        "run_id": str,            # e.g. "20250101T093000-1a2b3c4d" (new_run_id())
        "kind": "cohort" | "backtest",
        "status": "running" | "completed" | "failed",
        "created_at": str,        # ISO 8601 UTC, "YYYY-mm-ddTHH:MM:SS.ffffff+00:00"
        "finished_at": str | None,
        "data_label": str,        # which market data the run used
        "config": dict,
        "genomes": list[dict],
        ...                       # any further caller keys, stored as given
        "reason": str | None,     # why it failed (status "failed")
        "timings": dict | None,   # as given to complete_run / fail_run
        "summary": dict | None,   # as given to complete_run (status "completed")
    }

Ledger transaction (one journal entry; the ledger is the record of account)::

    {
        "txn_id": str,            # unique within the run; the idempotency key
        "seq": int,               # journal order; unique within the run
        "bar": int,               # bar index the transaction belongs to
        "time": str,              # ISO 8601 timestamp, kept as given
        "kind": str,              # e.g. "deposit", "fill", "fee", "liquidation"
        "memo": str,              # free text; "" when absent
        "postings": [             # at least one; amounts sum to exactly zero
            {
                "account": str,   # e.g. "parent:cash", "agent:a07:position:BTC/USDT"
                "amount": str,    # Decimal as a string ("-12.5", "1E-8"); never a float
                "qty": str | None,    # Decimal string (units of symbol) or None
                "symbol": str | None,
            },
        ],
        ...                       # further top-level keys are kept as given
    }

Amounts and quantities are stored and returned as the exact strings given.

The learning loop keeps three more kinds of document; ``cycle_id`` and study
names follow the run id rules (:func:`check_id`).

Population (what :meth:`Store.get_population` / :meth:`Store.latest_population`
return; one evolved population per learning cycle, never overwritten)::

    {
        "cycle_id": str,          # the learning cycle that bred it; unique
        "saved_at": str,          # set by the store, ISO 8601 UTC (canonical)
        "genomes": list[dict],    # at least one genome, in the order given
        "meta": dict,             # as given; meta["mode"] (str), when present,
                                  # is what latest_population(mode=...) matches,
                                  # and meta["market"] (str: the market key of
                                  # manager.seeding, e.g. "binance-5m|5m|BTC")
                                  # what latest_population(market=...) matches
    }

Knowledge record (one per learning cycle: what was tried, what won, in- and
out-of-sample figures; :meth:`Store.get_knowledge`)::

    {
        "cycle_id": str,          # unique
        "mode": str,              # e.g. "daily", "intraday"
        "created_at": str,        # ISO 8601 UTC (canonical); default: when saved
        ...                       # any further JSON-able caller keys, as given
    }

Search trial (one evaluated point of a Bayesian search ``study``;
:meth:`Store.list_trials`)::

    {
        "index": int,             # set by the store: 0, 1, 2, ... within the study
        "params": dict,           # the point evaluated, name -> value
        "value": float,           # the objective at that point (lower is better)
        ...                       # any further JSON-able caller keys, as given
        "saved_at": str,          # set by the store, ISO 8601 UTC (canonical)
    }

Cohort summary row (one item of :meth:`Store.list_cohort_summaries`; every
``kind == "cohort"`` run, whatever its status; ``None`` where not known yet)::

    {
        "run_id": str,
        "created_at": str,        # ISO 8601 UTC (canonical)
        "finished_at": str | None,
        "status": "running" | "completed" | "failed",
        "reason": str | None,     # why it failed
        "date": str | None,       # "YYYY-MM-DD": UTC date of the traded window's start
                                  # (summary["window"]["start"]; before completion the
                                  # start recorded at creation, config["request"]["bars"]
                                  # ["start"] or the run's "window_start")
        "bankroll": float | None, # quote currency (summary["bankroll"]; before
                                  # completion config["request"]["bankroll"])
        "quote": str | None,      # summary["quote"] (before: config request bars quote)
        "agents": int | None,     # len(summary["agents"]); before: len(genomes)
        "data_label": str,
        "roi": float | None,      # summary["parent"][...] of a completed run:
        "final_equity": float | None,
        "max_drawdown": float | None,
        "peak_utilisation": float | None,
        "breaches": int | None,
        "failed_agents": int | None,
    }

Study listing entry (:meth:`Store.list_studies`)::

    {
        "study": str,
        "trials": int,            # how many trials are stored
        "best_value": float | None,   # the smallest trial value (None: no trials)
        "updated_at": str,        # last trial saved or study meta written
        "meta": dict | None,      # as kept by save_study_meta (None: never saved)
    }
"""

from __future__ import annotations

import io
import math
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import TracebackType
from typing import Any

import numpy as np

__all__ = [
    "AUDIT_FIELDS",
    "InvalidDocument",
    "MAX_LIST_LIMIT",
    "MISSING",
    "NotFound",
    "RUN_KINDS",
    "RUN_STATUSES",
    "RunNotFound",
    "RunStateError",
    "Store",
    "StoreError",
    "StudyMismatch",
    "check_id",
    "COHORT_LISTING_FIELDS",
    "COHORT_SUMMARY_KEYS",
    "check_cohort_listing",
    "check_limit",
    "check_mode",
    "check_offset",
    "cohort_listing_fields",
    "created_micros",
    "check_run_id",
    "check_study_meta",
    "decode_array",
    "encode_array",
    "new_run_id",
    "normalise_timestamp",
    "prepare_agent",
    "prepare_audit_event",
    "prepare_hall_of_fame",
    "prepare_knowledge",
    "prepare_population",
    "prepare_run",
    "prepare_study_meta",
    "prepare_trade",
    "prepare_trial",
    "prepare_txn",
    "require_int",
    "require_list",
    "require_mapping",
    "require_number",
    "require_str",
    "to_document",
    "utc_now",
]

RUN_KINDS: tuple[str, ...] = ("cohort", "backtest")
"""Allowed values of a run's ``kind``."""

RUN_STATUSES: tuple[str, ...] = ("running", "completed", "failed")
"""Allowed values of a run's ``status``."""

MAX_LIST_LIMIT = 1000
"""Largest page size accepted by :meth:`Store.list_runs`, :meth:`Store.list_audit`
and :meth:`Store.list_knowledge`."""

AUDIT_FIELDS: tuple[str, ...] = ("kind", "actor", "at", "details")
"""Keys every stored audit event has."""

COHORT_LISTING_FIELDS: tuple[str, ...] = (
    "date", "bankroll", "quote", "agents", "roi", "final_equity", "max_drawdown",
    "peak_utilisation", "breaches", "failed_agents",
)
"""Fields every adapter stores denormalised on a cohort run (filled by
``create_run``/``complete_run``/``fail_run``, see :func:`cohort_listing_fields`)
so that :meth:`Store.list_cohort_summaries` reads no summary document."""

COHORT_SUMMARY_KEYS: tuple[str, ...] = (
    "run_id", "created_at", "finished_at", "status", "reason", "date", "bankroll", "quote",
    "agents", "data_label", "roi", "final_equity", "max_drawdown", "peak_utilisation",
    "breaches", "failed_agents",
)
"""Keys of a :meth:`Store.list_cohort_summaries` row, in order."""

# Keys of a run document that only the store sets.
_STORE_SET_RUN_KEYS = ("finished_at", "reason", "timings", "summary")
# Keys of a search trial that only the store sets.
_STORE_SET_TRIAL_KEYS = ("index", "saved_at")

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_POSTING_KEYS = ("account", "amount", "qty", "symbol")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_JSON_TYPES = "str, int, float (finite), bool, None, list, dict with str keys, numpy scalars"


# -- errors ---------------------------------------------------------------------


class StoreError(Exception):
    """Any failure of a store operation (bad URL, I/O, constraint, state)."""


class NotFound(StoreError):
    """No document with the given id exists in the store (a run, a population,
    a knowledge record, a pagination cursor)."""


class RunNotFound(NotFound):
    """No run with the given ``run_id`` exists in the store."""


class InvalidDocument(StoreError, ValueError):
    """Input to the store has the wrong shape or holds a value it cannot store.

    Also a :class:`ValueError`, so callers validating input may catch either.
    """


class RunStateError(StoreError):
    """The operation is not allowed in the run's current ``status``.

    For example completing a run that already completed or failed, or failing a
    completed run (which would destroy its stored results).
    """


class StudyMismatch(StoreError):
    """A search study is being resumed with settings other than the ones it was
    started with (see :meth:`Store.save_study_meta`).

    Attributes:
        study: the study name.
        differences: one ``(path, stored, given)`` triple per differing value;
            ``path`` is a dotted key path (``"space.fast"``), a missing value is
            :data:`MISSING`.
    """

    def __init__(self, study: str, differences: list[tuple[str, Any, Any]]) -> None:
        self.study = study
        self.differences = differences
        shown = "; ".join(
            f"{path}: stored {_show(stored)}, given {_show(given)}"
            for path, stored, given in differences[:10]
        )
        more = f"; and {len(differences) - 10} more" if len(differences) > 10 else ""
        super().__init__(
            f"study {study!r} was started with other settings ({shown}{more}); resume it "
            "with the same search space and settings, or start a new study under another name"
        )


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
"""Stands for an absent key in :attr:`StudyMismatch.differences`."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- helpers shared by every adapter -------------------------------------------


def utc_now() -> str:
    """The current time as ISO 8601 UTC with microseconds (``...+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def normalise_timestamp(value: Any, where: str) -> str:
    """Parse an ISO 8601 timestamp and return it in the store's canonical form.

    Args:
        value: ISO 8601 string with a UTC offset (``Z`` or ``+hh:mm``), or a
            timezone-aware :class:`datetime`.
        where: name of the field, used in error messages.

    Returns:
        ``YYYY-mm-ddTHH:MM:SS.ffffff+00:00`` in UTC. Strings in this one form sort
        in time order, which the run listing relies on.

    Raises:
        InvalidDocument: not a string/datetime, unparseable, or naive (no offset).
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidDocument(
                f"{where}={value!r} is not an ISO 8601 timestamp; "
                "allowed: e.g. '2025-01-31T14:30:00Z' or '2025-01-31T14:30:00+00:00'"
            ) from None
    else:
        raise InvalidDocument(
            f"{where} must be an ISO 8601 string, got {type(value).__name__} {value!r}"
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidDocument(
            f"{where}={value!r} has no UTC offset; allowed: an aware timestamp "
            "such as '2025-01-31T14:30:00Z'"
        )
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def new_run_id(now: datetime | None = None) -> str:
    """Make a new, time-ordered run id: ``YYYYmmddTHHMMSS-<8 hex>`` (UTC).

    Args:
        now: moment to encode (timezone-aware); ``None`` = the current time.
            Ids made in different seconds sort by time; within one second the
            random suffix decides.

    Raises:
        InvalidDocument: ``now`` is naive.
    """
    moment = datetime.now(timezone.utc) if now is None else now
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidDocument(f"now={now!r} has no UTC offset; pass an aware datetime")
    stamp = moment.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{secrets.token_hex(4)}"


def check_id(value: Any, what: str) -> str:
    """Validate an id (run id, cycle id, study name) and return it as a plain str.

    Allowed: 1 to 128 characters from ``A-Z a-z 0-9 . _ : -``, not starting with
    a punctuation character (so ids are safe in URLs and file names).

    Args:
        value: the id.
        what: its name in error messages (e.g. ``"run_id"``, ``"study"``).

    Raises:
        InvalidDocument: anything else.
    """
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidDocument(
            f"{what} {value!r} is not valid; allowed: a str of 1-128 characters "
            "from A-Z a-z 0-9 . _ : - starting with a letter or digit"
        )
    return str.__str__(value)


def check_run_id(run_id: Any) -> str:
    """Validate a run id and return it (the rules of :func:`check_id`).

    Raises:
        InvalidDocument: not a valid id.
    """
    return check_id(run_id, "run_id")


def check_mode(mode: Any, where: str = "mode") -> str | None:
    """Validate an optional learning mode filter: ``None`` or a non-empty str.

    Raises:
        InvalidDocument: anything else.
    """
    return None if mode is None else require_str(mode, where)


def check_limit(limit: Any, where: str = "limit") -> int:
    """Validate a page size: an ``int`` from 1 to :data:`MAX_LIST_LIMIT`.

    Raises:
        InvalidDocument: anything else.
    """
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)):
        raise InvalidDocument(
            f"{where} must be an int from 1 to {MAX_LIST_LIMIT}, "
            f"got {type(limit).__name__} {limit!r}"
        )
    if not 1 <= int(limit) <= MAX_LIST_LIMIT:
        raise InvalidDocument(f"{where}={limit!r} is out of range; allowed: 1 to {MAX_LIST_LIMIT}")
    return int(limit)


def check_offset(offset: Any, where: str = "offset") -> int:
    """Validate a page offset: an ``int`` >= 0.

    Raises:
        InvalidDocument: anything else.
    """
    if isinstance(offset, (bool, np.bool_)) or not isinstance(offset, (int, np.integer)):
        raise InvalidDocument(
            f"{where} must be an int >= 0, got {type(offset).__name__} {offset!r}"
        )
    if int(offset) < 0:
        raise InvalidDocument(f"{where}={offset!r} is out of range; allowed: an int >= 0")
    return int(offset)


_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_cohort_listing(
    date: Any, bankroll: Any, created_after: Any, limit: Any, offset: Any
) -> tuple[str | None, float | None, str | None, int, int]:
    """Validate the arguments of :meth:`Store.list_cohort_summaries`.

    Returns:
        ``(date, bankroll, created_after, limit, offset)``: ``date`` as
        ``"YYYY-MM-DD"``, ``bankroll`` as a float, ``created_after`` in the
        canonical UTC form (:func:`normalise_timestamp`).

    Raises:
        InvalidDocument: ``date`` not a ``"YYYY-MM-DD"`` str naming a real day,
            ``bankroll`` not a finite number >= 0, ``created_after`` not an aware
            ISO 8601 timestamp, ``limit`` not an int from 1 to
            :data:`MAX_LIST_LIMIT`, ``offset`` not an int >= 0. The message
            names the value.
    """
    if date is not None:
        if not isinstance(date, str) or not _DATE_RE.fullmatch(date):
            raise InvalidDocument(
                f"date={date!r} is not a date; allowed: a str 'YYYY-MM-DD' "
                "(the UTC day the traded window starts), e.g. '2025-01-31'"
            )
        try:
            datetime.strptime(date, "%Y-%m-%d")
        except ValueError:
            raise InvalidDocument(
                f"date={date!r} is not a day of the calendar; allowed: 'YYYY-MM-DD', "
                "e.g. '2025-01-31'"
            ) from None
        date = str.__str__(date)
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


def created_micros(created_at: str) -> int:
    """Microseconds since 1970-01-01 UTC of a canonical ``created_at``.

    Orders exactly like the canonical strings (:func:`normalise_timestamp`);
    adapters may sort and filter on it where integers are cheaper than strings.
    """
    moment = datetime.fromisoformat(created_at)
    return (moment - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _utc_day(value: Any) -> str | None:
    """``"YYYY-MM-DD"`` (UTC) of an ISO 8601 date/time; a naive one is taken as
    UTC (as the runner reads ``--start``). None for anything unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).date().isoformat()


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


def _get(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, Mapping):
            return None
        document = document.get(key)
    return document


def cohort_listing_fields(
    kind: str, run: Mapping[str, Any], summary: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The denormalised listing fields of a run (:data:`COHORT_LISTING_FIELDS`).

    Every adapter stores these on the run record when the run is created
    (``summary=None``), completed (its summary) and failed (``summary=None``),
    and migration ``0003_cohort_listing`` backfills them from stored runs.
    Values that are missing or of the wrong type come out as None; nothing
    here raises.

    Args:
        kind: the run's kind; for anything but ``"cohort"`` every field is None.
        run: the run document (``config``, ``genomes`` and caller keys).
        summary: the summary given to :meth:`Store.complete_run`, or None.

    Returns:
        ``date`` (``"YYYY-MM-DD"``, UTC day of ``summary.window.start``, else of
        the start recorded at creation: ``config.request.bars.start`` or the
        run's ``window_start``), ``bankroll`` (float: ``summary.bankroll``, else
        ``config.request.bankroll``, else the run's ``bankroll``), ``quote``
        (``summary.quote``, else ``config.request.bars.quote``, else the run's
        ``quote``), ``agents`` (``len(summary.agents)``, else ``len(genomes)``,
        else ``config.request.agents``), and from ``summary.parent``: ``roi``,
        ``final_equity``, ``max_drawdown``, ``peak_utilisation`` (floats),
        ``breaches``, ``failed_agents`` (ints; ``failed_agents`` falls back to
        ``len(summary.failed_agents)`` when that is a list).
    """
    out: dict[str, Any] = dict.fromkeys(COHORT_LISTING_FIELDS)
    if kind != "cohort":
        return out
    request = _get(run, "config", "request")
    summary = summary if isinstance(summary, Mapping) else None

    def first(*candidates: Any) -> Any:
        return next((c for c in candidates if c is not None), None)

    out["date"] = first(
        _utc_day(_get(summary, "window", "start")),
        _utc_day(_get(request, "bars", "start")),
        _utc_day(_get(run, "window_start")),
    )
    out["bankroll"] = first(
        _number(_get(summary, "bankroll")),
        _number(_get(request, "bankroll")),
        _number(_get(run, "bankroll")),
    )
    quotes = (_get(summary, "quote"), _get(request, "bars", "quote"), _get(run, "quote"))
    out["quote"] = next((q for q in quotes if isinstance(q, str) and q), None)
    agents = _get(summary, "agents")
    genomes = _get(run, "genomes")
    out["agents"] = first(
        len(agents) if isinstance(agents, list) else None,
        len(genomes) if isinstance(genomes, list) and genomes else None,
        _count(_get(request, "agents")),
    )
    parent = _get(summary, "parent")
    for key in ("roi", "final_equity", "max_drawdown", "peak_utilisation"):
        out[key] = _number(_get(parent, key))
    out["breaches"] = _count(_get(parent, "breaches"))
    failed = _get(summary, "failed_agents")
    out["failed_agents"] = first(
        _count(_get(parent, "failed_agents")),
        len(failed) if isinstance(failed, list) else None,
    )
    return out


def to_document(value: Any, where: str = "value") -> Any:
    """Return a plain JSON-able copy of ``value`` or refuse it.

    Dicts, lists and tuples are copied recursively (tuples become lists); numpy
    scalars become ``int``/``float``/``bool``; ``str``/``int``/``float``
    subclasses (enums) become the plain type.

    Args:
        value: the value to convert.
        where: path of the value (e.g. ``"trades[3]"``), used in error messages.

    Raises:
        InvalidDocument: a value of another type, a non-``str`` dict key, a NaN or
            infinite float, or an int outside the signed 64-bit range; the message
            names the path of the offending value.
    """
    if value is None or value is True or value is False:
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        number = int(value)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise InvalidDocument(
                f"{where}: int {number} is outside the signed 64-bit range; "
                "store it as a str if it must be exact"
            )
        return number
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidDocument(
                f"{where}: float {number!r} is not JSON-able; use None for a missing value"
            )
        return number
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidDocument(
                    f"{where}: dict key {key!r} ({type(key).__name__}) is not a str; "
                    "document keys must be str"
                )
            out[str.__str__(key)] = to_document(item, f"{where}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [to_document(item, f"{where}[{i}]") for i, item in enumerate(value)]
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    raise InvalidDocument(
        f"{where}: {type(value).__name__} value {text} is not JSON-able; allowed: {_JSON_TYPES}"
    )


def require_mapping(value: Any, where: str) -> Mapping[str, Any]:
    """Return ``value`` if it is a dict (Mapping); else raise InvalidDocument naming ``where``."""
    if not isinstance(value, Mapping):
        raise InvalidDocument(f"{where} must be a dict, got {type(value).__name__} {value!r:.80}")
    return value


def require_list(value: Any, where: str) -> list[Any] | tuple[Any, ...]:
    """Return ``value`` if it is a list or tuple; else raise InvalidDocument naming ``where``."""
    if not isinstance(value, (list, tuple)):
        raise InvalidDocument(f"{where} must be a list, got {type(value).__name__} {value!r:.80}")
    return value


def require_str(value: Any, where: str, *, empty: bool = False) -> str:
    """Return ``value`` as a plain str; raise InvalidDocument if it is not a str
    (or is empty, unless ``empty=True``)."""
    if not isinstance(value, str) or (not empty and not value):
        what = "a str" if empty else "a non-empty str"
        raise InvalidDocument(f"{where} must be {what}, got {type(value).__name__} {value!r:.80}")
    return str.__str__(value)


def require_int(value: Any, where: str) -> int:
    """Return ``value`` as an int (bools refused, int64 range); else raise InvalidDocument."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidDocument(f"{where} must be an int, got {type(value).__name__} {value!r:.80}")
    return to_document(value, where)


def require_number(value: Any, where: str) -> float:
    """Return ``value`` as a finite float; ints and numpy numbers are accepted.

    Raises:
        InvalidDocument: a bool, a non-number, NaN or an infinity.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise InvalidDocument(
            f"{where} must be a finite number (int or float), "
            f"got {type(value).__name__} {value!r:.80}"
        )
    number = float(value)
    if not math.isfinite(number):
        raise InvalidDocument(f"{where}={number!r} is not a finite number")
    return number


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


def prepare_run(run: Any) -> dict[str, Any]:
    """Validate a run document for :meth:`Store.create_run` and fill defaults.

    Args:
        run: dict with ``kind`` (one of :data:`RUN_KINDS`), ``config`` (dict),
            ``genomes`` (list of dicts) and ``data_label`` (str); optional
            ``run_id`` (made with :func:`new_run_id` when absent or None),
            ``created_at`` (ISO 8601 with offset; default now) and ``status``
            (must be ``"running"`` if given). Other keys are kept as given.

    Returns:
        A new document with ``run_id``, ``kind``, ``status="running"``,
        ``created_at`` (canonical UTC), ``data_label``, ``config``, ``genomes``
        first, then the other keys. ``finished_at``/``reason``/``timings``/
        ``summary`` are not included (the store sets them).

    Raises:
        InvalidDocument: a missing or wrong-typed field, a store-set key, or a
            value that is not JSON-able.
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
    created_at = utc_now() if created is None else normalise_timestamp(created, "run created_at")
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
        "data_label": require_str(run["data_label"], "run data_label", empty=True),
        "config": config,
        "genomes": genome_docs,
    }
    for key, value in run.items():
        if key not in doc:
            if not isinstance(key, str):
                raise InvalidDocument(f"run: key {key!r} is not a str; document keys must be str")
            doc[key] = to_document(value, f"run.{key}")
    return doc


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
    """Validate one ledger transaction (shape in the module docstring).

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


def prepare_hall_of_fame(entries: Any, source: Any) -> tuple[list[dict[str, Any]], str]:
    """Validate a hall-of-fame version: a list of genome dicts and its source.

    Raises:
        InvalidDocument: ``entries`` not a list of dicts of JSON-able values, or
            ``source`` not a non-empty str.
    """
    items = require_list(entries, "hall of fame entries")
    docs = [
        to_document(require_mapping(e, f"entries[{i}]"), f"entries[{i}]")
        for i, e in enumerate(items)
    ]
    return docs, require_str(source, "hall of fame source")


def prepare_audit_event(event: Any) -> dict[str, Any]:
    """Validate an audit event and fill defaults.

    Args:
        event: dict with ``kind`` and ``actor`` (non-empty str), optional ``at``
            (ISO 8601 with offset; default now) and ``details`` (dict; default
            ``{}``); other keys are kept.

    Returns:
        A new dict: ``kind``, ``actor``, ``at`` (canonical UTC), ``details``, then
        other keys.

    Raises:
        InvalidDocument: a missing or wrong-typed field or a value that is not
            JSON-able.
    """
    require_mapping(event, "audit event")
    at = event.get("at")
    out: dict[str, Any] = {
        "kind": require_str(event.get("kind"), "audit event kind"),
        "actor": require_str(event.get("actor"), "audit event actor"),
        "at": utc_now() if at is None else normalise_timestamp(at, "audit event at"),
        "details": to_document(
            require_mapping(event.get("details", {}), "audit event details"),
            "audit event.details",
        ),
    }
    for key, value in event.items():
        if key not in out:
            if not isinstance(key, str):
                raise InvalidDocument(f"audit event: key {key!r} is not a str")
            out[key] = to_document(value, f"audit event.{key}")
    return out


def prepare_population(
    cycle_id: Any, genomes: Any, meta: Any
) -> tuple[str, list[dict[str, Any]], dict[str, Any], str | None, str | None]:
    """Validate a population for :meth:`Store.save_population`.

    Args:
        cycle_id: id of the learning cycle (rules of :func:`check_id`).
        genomes: non-empty list of genome dicts of JSON-able values.
        meta: dict of JSON-able values; ``meta["mode"]`` and ``meta["market"]``,
            if present and not None, must be non-empty strs.

    Returns:
        ``(cycle_id, genomes, meta, mode, market)``: copies of the documents,
        and the mode and market key (``meta["mode"]`` / ``meta["market"]`` or
        None) the population is listed under.

    Raises:
        InvalidDocument: any of the above not met; the message names the value.
    """
    cycle_id = check_id(cycle_id, "population cycle_id")
    items = require_list(genomes, "population genomes")
    if not items:
        raise InvalidDocument(
            f"population {cycle_id!r} has no genomes; a population needs at least one"
        )
    docs = [
        to_document(require_mapping(g, f"population genomes[{i}]"), f"population.genomes[{i}]")
        for i, g in enumerate(items)
    ]
    meta_doc = to_document(require_mapping(meta, "population meta"), "population.meta")
    mode = check_mode(meta_doc.get("mode"), "population meta mode")
    market = check_mode(meta_doc.get("market"), "population meta market")
    return cycle_id, docs, meta_doc, mode, market


def prepare_knowledge(record: Any) -> dict[str, Any]:
    """Validate a knowledge record for :meth:`Store.save_knowledge` and fill defaults.

    Args:
        record: dict with ``cycle_id`` (rules of :func:`check_id`), ``mode``
            (non-empty str) and optional ``created_at`` (ISO 8601 with offset;
            default now). Other keys are kept as given (JSON-able values).

    Returns:
        A new dict: ``cycle_id``, ``mode``, ``created_at`` (canonical UTC), then
        the other keys.

    Raises:
        InvalidDocument: a missing or wrong-typed field, or a value that is not
            JSON-able.
    """
    require_mapping(record, "knowledge record")
    missing = [key for key in ("cycle_id", "mode") if key not in record]
    if missing:
        raise InvalidDocument(f"knowledge record is missing {missing}; required: cycle_id, mode")
    created = record.get("created_at")
    out: dict[str, Any] = {
        "cycle_id": check_id(record["cycle_id"], "knowledge cycle_id"),
        "mode": require_str(record["mode"], "knowledge mode"),
        "created_at": (
            utc_now() if created is None else normalise_timestamp(created, "knowledge created_at")
        ),
    }
    for key, value in record.items():
        if key not in out:
            if not isinstance(key, str):
                raise InvalidDocument(
                    f"knowledge record: key {key!r} is not a str; document keys must be str"
                )
            out[key] = to_document(value, f"knowledge.{key}")
    return out


def prepare_trial(study: Any, trial: Any) -> tuple[str, dict[str, Any]]:
    """Validate a search trial for :meth:`Store.save_trial`.

    Args:
        study: study name (rules of :func:`check_id`).
        trial: dict with ``params`` (dict) and ``value`` (finite int/float,
            stored as float); other keys are kept as given. ``index`` and
            ``saved_at`` are set by the store and refused here.

    Returns:
        ``(study, doc)``: doc has ``params``, ``value`` first, then other keys.

    Raises:
        InvalidDocument: a missing, wrong-typed or store-set field, or a value
            that is not JSON-able.
    """
    study = check_id(study, "study")
    require_mapping(trial, "trial")
    reserved = [key for key in _STORE_SET_TRIAL_KEYS if key in trial]
    if reserved:
        raise InvalidDocument(
            f"trial has store-set keys {reserved}; the store numbers trials and "
            "stamps them, leave these out"
        )
    if "params" not in trial:
        raise InvalidDocument("trial is missing 'params'; required: params (dict), value (number)")
    out: dict[str, Any] = {
        "params": to_document(require_mapping(trial["params"], "trial params"), "trial.params"),
        "value": require_number(trial.get("value"), "trial value"),
    }
    for key, value in trial.items():
        if key not in out:
            if not isinstance(key, str):
                raise InvalidDocument(f"trial: key {key!r} is not a str; document keys must be str")
            out[key] = to_document(value, f"trial.{key}")
    return study, out


def prepare_study_meta(study: Any, meta: Any) -> tuple[str, dict[str, Any]]:
    """Validate a study's settings for :meth:`Store.save_study_meta`.

    Returns:
        ``(study, meta)`` with a JSON-able copy of ``meta``.

    Raises:
        InvalidDocument: bad study name, ``meta`` not a dict or not JSON-able.
    """
    study = check_id(study, "study")
    return study, to_document(require_mapping(meta, "study meta"), "study meta")


def _differences(stored: Any, given: Any, path: str) -> list[tuple[str, Any, Any]]:
    if isinstance(stored, dict) and isinstance(given, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in [*stored, *(k for k in given if k not in stored)]:
            sub = f"{path}.{key}" if path else key
            out.extend(_differences(stored.get(key, MISSING), given.get(key, MISSING), sub))
        return out
    if isinstance(stored, list) and isinstance(given, list) and len(stored) == len(given):
        if all(not _differences(a, b, path) for a, b in zip(stored, given)):
            return []
        return [(path, stored, given)]
    if isinstance(stored, bool) or isinstance(given, bool):
        same = type(stored) is type(given) and stored == given
    elif isinstance(stored, (dict, list)) or isinstance(given, (dict, list)):
        same = False
    else:  # 5 and 5.0 are the same setting
        same = stored == given
    return [] if same else [(path or "meta", stored, given)]


def check_study_meta(study: str, stored: dict[str, Any], given: dict[str, Any]) -> None:
    """Compare the settings a study was started with to the ones given now.

    Values are compared as documents: dicts by key, lists item by item, ``5``
    equals ``5.0``, ``True`` does not equal ``1``.

    Raises:
        StudyMismatch: they differ; the message names every differing key path
            with the stored and the given value.
    """
    differences = _differences(stored, given, "")
    if differences:
        raise StudyMismatch(study, differences)


def encode_array(array: Any, where: str) -> bytes:
    """Serialise an equity curve to ``.npy`` bytes (exact dtype, shape and data).

    Raises:
        InvalidDocument: not a ``numpy.ndarray``, a masked array (the mask would
            be lost), or a dtype that needs pickling (object dtype).
    """
    if not isinstance(array, np.ndarray) or isinstance(array, np.ma.MaskedArray):
        raise InvalidDocument(
            f"{where} must be a numpy.ndarray (not masked), got {type(array).__name__}"
        )
    buffer = io.BytesIO()
    try:
        np.save(buffer, array, allow_pickle=False)
    except ValueError as exc:
        raise InvalidDocument(
            f"{where}: arrays of dtype {array.dtype} cannot be stored without pickling; "
            "allowed: numeric, bool, fixed-width str/bytes and datetime dtypes"
        ) from exc
    return buffer.getvalue()


def decode_array(data: bytes) -> np.ndarray:
    """Inverse of :func:`encode_array`."""
    return np.load(io.BytesIO(data), allow_pickle=False)


# -- the port ------------------------------------------------------------------


class Store(ABC):
    """Persistence port for runs, their results, the ledger journal, the hall of
    fame, audit events, and the learning loop's populations, knowledge base and
    search trials.

    All methods are synchronous. Documents go in and come out as plain dicts of
    JSON-able values (see the module docstring for the run document and ledger
    transaction shapes); the store copies its input, so callers may mutate their
    dicts afterwards. Use as a context manager to close it on exit.

    Run life cycle: ``create_run`` -> ``"running"`` -> either ``complete_run``
    (``"completed"``) or ``fail_run`` (``"failed"``). ``append_ledger`` may add
    journal entries while the run is running.

    Errors: every method raises :class:`StoreError` subclasses only:
    :class:`NotFound` (its subclass :class:`RunNotFound` for runs),
    :class:`InvalidDocument` (bad input), :class:`RunStateError` (wrong status),
    :class:`StudyMismatch` (a search resumed with other settings), or plain
    :class:`StoreError` (duplicates, conflicts, I/O, closed store).
    """

    # -- runs --------------------------------------------------------------

    @abstractmethod
    def create_run(self, run: dict[str, Any]) -> str:
        """Store a new run with status ``"running"``.

        Args:
            run: run document; see :func:`prepare_run` for required keys and
                defaults (``run_id`` is generated when absent).

        Returns:
            The run's ``run_id``.

        Raises:
            InvalidDocument: bad document.
            StoreError: a run with this ``run_id`` already exists.
        """

    @abstractmethod
    def complete_run(
        self,
        run_id: str,
        *,
        summary: dict[str, Any],
        agents: list[dict[str, Any]],
        trades: list[dict[str, Any]],
        ledger: list[dict[str, Any]],
        curves: dict[str, np.ndarray],
        timings: dict[str, Any],
    ) -> None:
        """Store a run's results and mark it ``"completed"``, atomically.

        Either everything is stored, ``status`` becomes ``"completed"`` and
        ``finished_at`` is set, or (on any error) nothing is and the run stays
        exactly as it was.

        Args:
            run_id: a ``"running"`` run.
            summary: cohort summary (metrics), JSON-able dict.
            agents: per-agent results in rank order (best first); each has a
                unique ``agent_id`` (str).
            trades: trades in the order to return them; each has ``agent_id``.
            ledger: journal transactions (shape in the module docstring); each
                ``txn_id`` at most once in the list. Transactions already stored
                by :meth:`append_ledger` with identical content are skipped.
            curves: name -> array (e.g. ``"parent"``, ``"agent:a07"``), stored
                exactly.
            timings: phase -> seconds (or any JSON-able dict).

        Raises:
            RunNotFound: no such run.
            RunStateError: the run is not ``"running"``.
            InvalidDocument: any bad item (its position is named); nothing stored.
            StoreError: a ``txn_id`` already stored with different content, or a
                ``seq`` used twice; nothing stored.
        """

    @abstractmethod
    def fail_run(self, run_id: str, reason: str, timings: dict[str, Any] | None = None) -> None:
        """Mark a run ``"failed"`` and delete any results stored for it.

        Afterwards the run has no summary, agents, trades, ledger transactions or
        curves. Failing an already failed run replaces the reason and timings.

        Args:
            run_id: a ``"running"`` or ``"failed"`` run.
            reason: non-empty description of what went wrong.
            timings: optional JSON-able dict (e.g. seconds spent before failing).

        Raises:
            RunNotFound: no such run.
            RunStateError: the run completed (its results are kept).
            InvalidDocument: empty ``reason`` or non-JSON-able ``timings``.
        """

    @abstractmethod
    def get_run(self, run_id: str) -> dict[str, Any]:
        """Return the run document (``summary`` is set once completed).

        Raises:
            RunNotFound: no such run.
        """

    @abstractmethod
    def list_runs(
        self,
        limit: int = 20,
        before: str | None = None,
        status: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """List run documents newest first (``created_at``, then ``run_id``, descending).

        Keyset pagination: pass the ``run_id`` of the last run of a page as
        ``before`` to get the next page. Pages neither skip nor repeat runs even
        when new runs are created between calls.

        Args:
            limit: page size, 1 to :data:`MAX_LIST_LIMIT`.
            before: cursor run id; only runs strictly after it in the listing
                order are returned. ``None`` = from the newest.
            status: only runs with this status (one of :data:`RUN_STATUSES`).
            kind: only runs of this kind (one of :data:`RUN_KINDS`).

        Raises:
            InvalidDocument: bad ``limit``, ``status`` or ``kind``.
            RunNotFound: ``before`` names no run.
        """

    @abstractmethod
    def list_cohort_summaries(
        self,
        *,
        date: str | None = None,
        bankroll: float | None = None,
        created_after: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        """One page of cohort runs as flat summary rows, with the total count.

        For dashboards and the API: every ``kind == "cohort"`` run (running,
        completed and failed), newest first (``created_at``, then ``run_id``,
        descending), read from fields denormalised onto the run record
        (:data:`COHORT_LISTING_FIELDS`, kept by ``create_run``/``complete_run``/
        ``fail_run``) under indexes that serve each filter in listing order, so
        a page costs about the same at any store size.

        Offset pagination: page ``k`` (from 0) of size ``n`` is
        ``limit=n, offset=k*n``. Unlike the keyset :meth:`list_runs`, pages may
        shift when runs are created between calls (a run can then appear on two
        pages or on none), and a deep offset walks the index up to it; use
        :meth:`list_runs` to visit every run exactly once.

        Args:
            date: ``"YYYY-MM-DD"``: only runs whose traded window starts on this
                UTC day (``summary["window"]["start"]``; for a running or failed
                run the start recorded at creation, ``config["request"]["bars"]
                ["start"]`` or the run's ``window_start``; a run with neither
                has no date and never matches).
            bankroll: only runs with exactly this bankroll (quote currency).
            created_after: ISO 8601 timestamp with offset: only runs created
                strictly after it.
            limit: page size, 1 to :data:`MAX_LIST_LIMIT`.
            offset: rows to skip, >= 0.

        Returns:
            ``{"items": [row, ...], "total": int}``: ``total`` counts every run
            matching the filters, whatever ``limit``/``offset``; each row has the
            keys :data:`COHORT_SUMMARY_KEYS` (shape in the module docstring),
            ``None`` where not known yet (metrics before completion, ``quote``
            before completion unless requested, ``date`` without a recorded start).

        Raises:
            InvalidDocument: a bad argument; the message names the value
                (see :func:`check_cohort_listing`).
        """

    @abstractmethod
    def get_agents(self, run_id: str) -> list[dict[str, Any]]:
        """Return the run's agent results in rank order as given ([] until completed).

        Raises:
            RunNotFound: no such run.
        """

    @abstractmethod
    def get_trades(self, run_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
        """Return the run's trades in the order given, optionally of one agent.

        Raises:
            RunNotFound: no such run.
            InvalidDocument: ``agent_id`` is not a str.
        """

    @abstractmethod
    def get_ledger(self, run_id: str) -> list[dict[str, Any]]:
        """Return the run's ledger transactions ordered by ``seq``.

        Raises:
            RunNotFound: no such run.
        """

    @abstractmethod
    def get_curves(self, run_id: str) -> dict[str, np.ndarray]:
        """Return the run's curves (name -> array, exact dtype and shape).

        Raises:
            RunNotFound: no such run.
        """

    @abstractmethod
    def append_ledger(self, run_id: str, txns: list[dict[str, Any]]) -> int:
        """Append journal transactions idempotently (all or none per call).

        A transaction whose ``txn_id`` is already stored for the run with the same
        content is skipped, so a retried task can re-send its batch safely.

        Args:
            run_id: a ``"running"`` run (for a ``"completed"`` run only batches
                that are already fully stored are accepted; they return 0).
            txns: transactions (shape in the module docstring); each ``txn_id``
                at most once in the list.

        Returns:
            How many transactions were new.

        Raises:
            RunNotFound: no such run.
            RunStateError: the run failed, or completed and the batch has new
                transactions.
            InvalidDocument: a bad transaction; nothing stored.
            StoreError: a ``txn_id`` stored with different content, or a ``seq``
                already used by another transaction; nothing stored.
        """

    # -- hall of fame --------------------------------------------------------

    @abstractmethod
    def save_hall_of_fame(self, entries: list[dict[str, Any]], source: str,
                          market: str | None = None) -> None:
        """Save a new version of the hall of fame (earlier versions are kept).

        Args:
            entries: genome dicts, best first.
            source: what produced it (e.g. a run id or ``"learning:2025-01-31"``).
            market: key of the market it was bred on (``manager.seeding.MarketIdentity.key``,
                e.g. ``"binance-5m|5m|BTC"``); None = unknown (never matched by a market filter).

        Raises:
            InvalidDocument: bad entries, empty source, or a market that is not a non-empty str.
        """

    @abstractmethod
    def latest_hall_of_fame(self, market: str | None = None) -> list[dict[str, Any]] | None:
        """Return the entries of the most recently saved version, or None if none.

        Args:
            market: only versions saved with this market key; None = any version.

        Raises:
            InvalidDocument: ``market`` is neither None nor a non-empty str.
        """

    # -- audit -----------------------------------------------------------------

    @abstractmethod
    def record_audit(self, event: dict[str, Any]) -> None:
        """Append an audit event (see :func:`prepare_audit_event` for its shape).

        Raises:
            InvalidDocument: bad event.
        """

    @abstractmethod
    def list_audit(self, limit: int = 50) -> list[dict[str, Any]]:
        """Return up to ``limit`` audit events, newest ``at`` first.

        Raises:
            InvalidDocument: ``limit`` not an int from 1 to :data:`MAX_LIST_LIMIT`.
        """

    # -- learning: populations -------------------------------------------------

    @abstractmethod
    def save_population(
        self, cycle_id: str, genomes: list[dict[str, Any]], meta: dict[str, Any]
    ) -> None:
        """Store the population a learning cycle bred (never overwritten).

        Args:
            cycle_id: id of the learning cycle (rules of :func:`check_id`).
            genomes: the genomes (dicts), at least one, in the order to return them.
            meta: JSON-able dict about the population (e.g. ``mode``,
                ``generation``, ``seed``). ``meta["mode"]`` (a str, when present)
                is what :meth:`latest_population` filters on.

        Raises:
            InvalidDocument: bad input (see :func:`prepare_population`).
            StoreError: a population with this ``cycle_id`` already exists.
        """

    @abstractmethod
    def latest_population(self, mode: str | None = None,
                          market: str | None = None) -> dict[str, Any] | None:
        """Return the most recently saved population, or None if there is none.

        "Most recent" is save order (the last :meth:`save_population` call that
        succeeded), not the order of cycle ids.

        Args:
            mode: only populations whose ``meta["mode"]`` equals this str;
                ``None`` = any population.
            market: only populations whose ``meta["market"]`` equals this
                market key; ``None`` = any market.

        Returns:
            ``{"cycle_id", "saved_at", "genomes", "meta"}`` (see the module
            docstring), or None.

        Raises:
            InvalidDocument: ``mode`` or ``market`` is neither None nor a non-empty str.
        """

    @abstractmethod
    def get_population(self, cycle_id: str) -> dict[str, Any]:
        """Return the population saved for ``cycle_id`` (shape as :meth:`latest_population`).

        Raises:
            InvalidDocument: ``cycle_id`` is not a valid id.
            NotFound: no population was saved for this cycle.
        """

    # -- learning: knowledge base -------------------------------------------------

    @abstractmethod
    def save_knowledge(self, record: dict[str, Any]) -> str:
        """Store one learning cycle's knowledge record (never overwritten).

        Args:
            record: dict with ``cycle_id``, ``mode``, optional ``created_at``
                (default now) and any JSON-able fields (what was tried, what
                won, in- and out-of-sample figures); see :func:`prepare_knowledge`.

        Returns:
            The record's ``cycle_id``.

        Raises:
            InvalidDocument: bad record.
            StoreError: a record with this ``cycle_id`` already exists.
        """

    @abstractmethod
    def list_knowledge(
        self, limit: int = 50, before: str | None = None, mode: str | None = None
    ) -> list[dict[str, Any]]:
        """List knowledge records newest first (``created_at``, then ``cycle_id``, descending).

        Keyset pagination as in :meth:`list_runs`: pass the ``cycle_id`` of the
        last record of a page as ``before`` to get the next page; pages neither
        skip nor repeat records when new ones arrive between calls.

        Args:
            limit: page size, 1 to :data:`MAX_LIST_LIMIT`.
            before: cursor cycle id; only records strictly after it in the
                listing order. It need not match ``mode``. ``None`` = from the newest.
            mode: only records with this ``mode``; ``None`` = all.

        Raises:
            InvalidDocument: bad ``limit``, ``before`` or ``mode``.
            NotFound: ``before`` names no record.
        """

    @abstractmethod
    def get_knowledge(self, cycle_id: str) -> dict[str, Any]:
        """Return the knowledge record of ``cycle_id`` as stored.

        Raises:
            InvalidDocument: ``cycle_id`` is not a valid id.
            NotFound: no record for this cycle.
        """

    # -- learning: search trials ----------------------------------------------------

    @abstractmethod
    def save_trial(self, study: str, trial: dict[str, Any]) -> int:
        """Append one evaluated point to a search study, atomically.

        Trials of a study are numbered 0, 1, 2, ... in the order they are saved,
        without gaps, also when several processes or threads append to the same
        study (each call gets its own index) and across reopening the store, so
        a search can resume where it stopped by replaying :meth:`list_trials`.

        Args:
            study: study name (rules of :func:`check_id`); created by its first trial.
            trial: dict with ``params`` (dict) and ``value`` (finite number; lower
                is better), other JSON-able keys kept; see :func:`prepare_trial`.

        Returns:
            The trial's 0-based index within the study.

        Raises:
            InvalidDocument: bad study name or trial; nothing stored.
        """

    @abstractmethod
    def list_trials(self, study: str) -> list[dict[str, Any]]:
        """Return the study's trials in index order, each with ``index`` and
        ``saved_at`` added (shape in the module docstring); ``[]`` for a study
        with no trials.

        Raises:
            InvalidDocument: bad study name.
        """

    @abstractmethod
    def list_studies(self) -> list[dict[str, Any]]:
        """Return one entry per study that has trials or meta, most recently
        updated first (then by name): ``study``, ``trials`` (count),
        ``best_value`` (smallest value, None without trials), ``updated_at``
        and ``meta`` (None if never saved); see the module docstring."""

    @abstractmethod
    def save_study_meta(
        self, study: str, meta: dict[str, Any], *, replace: bool = False
    ) -> None:
        """Keep the search space and settings of a study, to check a resume.

        The first call stores ``meta``. Later calls with equal meta (compared as
        in :func:`check_study_meta`) change nothing; with different meta they
        raise :class:`StudyMismatch`, unless ``replace=True``, which overwrites.

        Args:
            study: study name (rules of :func:`check_id`).
            meta: JSON-able dict, e.g. ``{"space": {...}, "objective": "...",
                "n_initial_points": 10, "seed": 7}``.
            replace: overwrite differing meta instead of raising.

        Raises:
            InvalidDocument: bad study name or meta.
            StudyMismatch: meta differs from the stored one (and not ``replace``);
                nothing changed.
        """

    @abstractmethod
    def get_study_meta(self, study: str) -> dict[str, Any] | None:
        """Return the meta kept for ``study``, or None if none was saved.

        Raises:
            InvalidDocument: bad study name.
        """

    # -- lifetime ----------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release the store's resources; idempotent. Later calls raise StoreError."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
