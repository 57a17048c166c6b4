"""Migration 0006: the training window of every learning artefact (point in time).

A run or learning cycle whose window starts at time t may only start from
populations, halls of fame, knowledge and search studies whose training data
ended at or before t, on the same market (:mod:`manager.seeding`). The stores
keep the training window (``train_start``, ``train_end``: ISO 8601 UTC in the
canonical form of :func:`~manager.store.documents.values.normalise_timestamp`,
so that strings sort in time order) beside the market key and filter on
``train_end <= trained_by``:

- ``populations``: ``train_start``, ``train_end``; backfilled from the
  population's meta -- ``train_start`` / ``train_end`` when present, else the
  ``train`` window text the learning jobs wrote (``"[2018-01-12T00:00:00Z,
  2018-01-15T00:00:00Z)"``);
- ``genomes`` (hall-of-fame versions): ``train_start``, ``train_end``;
  backfilled from the population of the same learning cycle (a version's
  ``source`` is its cycle id); other versions keep no window;
- ``knowledge``: ``market``, ``train_start``, ``train_end`` and ``data_end``
  (the end of all data the record's figures used: the out-of-sample window's
  end); backfilled from the record's ``train`` / ``validation`` windows and the
  market of the population of the same cycle; the stored record itself is left
  as it was;
- ``search_studies``: ``market`` and ``train_end`` from the study meta when it
  has them.

Whatever cannot be read stays NULL / null: unknown, never matched by a
``trained_by`` filter, so old artefacts no longer seed anything that asks for a
point in time. Indexes: ``populations (market, mode, train_end)``, ``genomes
(market, train_end)``, ``knowledge (market, data_end)``, ``search_studies
(market, train_end)``, on both adapters.

Both are idempotent: applied again they change nothing (SQLite backfills only
when it adds the columns; MongoDB only documents without a ``train_end`` field).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from manager.store import InvalidDocument
from manager.store.documents import normalise_timestamp, training_window
from migrations import Migration, ensure_collection, sqlite_columns

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.asynchronous.database import AsyncDatabase

__all__ = ["MIGRATION", "legacy_window"]

_COLUMNS = {
    "populations": ("train_start", "train_end"),
    "genomes": ("train_start", "train_end"),
    "knowledge": ("market", "train_start", "train_end", "data_end"),
    "search_studies": ("market", "train_end"),
}
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS populations_by_training ON populations (market, mode, train_end)",
    "CREATE INDEX IF NOT EXISTS genomes_by_training ON genomes (market, train_end)",
    "CREATE INDEX IF NOT EXISTS knowledge_by_training ON knowledge (market, data_end)",
    "CREATE INDEX IF NOT EXISTS search_studies_by_training ON search_studies (market, train_end)",
)


def _moment(value: Any) -> str | None:
    """A timestamp in canonical UTC form (``2018-01-12 00:00:00+00:00`` and
    ``...Z`` forms accepted); None for anything unreadable or naive."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return normalise_timestamp(value.strip().replace("Z", "+00:00"), "window")
    except InvalidDocument:
        return None


def legacy_window(value: Any) -> tuple[str | None, str | None]:
    """A training window as older documents wrote it, in canonical UTC form.

    Args:
        value: ``{"start": ..., "end": ...}`` (a knowledge record's ``train``),
            or the text of a ``learning.walkforward.Window``
            (``"[2018-01-12T00:00:00Z, 2018-01-15T00:00:00Z)"``, a population
            meta's ``train``).

    Returns:
        ``(start, end)``, or ``(None, None)`` when it cannot be read (or the
        start is after the end). Never raises.
    """
    if isinstance(value, Mapping):
        start, end = _moment(value.get("start")), _moment(value.get("end"))
    elif isinstance(value, str) and value.startswith("[") and value.endswith(")") and "," in value:
        left, _, right = value[1:-1].partition(",")
        start, end = _moment(left), _moment(right)
    else:
        return None, None
    if start is None or end is None or start > end:
        return None, None
    return start, end


def _population_window(meta: Any) -> tuple[str | None, str | None]:
    if not isinstance(meta, Mapping):
        return None, None
    try:
        start, end = training_window(meta.get("train_start"), meta.get("train_end"), "population")
    except InvalidDocument:
        start = end = None
    return (start, end) if start is not None else legacy_window(meta.get("train"))


def _knowledge_fields(doc: Any) -> tuple[str | None, str | None, str | None]:
    """``(train_start, train_end, data_end)`` of an old knowledge record."""
    if not isinstance(doc, Mapping):
        return None, None, None
    start, end = legacy_window(doc.get("train"))
    if start is None:
        return None, None, None
    _, validation_end = legacy_window(doc.get("validation"))
    data_end = validation_end if validation_end is not None and validation_end >= end else end
    return start, end, data_end


def _study_fields(meta: Any) -> tuple[str | None, str | None]:
    if not isinstance(meta, Mapping):
        return None, None
    market = meta.get("market")
    return (market if isinstance(market, str) and market else None), _moment(meta.get("train_end"))


# -- SQLite ---------------------------------------------------------------------------


