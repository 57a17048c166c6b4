"""Plain values of store documents: JSON-able copies, typed field checks, ids,
timestamps, page arguments and equity-curve bytes.

The port speaks in *documents*: dicts whose values are JSON-able (``str``,
``int``, ``float``, ``bool``, ``None``, lists and dicts with ``str`` keys).
Numpy scalars are accepted and stored as the matching Python value; anything
else (``Decimal``, ``datetime``, sets, arrays, NaN/infinite floats, ints outside
int64) is refused with :class:`~manager.store.errors.InvalidDocument` naming
where it was found. The only non-document values are equity curves, which are
``numpy.ndarray`` and round-trip exactly (dtype, shape, bytes):
:func:`encode_array` / :func:`decode_array`.

Every adapter validates its input with these helpers, so all of them accept
and refuse exactly the same input.
"""

from __future__ import annotations

import io
import math
import re
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

import numpy as np

from manager.store.errors import InvalidDocument

__all__ = [
    "copy_extra_fields",
    "require_fields",
    "timestamp_or_now",
    "MAX_LIST_LIMIT",
    "check_day",
    "check_id",
    "check_limit",
    "check_mode",
    "check_offset",
    "check_run_id",
    "created_micros",
    "decode_array",
    "encode_array",
    "lease_deadline",
    "new_run_id",
    "normalise_timestamp",
    "require_int",
    "require_list",
    "require_mapping",
    "require_number",
    "require_str",
    "to_document",
    "utc_now",
]

MAX_LIST_LIMIT = 1000
"""Largest page size accepted by the listing methods (``list_runs``,
``list_cohort_summaries``, ``list_audit``, ``list_knowledge``)."""

_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_JSON_TYPES = "str, int, float (finite), bool, None, list, dict with str keys, numpy scalars"


def utc_now() -> str:
    """The current time as ISO 8601 UTC with microseconds (``...+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def lease_deadline(lease_s: float) -> str:
    """``lease_s`` seconds from now, ISO 8601 UTC in the canonical form (a run's ``lease_until``)."""
    if not isinstance(lease_s, (int, float)) or isinstance(lease_s, bool) or not lease_s > 0:
        raise InvalidDocument(f"lease_s must be a number of seconds > 0, got {lease_s!r}")
    return (datetime.now(timezone.utc) + timedelta(seconds=float(lease_s))).isoformat(timespec="microseconds")


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


def check_day(value: Any, where: str, what: str = "the UTC day") -> str:
    """Validate a calendar day written ``"YYYY-MM-DD"`` and return it as a plain str.

    Args:
        value: the day.
        where: its name in error messages (e.g. ``"date"``, ``"run header.day"``).
        what: what the day is, for the error message.

    Raises:
        InvalidDocument: not a str of that form, or not a day of the calendar
            (``"2025-02-30"``); the message names ``where``.
    """
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        raise InvalidDocument(
            f"{where}={value!r} is not a date; allowed: a str 'YYYY-MM-DD' "
            f"({what}), e.g. '2025-01-31'"
        )
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise InvalidDocument(
            f"{where}={value!r} is not a day of the calendar; allowed: 'YYYY-MM-DD', "
            "e.g. '2025-01-31'"
        ) from None
    return str.__str__(value)


def created_micros(created_at: str) -> int:
    """Microseconds since 1970-01-01 UTC of a canonical ``created_at``.

    Orders exactly like the canonical strings (:func:`normalise_timestamp`);
    adapters may sort and filter on it where integers are cheaper than strings.
    """
    moment = datetime.fromisoformat(created_at)
    return (moment - _EPOCH) // _MICROSECOND


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


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


def timestamp_or_now(at: Any, where: str) -> str:
    """``at`` in the canonical form (:func:`normalise_timestamp`), or now when None.

    Raises:
        InvalidDocument: a bad timestamp (named ``where``).
    """
    return utc_now() if at is None else normalise_timestamp(at, where)


def require_fields(doc: Mapping[str, Any], fields: Iterable[str], where: str) -> None:
    """Every one of ``fields`` is a key of ``doc``.

    Raises:
        InvalidDocument: the first missing one, named ``<where>.<field>``.
    """
    for field in fields:
        if field not in doc:
            raise InvalidDocument(f"{where}.{field} is missing")


def copy_extra_fields(out: dict[str, Any], doc: Mapping[str, Any], where: str,
                      skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Copy into ``out`` the keys of ``doc`` it does not hold yet (nor in ``skip``), each
    checked by :func:`to_document`; returns ``out``.

    Raises:
        InvalidDocument: a key that is not a str (named ``<where>``), a value that is not JSON-able.
    """
    for key, value in doc.items():
        if key in out or key in skip:
            continue
        if not isinstance(key, str):
            raise InvalidDocument(f"{where}: key {key!r} is not a str")
        out[key] = to_document(value, f"{where}.{key}")
    return out


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


