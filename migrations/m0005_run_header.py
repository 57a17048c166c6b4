"""Migration 0005: the typed run header, stored as fields and backfilled.

Since this version every run has a typed ``header`` (see
:func:`manager.store.documents.runs.prepare_header`): ``day``,
``window_start``, ``window_end``, ``bankroll``, ``quote``, ``agents``,
``data_label``, ``market``, ``seeded_from``; listings, queries and pages read
it instead of the run's config. This migration gives the runs stored before a
header, from what their documents recorded -- the only place that reads the
old request blob (``config.request``, as the runner wrote it; a backtest's own
``config``):

- ``window_start`` / ``day``: the summary's ``window.start``, else the
  requested ``bars.start`` (a naive time is UTC), else a top-level
  ``window_start``; written ``YYYY-MM-DDTHH:MM:SSZ`` and its UTC day;
- ``window_end``: the summary's ``window.end``, else ``bars.end``, else a
  top-level ``window_end``;
- ``bankroll``: the summary's, else the request's, else a top-level ``bankroll``;
- ``quote``: the summary's, else ``bars.quote``, else a top-level ``quote``;
- ``agents``: how many agents the summary lists, else how many genomes the run
  has, else the request's ``agents``;
- ``data_label``: the run's; ``market``: ``config.market``; ``seeded_from``:
  ``config.seeded_from``, else the summary's, else ``"backtest"`` for a backtest;
- a run that already carries a valid ``header`` key in its document (written
  by the runner before the store knew it) keeps that header.

A field nothing recorded stays None. The listing fields ``date``, ``bankroll``,
``quote`` and ``agents`` are the header's from now on, so they are set too.

SQLite (``sim_runs_intraday``): the header is stored in columns -- ``date``
(the header's ``day``), ``bankroll``, ``quote``, ``agents`` (added by 0003,
now also for backtests), ``data_label`` (the run's), and the new columns
``window_start``, ``window_end``, ``market``, ``seeded_from``; filled for
every run when the columns are added, in the same transaction. The listing
filters keep using the indexes of 0003 (``date``, ``bankroll``).

MongoDB (``sim_runs_intraday``): a ``header`` sub-document on every run that
lacks one, and the cohort listing fields (``date``, ``day``, ``bankroll``,
``quote``, ``agents``) set from it; each update is conditioned on the run
still lacking a header and keeping the status read. The listing filters keep
using the indexes of 0003 (``day``, ``bankroll``).

Both are idempotent: applied again they change nothing.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from manager.store import InvalidDocument
from manager.store.documents import RUN_HEADER_FIELDS, prepare_header
from manager.store.sqlite.connection import dumps
from migrations import Migration, sqlite_columns

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

__all__ = ["MIGRATION", "legacy_header"]

_NEW_COLUMNS = (("window_start", "TEXT"), ("window_end", "TEXT"), ("market", "TEXT"),
                ("seeded_from", "TEXT"))
# Header field -> its column of sim_runs_intraday (data_label is the run's own column).
_COLUMNS = {"day": "date", "window_start": "window_start", "window_end": "window_end",
            "bankroll": "bankroll", "quote": "quote", "agents": "agents", "market": "market",
            "seeded_from": "seeded_from"}
assert tuple(_COLUMNS) == tuple(key for key in RUN_HEADER_FIELDS if key != "data_label")
_SET = ", ".join(f"{column} = ?" for column in _COLUMNS.values())
_BATCH = 500


# -- reading old documents -----------------------------------------------------------


def _get(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, Mapping):
            return None
        document = document.get(key)
    return document


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 date/time as an aware UTC datetime (a naive one is UTC, as the
    runner read ``--start``); None for anything unreadable."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


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


def _text(*candidates: Any) -> str | None:
    return next((c for c in candidates if isinstance(c, str) and c), None)


def _first(*candidates: Any) -> Any:
    return next((c for c in candidates if c is not None), None)


def legacy_header(
    kind: str, data_label: str, body: Mapping[str, Any], summary: Any = None
) -> dict[str, Any]:
    """The header of a run stored before 0005, from what its document recorded.

    Args:
        kind: the run's kind (a backtest's request is its ``config`` itself).
        data_label: the run's ``data_label``.
        body: the stored caller document (``config``, ``genomes``, caller keys).
        summary: the summary of its completion, or None.

    Returns:
        A dict with the keys of
        :data:`~manager.store.documents.runs.RUN_HEADER_FIELDS`, None where the
        document recorded nothing usable (rules in the module docstring).
        Never raises.
    """
    stored = body.get("header") if isinstance(body, Mapping) else None
    if isinstance(stored, Mapping):
        try:
            return prepare_header(stored, data_label)
        except InvalidDocument:
            pass  # derive it like any other old run
    config = _get(body, "config")
    request = _get(config, "request")
    if request is None and kind == "backtest":
        request = config
    summary = summary if isinstance(summary, Mapping) else None
    start = _first(_moment(_get(summary, "window", "start")),
                   _moment(_get(request, "bars", "start")), _moment(_get(body, "window_start")))
    end = _first(_moment(_get(summary, "window", "end")),
                 _moment(_get(request, "bars", "end")), _moment(_get(body, "window_end")))
    agents = _get(summary, "agents")
    genomes = _get(body, "genomes")
    return {
        "day": None if start is None else start.date().isoformat(),
        "window_start": _iso(start),
        "window_end": _iso(end),
        "bankroll": _first(_number(_get(summary, "bankroll")), _number(_get(request, "bankroll")),
                           _number(_get(body, "bankroll"))),
        "quote": _text(_get(summary, "quote"), _get(request, "bars", "quote"), _get(body, "quote")),
        "agents": _first(len(agents) if isinstance(agents, list) else None,
                         len(genomes) if isinstance(genomes, list) and genomes else None,
                         _count(_get(request, "agents"))),
        "data_label": data_label,
        "market": _text(_get(config, "market")),
        "seeded_from": _text(_get(config, "seeded_from"), _get(summary, "seeded_from"),
                             "backtest" if kind == "backtest" else None),
    }


# -- SQLite ---------------------------------------------------------------------------


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Add the header columns where missing; when any was added, fill the header
    of every run (and drop a ``header`` key from its stored document). Runs
    inside the caller's write transaction."""
    present = sqlite_columns(conn, "sim_runs_intraday")
    missing = [(name, sql) for name, sql in _NEW_COLUMNS if name not in present]
    for name, sql in missing:
        conn.execute(f"ALTER TABLE sim_runs_intraday ADD COLUMN {name} {sql}")
    if not missing:
        return
    ids = [row[0] for row in conn.execute("SELECT run_id FROM sim_runs_intraday")]
    for start in range(0, len(ids), _BATCH):
        chunk = ids[start:start + _BATCH]
        rows = conn.execute(
            "SELECT r.run_id, r.kind, r.data_label, r.doc, s.summary FROM sim_runs_intraday AS r "
            "LEFT JOIN cohort_summaries AS s ON s.run_id = r.run_id "
            f"WHERE r.run_id IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
        updates = []
        for run_id, kind, data_label, doc, summary in rows:
            try:
                body, summary_doc = json.loads(doc), (None if summary is None else json.loads(summary))
            except ValueError:  # a damaged document: its header stays unknown
                body, summary_doc = {}, None
            header = legacy_header(kind, data_label, body, summary_doc)
            if isinstance(body, dict) and "header" in body:
                del body["header"]
                doc = dumps(body)
            updates.append((*(header[key] for key in _COLUMNS), doc, run_id))
        conn.executemany(
            f"UPDATE sim_runs_intraday SET {_SET}, doc = ? WHERE run_id = ?", updates)


# -- MongoDB --------------------------------------------------------------------------


async def apply_mongo(db: "AsyncDatabase", batch: int = 500) -> None:
    """Set the header (and a cohort's listing fields from it) of every run without one."""
    from pymongo import UpdateOne  # the MongoDB driver is an optional dependency

    from manager.store.mongo import RUNS, SUMMARIES, listing_set
    from manager.store.mongo.client import chunks

    runs = db[RUNS]
    ids = [row["_id"] async for row in runs.find({"header": {"$exists": False}}, {"_id": 1})]
    for chunk in chunks(ids, batch):
        rows = await runs.find(
            {"_id": {"$in": chunk}},
            {"kind": 1, "status": 1, "created_at": 1, "attempt": 1, "data_label": 1, "doc": 1},
        ).to_list(None)
        completed = {r["_id"]: r.get("attempt") for r in rows if r["status"] == "completed"}
        summaries: dict[str, Any] = {}
        if completed:
            async for doc in db[SUMMARIES].find({"_id": {"$in": list(completed)}}):
                if doc.get("attempt") == completed[doc["_id"]]:
                    summaries[doc["_id"]] = doc.get("summary")
        ops = []
        for r in rows:
            body = r.get("doc") or {}
            summary = summaries.get(r["_id"])
            header = legacy_header(r["kind"], r["data_label"], body, summary)
            update: dict[str, Any] = {"$set": {
                "header": header, **listing_set(r["kind"], r["created_at"], header, summary)}}
            if "header" in body:
                update["$unset"] = {"doc.header": ""}
            ops.append(UpdateOne(
                {"_id": r["_id"], "status": r["status"], "header": {"$exists": False}}, update))
        if ops:
            await runs.bulk_write(ops, ordered=False)


MIGRATION = Migration(
    version=5,
    name="run_header",
    description="typed run header (day, window, bankroll, quote, agents, data label, market, "
                "seeding source) as fields, backfilled from stored runs",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