def apply_sqlite(conn: sqlite3.Connection) -> None:
    """Add the window columns where missing; when any was added, backfill them
    (rules in the module docstring); then the indexes. Runs inside the caller's
    write transaction."""
    added = False
    for table, columns in _COLUMNS.items():
        present = sqlite_columns(conn, table)
        for column in columns:
            if column not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")
                added = True
    if added:
        _backfill_sqlite(conn)
    for statement in _INDEXES:
        conn.execute(statement)


def _backfill_sqlite(conn: sqlite3.Connection) -> None:
    windows: dict[str, tuple[str | None, str | None, str | None]] = {}
    for cycle_id, meta, market in conn.execute("SELECT cycle_id, meta, market FROM populations").fetchall():
        try:
            start, end = _population_window(json.loads(meta))
        except ValueError:
            start = end = None
        windows[cycle_id] = (start, end, market)
    conn.executemany("UPDATE populations SET train_start = ?, train_end = ? WHERE cycle_id = ?",
                     [(s, e, c) for c, (s, e, _) in windows.items() if s is not None])
    conn.executemany(
        "UPDATE genomes SET train_start = ?, train_end = ? WHERE source = ? AND train_end IS NULL",
        [(s, e, c) for c, (s, e, _) in windows.items() if s is not None])
    updates = []
    for cycle_id, doc in conn.execute("SELECT cycle_id, doc FROM knowledge").fetchall():
        try:
            start, end, data_end = _knowledge_fields(json.loads(doc))
        except ValueError:
            continue
        market = windows.get(cycle_id, (None, None, None))[2]
        if start is not None or market is not None:
            updates.append((market, start, end, data_end, cycle_id))
    conn.executemany(
        "UPDATE knowledge SET market = ?, train_start = ?, train_end = ?, data_end = ? WHERE cycle_id = ?",
        updates)
    studies = []
    for study, meta in conn.execute("SELECT study, meta FROM search_studies").fetchall():
        try:
            market, end = _study_fields(json.loads(meta))
        except ValueError:
            continue
        if market is not None or end is not None:
            studies.append((market, end, study))
    conn.executemany("UPDATE search_studies SET market = ?, train_end = ? WHERE study = ?", studies)


# -- MongoDB --------------------------------------------------------------------------


async def apply_mongo(db: "AsyncDatabase") -> None:
    """Create the window indexes and backfill the documents without a ``train_end`` field."""
    from pymongo import ASCENDING as UP  # the MongoDB driver is an optional dependency
    from pymongo import IndexModel

    from manager.store.mongo import names as m

    await ensure_collection(db, m.POPULATIONS, [IndexModel(
        [("market", UP), ("mode", UP), ("train_end", UP)], name="populations_by_training")])
    await ensure_collection(db, m.HALL_OF_FAME, [IndexModel(
        [("market", UP), ("train_end", UP)], name="genomes_by_training")])
    await ensure_collection(db, m.KNOWLEDGE, [IndexModel(
        [("market", UP), ("data_end", UP)], name="knowledge_by_training")])
    await ensure_collection(db, m.STUDIES, [IndexModel(
        [("market", UP), ("train_end", UP)], name="search_studies_by_training")])

    missing = {"train_end": {"$exists": False}}
    markets: dict[str, Any] = {}
    windows: dict[str, tuple[str | None, str | None]] = {}
    async for row in db[m.POPULATIONS].find({}, {"_id": 1, "meta": 1, "market": 1, "train_start": 1,
                                                "train_end": 1}):
        markets[row["_id"]] = row.get("market")
        if "train_end" in row:
            windows[row["_id"]] = (row.get("train_start"), row.get("train_end"))
            continue
        start, end = windows[row["_id"]] = _population_window(row.get("meta"))
        await db[m.POPULATIONS].update_one({"_id": row["_id"], **missing},
                                           {"$set": {"train_start": start, "train_end": end}})
    async for row in db[m.HALL_OF_FAME].find(missing, {"_id": 1, "source": 1}):
        start, end = windows.get(row.get("source"), (None, None))
        await db[m.HALL_OF_FAME].update_one({"_id": row["_id"], **missing},
                                            {"$set": {"train_start": start, "train_end": end}})
    async for row in db[m.KNOWLEDGE].find(missing, {"_id": 1, "doc": 1}):
        start, end, data_end = _knowledge_fields(row.get("doc"))
        market = markets.get(row["_id"])
        await db[m.KNOWLEDGE].update_one(
            {"_id": row["_id"], **missing},
            {"$set": {"market": market if isinstance(market, str) and market else None,
                      "train_start": start, "train_end": end, "data_end": data_end}})
    async for row in db[m.STUDIES].find(missing, {"_id": 1, "meta": 1}):
        market, end = _study_fields(row.get("meta"))
        await db[m.STUDIES].update_one({"_id": row["_id"], **missing},
                                       {"$set": {"market": market, "train_end": end}})


MIGRATION = Migration(
    version=6,
    name="training_windows",
    description="training window (and market) of populations, hall-of-fame versions, knowledge "
                "records and search studies, backfilled and indexed (point-in-time seeding)",
    sqlite=apply_sqlite,
    mongo=apply_mongo,
)
