"""SQLite adapter of the storage port: the embedded default (stdlib ``sqlite3``).

One connection per :class:`SQLiteStore`, guarded by a lock so the object may be
shared between threads of one process. The database runs in WAL mode with foreign
keys on; every write is one explicit transaction (``BEGIN IMMEDIATE``), so
several processes may use the same file.

Tables (documents are JSON text columns; queried fields are real columns)::

    sim_runs_intraday  run_id PK, kind, status, created_at, finished_at,
                       data_label, reason, timings (JSON), doc (JSON: config,
                       genomes, other caller keys);
                       since schema version 3 the cohort listing fields (see
                       list_cohort_summaries; NULL for backtests): date (TEXT
                       YYYY-MM-DD), bankroll, quote, agents, roi, final_equity,
                       max_drawdown, peak_utilisation, breaches, failed_agents
                       indexes: (created_at, run_id), (status, created_at, run_id),
                       (kind, created_at, run_id) -- the listing order --, and
                       (kind, date, created_at, run_id), (kind, bankroll,
                       created_at, run_id) for the filtered cohort listing
    cohort_summaries   run_id PK -> run, summary (JSON)
    agent_results      (run_id, rank) PK, agent_id (unique per run), doc (JSON)
    trades             (run_id, position) PK, agent_id, doc (JSON);
                       index (run_id, agent_id, position)
    ledger             (run_id, txn_id) PK, seq (unique per run), bar, time,
                       kind, doc (JSON: the whole transaction incl. postings)
    equity_curves      (run_id, name) PK, position, dtype, shape, npy (BLOB)
    genomes            version PK (autoincrement), saved_at, source,
                       entries (JSON) -- the hall of fame, every version kept
    audit_events       event_id PK (autoincrement), at, kind, actor, doc (JSON);
                       index (at, event_id)

    -- since schema version 2 (the learning loop):
    populations        seq PK (autoincrement: save order), cycle_id (unique),
                       saved_at, mode (meta["mode"] or NULL), genomes (JSON),
                       meta (JSON); index (mode, seq)
    knowledge          cycle_id PK, mode, created_at, doc (JSON: the whole record);
                       indexes: (created_at, cycle_id), (mode, created_at,
                       cycle_id) -- the listing order
    search_trials      (study, idx) PK, value (REAL), saved_at, doc (JSON:
                       params, value, caller keys)
    search_studies     study PK, meta (JSON), created_at, updated_at

All child tables reference ``sim_runs_intraday(run_id)`` with ``ON DELETE CASCADE``.

The schema version is kept in ``PRAGMA user_version``: 1 = runs, ledger, hall of
fame, audit; 2 = adds the four learning tables; 3 = adds the cohort listing
columns and their indexes to ``sim_runs_intraday`` and fills them from the
stored runs (:func:`ensure_cohort_listing`, also migration
``0003_cohort_listing``). Opening a file of an older version upgrades it in
place, in one ``BEGIN IMMEDIATE`` transaction; every statement is ``CREATE ...
IF NOT EXISTS`` or checks first (columns are added only when missing, and
backfilled in the same transaction); 4 = adds the ``market`` column (the
market key a population or hall of fame was bred on) to ``populations`` and
``genomes``, with indexes (:func:`ensure_market_columns`, also migration
``0004_market_of_learning``), so the upgrade is idempotent (a second
opener, or a crash before the commit, leaves nothing half done) and keeps all
data. A file of a newer version is refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from manager.store.base import (
    COHORT_LISTING_FIELDS,
    COHORT_SUMMARY_KEYS,
    RUN_KINDS,
    RUN_STATUSES,
    InvalidDocument,
    NotFound,
    RunNotFound,
    RunStateError,
    Store,
    StoreError,
    require_list,
    require_mapping,
    require_str,
    check_cohort_listing,
    check_id,
    check_limit,
    check_mode,
    check_run_id,
    check_study_meta,
    cohort_listing_fields,
    decode_array,
    encode_array,
    prepare_agent,
    prepare_audit_event,
    prepare_hall_of_fame,
    prepare_knowledge,
    prepare_population,
    prepare_run,
    prepare_study_meta,
    prepare_trade,
    prepare_trial,
    prepare_txn,
    to_document,
    utc_now,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStore", "ensure_cohort_listing", "ensure_market_columns"]

SCHEMA_VERSION = 4
"""Version of the table layout written to ``PRAGMA user_version``."""

# Version 1: runs and their results, the hall of fame, audit events.
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS sim_runs_intraday (
    run_id      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('cohort', 'backtest')),
    status      TEXT NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    created_at  TEXT NOT NULL,
    finished_at TEXT,
    data_label  TEXT NOT NULL,
    reason      TEXT,
    timings     TEXT,
    doc         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sim_runs_intraday_by_created
    ON sim_runs_intraday (created_at, run_id);
CREATE INDEX IF NOT EXISTS sim_runs_intraday_by_status
    ON sim_runs_intraday (status, created_at, run_id);
CREATE INDEX IF NOT EXISTS sim_runs_intraday_by_kind
    ON sim_runs_intraday (kind, created_at, run_id);

CREATE TABLE IF NOT EXISTS cohort_summaries (
    run_id  TEXT PRIMARY KEY
            REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    summary TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS agent_results (
    run_id   TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    rank     INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (run_id, rank),
    UNIQUE (run_id, agent_id)
);

CREATE TABLE IF NOT EXISTS trades (
    run_id   TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (run_id, position)
);
CREATE INDEX IF NOT EXISTS trades_by_agent ON trades (run_id, agent_id, position);

CREATE TABLE IF NOT EXISTS ledger (
    run_id TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    txn_id TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    bar    INTEGER NOT NULL,
    time   TEXT NOT NULL,
    kind   TEXT NOT NULL,
    doc    TEXT NOT NULL,
    PRIMARY KEY (run_id, txn_id),
    UNIQUE (run_id, seq)
);

CREATE TABLE IF NOT EXISTS equity_curves (
    run_id   TEXT NOT NULL REFERENCES sim_runs_intraday (run_id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    position INTEGER NOT NULL,
    dtype    TEXT NOT NULL,
    shape    TEXT NOT NULL,
    npy      BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);

CREATE TABLE IF NOT EXISTS genomes (
    version  INTEGER PRIMARY KEY AUTOINCREMENT,
    saved_at TEXT NOT NULL,
    source   TEXT NOT NULL,
    entries  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS audit_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    doc      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_by_at ON audit_events (at, event_id);
"""

# Version 2: the learning loop (populations, knowledge base, search trials).
_SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS populations (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    cycle_id TEXT NOT NULL UNIQUE,
    saved_at TEXT NOT NULL,
    mode     TEXT,
    genomes  TEXT NOT NULL,
    meta     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS populations_by_mode ON populations (mode, seq);

CREATE TABLE IF NOT EXISTS knowledge (
    cycle_id   TEXT PRIMARY KEY,
    mode       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS knowledge_by_created ON knowledge (created_at, cycle_id);
CREATE INDEX IF NOT EXISTS knowledge_by_mode ON knowledge (mode, created_at, cycle_id);

CREATE TABLE IF NOT EXISTS search_trials (
    study    TEXT NOT NULL,
    idx      INTEGER NOT NULL CHECK (idx >= 0),
    value    REAL NOT NULL,
    saved_at TEXT NOT NULL,
    doc      TEXT NOT NULL,
    PRIMARY KEY (study, idx)
);

CREATE TABLE IF NOT EXISTS search_studies (
    study      TEXT PRIMARY KEY,
    meta       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""

# Every version's DDL, oldest first. All of it is idempotent (IF NOT EXISTS), so
# opening runs all of it: a new file gets the whole schema, an older one the
# missing part. Version 3 is ensure_cohort_listing (columns need a check first).
_SCHEMA = _SCHEMA_V1 + _SCHEMA_V2

# Version 3 (ensure_cohort_listing): the cohort listing columns of sim_runs_intraday (name, SQL type),
# in the order of COHORT_LISTING_FIELDS, and the indexes of the filtered listing
# (the unfiltered one and created_after use sim_runs_intraday_by_kind).
_LISTING_COLUMNS = (
    ("date", "TEXT"),
    ("bankroll", "REAL"),
    ("quote", "TEXT"),
    ("agents", "INTEGER"),
    ("roi", "REAL"),
    ("final_equity", "REAL"),
    ("max_drawdown", "REAL"),
    ("peak_utilisation", "REAL"),
    ("breaches", "INTEGER"),
    ("failed_agents", "INTEGER"),
)
assert tuple(name for name, _ in _LISTING_COLUMNS) == COHORT_LISTING_FIELDS
_LISTING_INDEXES = (
    "CREATE INDEX IF NOT EXISTS sim_runs_intraday_cohorts_by_date "
    "ON sim_runs_intraday (kind, date, created_at, run_id)",
    "CREATE INDEX IF NOT EXISTS sim_runs_intraday_cohorts_by_bankroll "
    "ON sim_runs_intraday (kind, bankroll, created_at, run_id)",
)
_LISTING_SET = ", ".join(f"{name} = ?" for name in COHORT_LISTING_FIELDS)
_BACKFILL_BATCH = 500


def _listing_values(kind: str, body: Any, summary: Any = None) -> tuple[Any, ...]:
    fields = cohort_listing_fields(kind, body if isinstance(body, Mapping) else {}, summary)
    return tuple(fields[name] for name in COHORT_LISTING_FIELDS)


# Version 4 (ensure_market_columns): the market a population / hall of fame was bred on.
_MARKET_INDEXES = (
    "CREATE INDEX IF NOT EXISTS populations_by_market ON populations (market, mode, seq)",
    "CREATE INDEX IF NOT EXISTS genomes_by_market ON genomes (market, version)",
)


def ensure_market_columns(conn: sqlite3.Connection) -> bool:
    """Schema version 4: the ``market`` column of ``populations`` and ``genomes``
    and their indexes. Populations saved before get their ``meta["market"]``
    (when it has one); hall-of-fame versions saved before stay NULL (unknown
    market: never matched by a market filter). Runs inside the caller's write
    transaction; idempotent.

    Returns:
        Whether columns were added.
    """
    added = False
    for table in ("populations", "genomes"):
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if "market" not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN market TEXT")
            added = True
    if added:
        conn.execute("UPDATE populations SET market = json_extract(meta, '$.market') "
                     "WHERE market IS NULL AND json_type(meta, '$.market') = 'text'")
    for statement in _MARKET_INDEXES:
        conn.execute(statement)
    return added


def ensure_cohort_listing(conn: sqlite3.Connection) -> bool:
    """Schema version 3: the cohort listing columns, their indexes, and a backfill.

    Adds the missing columns of :data:`~manager.store.base.COHORT_LISTING_FIELDS`
    to ``sim_runs_intraday``; when any was added, fills them for every stored
    cohort run from its document and (completed runs) its summary, exactly as
    ``create_run``/``complete_run`` would have. Then makes sure the indexes
    exist. Runs inside the caller's write transaction (never commits), so the
    columns and their values appear together. Idempotent: with the columns in
    place it changes nothing (the adapter fills them on every write since).

    Returns:
        Whether columns were added (and runs backfilled).
    """
    present = {row[1] for row in conn.execute("PRAGMA table_info(sim_runs_intraday)")}
    missing = [(name, sql) for name, sql in _LISTING_COLUMNS if name not in present]
    for name, sql in missing:
        conn.execute(f"ALTER TABLE sim_runs_intraday ADD COLUMN {name} {sql}")
    if missing:
        # Ids first, then batches: no cursor stays open over rows being updated,
        # and only one batch of documents is in memory at a time.
        ids = [
            row[0]
            for row in conn.execute("SELECT run_id FROM sim_runs_intraday WHERE kind = 'cohort'")
        ]
        for start in range(0, len(ids), _BACKFILL_BATCH):
            chunk = ids[start:start + _BACKFILL_BATCH]
            batch = conn.execute(
                "SELECT r.run_id, r.kind, r.doc, s.summary FROM sim_runs_intraday AS r "
                "LEFT JOIN cohort_summaries AS s ON s.run_id = r.run_id "
                f"WHERE r.run_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            updates = []
            for run_id, kind, doc, summary in batch:
                try:
                    body, summary_doc = json.loads(doc), _loads(summary)
                except ValueError:  # a damaged document: leave its fields empty
                    body, summary_doc = {}, None
                updates.append((*_listing_values(kind, body, summary_doc), run_id))
            conn.executemany(
                f"UPDATE sim_runs_intraday SET {_LISTING_SET} WHERE run_id = ?", updates
            )
    for statement in _LISTING_INDEXES:
        conn.execute(statement)
    return bool(missing)


def _statements(script: str) -> list[str]:
    """The statements of a DDL script (no ``;`` inside a statement)."""
    return [part.strip() for part in script.split(";") if part.strip()]

# Run-document keys kept in their own columns rather than in ``doc``.
_RUN_COLUMNS = ("run_id", "kind", "status", "created_at", "data_label")
_RUN_SELECT = (
    "SELECT r.run_id, r.kind, r.status, r.created_at, r.finished_at, r.data_label, "
    "r.reason, r.timings, r.doc, s.summary "
    "FROM sim_runs_intraday AS r LEFT JOIN cohort_summaries AS s ON s.run_id = r.run_id"
)
_CHILD_TABLES = ("cohort_summaries", "agent_results", "trades", "ledger", "equity_curves")


def _dumps(document: Any) -> str:
    # Documents were normalised by the base helpers; allow_nan=False is a backstop.
    return json.dumps(document, allow_nan=False, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


class SQLiteStore(Store):
    """The storage port on an SQLite database file (stdlib ``sqlite3``).

    Args:
        path: database file (``str`` or path-like); created with the schema if it
            does not exist, its schema completed if it does (idempotent). The
            parent folder must exist (:func:`manager.store.open_store` creates
            it). ``":memory:"`` gives a private in-memory database.

    Raises:
        StoreError: the file cannot be opened, is not an SQLite database, or was
            written by a newer schema version.

    See the module docstring for the table layout and :class:`Store` for the
    behaviour of every method.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite database {self._path!r}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 10000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"SQLite database {self._path!r} has schema version {version}; this "
                    f"cohortlab understands up to {SCHEMA_VERSION} -- upgrade cohortlab"
                )
            if self._path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(_SCHEMA):
                    conn.execute(statement)
                ensure_cohort_listing(conn)
                ensure_market_columns(conn)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open SQLite database {self._path!r}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    @property
    def path(self) -> str:
        """The database path as given (``":memory:"`` for an in-memory store)."""
        return self._path

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"SQLiteStore({self._path!r}, {state})"

    # -- transactions ----------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"store {self._path!r} is closed")
        return self._conn

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction: commit on success, roll back on any exception.

        ``sqlite3`` errors are re-raised as :class:`StoreError`.
        """
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite database {self._path!r}: {exc}") from exc
            try:
                yield conn
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite database {self._path!r}: {exc}") from exc
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    conn.execute("ROLLBACK")
                    raise StoreError(f"SQLite database {self._path!r}: {exc}") from exc

    @staticmethod
    def _status(conn: sqlite3.Connection, run_id: Any) -> str:
        check_run_id(run_id)
        row = conn.execute(
            "SELECT status FROM sim_runs_intraday WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise RunNotFound(f"no run with run_id {run_id!r}")
        return row["status"]

    @staticmethod
    def _run_doc(row: sqlite3.Row) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "run_id": row["run_id"],
            "kind": row["kind"],
            "status": row["status"],
            "created_at": row["created_at"],
            "finished_at": row["finished_at"],
            "data_label": row["data_label"],
        }
        doc.update(json.loads(row["doc"]))
        doc["reason"] = row["reason"]
        doc["timings"] = _loads(row["timings"])
        doc["summary"] = _loads(row["summary"])
        return doc

    # -- runs ------------------------------------------------------------------

    def create_run(self, run: dict[str, Any]) -> str:
        doc = prepare_run(run)
        body = {key: value for key, value in doc.items() if key not in _RUN_COLUMNS}
        with self._transaction(write=True) as conn:
            try:
                conn.execute(
                    "INSERT INTO sim_runs_intraday "
                    "(run_id, kind, status, created_at, data_label, doc, "
                    f"{', '.join(COHORT_LISTING_FIELDS)}) "
                    f"VALUES (?, ?, ?, ?, ?, ?{', ?' * len(COHORT_LISTING_FIELDS)})",
                    (
                        doc["run_id"],
                        doc["kind"],
                        doc["status"],
                        doc["created_at"],
                        doc["data_label"],
                        _dumps(body),
                        *_listing_values(doc["kind"], body),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"a run with run_id {doc['run_id']!r} already exists") from exc
        return doc["run_id"]

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
        # Items are validated while they are written, inside the transaction: a bad
        # item anywhere rolls back everything written before it.
        with self._transaction(write=True) as conn:
            status = self._status(conn, run_id)
            if status != "running":
                raise RunStateError(
                    f"run {run_id!r} is {status!r}; only a 'running' run can be completed"
                )
            summary_doc = to_document(require_mapping(summary, "summary"), "summary")
            kind, body = conn.execute(
                "SELECT kind, doc FROM sim_runs_intraday WHERE run_id = ?", (run_id,)
            ).fetchone()
            timings_doc = to_document(require_mapping(timings, "timings"), "timings")
            conn.execute(
                "INSERT INTO cohort_summaries (run_id, summary) VALUES (?, ?)",
                (run_id, _dumps(summary_doc)),
            )
            seen_agents: set[str] = set()
            for rank, agent in enumerate(require_list(agents, "agents")):
                doc = prepare_agent(agent, f"agents[{rank}]")
                if doc["agent_id"] in seen_agents:
                    raise InvalidDocument(
                        f"agents[{rank}] agent_id {doc['agent_id']!r} appears twice; "
                        "agent ids must be unique within a run"
                    )
                seen_agents.add(doc["agent_id"])
                conn.execute(
                    "INSERT INTO agent_results (run_id, rank, agent_id, doc) VALUES (?, ?, ?, ?)",
                    (run_id, rank, doc["agent_id"], _dumps(doc)),
                )
            for position, trade in enumerate(require_list(trades, "trades")):
                doc = prepare_trade(trade, f"trades[{position}]")
                conn.execute(
                    "INSERT INTO trades (run_id, position, agent_id, doc) VALUES (?, ?, ?, ?)",
                    (run_id, position, doc["agent_id"], _dumps(doc)),
                )
            self._insert_ledger(conn, run_id, ledger, "ledger")
            if not isinstance(curves, Mapping):
                raise InvalidDocument(
                    f"curves must be a dict of name -> numpy.ndarray, got {type(curves).__name__}"
                )
            for position, (name, array) in enumerate(curves.items()):
                require_str(name, f"curves key {name!r}")
                data = encode_array(array, f"curves[{name!r}]")
                conn.execute(
                    "INSERT INTO equity_curves (run_id, name, position, dtype, shape, npy) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, name, position, array.dtype.str, _dumps(list(array.shape)), data),
                )
            conn.execute(
                "UPDATE sim_runs_intraday SET status = 'completed', finished_at = ?, "
                f"timings = ?, reason = NULL, {_LISTING_SET} WHERE run_id = ?",
                (
                    utc_now(),
                    _dumps(timings_doc),
                    *_listing_values(kind, json.loads(body), summary_doc),
                    run_id,
                ),
            )

    def fail_run(self, run_id: str, reason: str, timings: dict[str, Any] | None = None) -> None:
        reason = require_str(reason, "fail_run reason")
        timings_doc = (
            None
            if timings is None
            else to_document(require_mapping(timings, "timings"), "timings")
        )
        with self._transaction(write=True) as conn:
            status = self._status(conn, run_id)
            if status == "completed":
                raise RunStateError(
                    f"run {run_id!r} is 'completed'; a completed run cannot be failed "
                    "(its results would be deleted)"
                )
            for table in _CHILD_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
            kind, body = conn.execute(
                "SELECT kind, doc FROM sim_runs_intraday WHERE run_id = ?", (run_id,)
            ).fetchone()
            conn.execute(
                "UPDATE sim_runs_intraday SET status = 'failed', finished_at = ?, reason = ?, "
                f"timings = ?, {_LISTING_SET} WHERE run_id = ?",
                (
                    utc_now(),
                    reason,
                    None if timings_doc is None else _dumps(timings_doc),
                    *_listing_values(kind, json.loads(body)),
                    run_id,
                ),
            )

    def get_run(self, run_id: str) -> dict[str, Any]:
        check_run_id(run_id)
        with self._transaction(write=False) as conn:
            row = conn.execute(f"{_RUN_SELECT} WHERE r.run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run with run_id {run_id!r}")
        return self._run_doc(row)

    def list_runs(
        self,
        limit: int = 20,
        before: str | None = None,
        status: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        limit = check_limit(limit)
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            if status not in RUN_STATUSES:
                raise InvalidDocument(
                    f"status {status!r} is not allowed; allowed: {', '.join(RUN_STATUSES)} or None"
                )
            where.append("r.status = ?")
            params.append(status)
        if kind is not None:
            if kind not in RUN_KINDS:
                raise InvalidDocument(
                    f"kind {kind!r} is not allowed; allowed: {', '.join(RUN_KINDS)} or None"
                )
            where.append("r.kind = ?")
            params.append(kind)
        if before is not None:
            check_run_id(before)
        with self._transaction(write=False) as conn:
            if before is not None:
                cursor = conn.execute(
                    "SELECT created_at, run_id FROM sim_runs_intraday WHERE run_id = ?", (before,)
                ).fetchone()
                if cursor is None:
                    raise RunNotFound(f"list_runs cursor before={before!r} names no run")
                where.append("(r.created_at, r.run_id) < (?, ?)")
                params.extend((cursor["created_at"], cursor["run_id"]))
            sql = _RUN_SELECT
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY r.created_at DESC, r.run_id DESC LIMIT ?"
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return [self._run_doc(row) for row in rows]

    def list_cohort_summaries(
        self,
        *,
        date: str | None = None,
        bankroll: float | None = None,
        created_after: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> dict[str, Any]:
        date, bankroll, created_after, limit, offset = check_cohort_listing(
            date, bankroll, created_after, limit, offset
        )
        # kind first, then an equality filter, then created_at: every filter
        # combination is a range of one index read in listing order (no sort).
        where = ["kind = 'cohort'"]
        params: list[Any] = []
        if date is not None:
            where.append("date = ?")
            params.append(date)
        if bankroll is not None:
            where.append("bankroll = ?")
            params.append(bankroll)
        if created_after is not None:
            where.append("created_at > ?")
            params.append(created_after)
        condition = " AND ".join(where)
        # The page's rowids come from the index alone (an offset skips index
        # entries, not table rows); only the page's rows are then read.
        page = (
            f"SELECT rowid FROM sim_runs_intraday WHERE {condition} "
            "ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?"
        )
        columns = ", ".join(COHORT_SUMMARY_KEYS)
        with self._transaction(write=False) as conn:
            total = conn.execute(
                f"SELECT COUNT(*) FROM sim_runs_intraday WHERE {condition}", params
            ).fetchone()[0]
            rows = conn.execute(
                f"SELECT {columns} FROM sim_runs_intraday WHERE rowid IN ({page}) "
                "ORDER BY created_at DESC, run_id DESC",
                (*params, limit, offset),
            ).fetchall()
        return {"items": [dict(zip(COHORT_SUMMARY_KEYS, row)) for row in rows], "total": total}

    # -- results -----------------------------------------------------------------

    def get_agents(self, run_id: str) -> list[dict[str, Any]]:
        with self._transaction(write=False) as conn:
            self._status(conn, run_id)
            rows = conn.execute(
                "SELECT doc FROM agent_results WHERE run_id = ? ORDER BY rank", (run_id,)
            ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def get_trades(self, run_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
        if agent_id is not None:
            require_str(agent_id, "agent_id")
        with self._transaction(write=False) as conn:
            self._status(conn, run_id)
            if agent_id is None:
                rows = conn.execute(
                    "SELECT doc FROM trades WHERE run_id = ? ORDER BY position", (run_id,)
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT doc FROM trades WHERE run_id = ? AND agent_id = ? ORDER BY position",
                    (run_id, agent_id),
                ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def get_ledger(self, run_id: str) -> list[dict[str, Any]]:
        with self._transaction(write=False) as conn:
            self._status(conn, run_id)
            rows = conn.execute(
                "SELECT doc FROM ledger WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def get_curves(self, run_id: str) -> dict[str, np.ndarray]:
        with self._transaction(write=False) as conn:
            self._status(conn, run_id)
            rows = conn.execute(
                "SELECT name, npy FROM equity_curves WHERE run_id = ? ORDER BY position",
                (run_id,),
            ).fetchall()
        return {row["name"]: decode_array(row["npy"]) for row in rows}

    def append_ledger(self, run_id: str, txns: list[dict[str, Any]]) -> int:
        with self._transaction(write=True) as conn:
            status = self._status(conn, run_id)
            if status == "failed":
                raise RunStateError(f"run {run_id!r} failed; its ledger must stay empty")
            added = self._insert_ledger(conn, run_id, txns, "txns")
            if added and status == "completed":
                raise RunStateError(
                    f"run {run_id!r} is 'completed'; its ledger is closed "
                    f"({added} of the transactions are new)"
                )
        return added

    @staticmethod
    def _insert_ledger(conn: sqlite3.Connection, run_id: str, txns: Any, where: str) -> int:
        """Insert transactions one by one; skip identical ones already stored.

        Returns how many were inserted. Raises on a duplicate ``txn_id`` inside
        ``txns``, a ``txn_id`` stored with other content, or a reused ``seq``.
        """
        seen: set[str] = set()
        added = 0
        for i, raw in enumerate(require_list(txns, where)):
            txn = prepare_txn(raw, f"{where}[{i}]")
            txn_id = txn["txn_id"]
            if txn_id in seen:
                raise InvalidDocument(
                    f"{where}[{i}] txn_id {txn_id!r} appears twice in the list; "
                    "txn_id must be unique within a run"
                )
            seen.add(txn_id)
            stored = conn.execute(
                "SELECT doc FROM ledger WHERE run_id = ? AND txn_id = ?", (run_id, txn_id)
            ).fetchone()
            if stored is not None:
                if json.loads(stored["doc"]) != txn:
                    raise StoreError(
                        f"{where}[{i}] txn_id {txn_id!r} is already stored for run {run_id!r} "
                        "with different content; a txn_id names one transaction only"
                    )
                continue
            try:
                conn.execute(
                    "INSERT INTO ledger (run_id, txn_id, seq, bar, time, kind, doc) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (run_id, txn_id, txn["seq"], txn["bar"], txn["time"], txn["kind"], _dumps(txn)),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"{where}[{i}] (txn_id {txn_id!r}) seq {txn['seq']} is already used by "
                    f"another transaction of run {run_id!r}; seq must be unique within a run"
                ) from exc
            added += 1
        return added

    # -- hall of fame --------------------------------------------------------------

    def save_hall_of_fame(self, entries: list[dict[str, Any]], source: str,
                          market: str | None = None) -> None:
        docs, source = prepare_hall_of_fame(entries, source)
        market = check_mode(market, "hall of fame market")
        with self._transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO genomes (saved_at, source, entries, market) VALUES (?, ?, ?, ?)",
                (utc_now(), source, _dumps(docs), market),
            )

    def latest_hall_of_fame(self, market: str | None = None) -> list[dict[str, Any]] | None:
        market = check_mode(market, "market")
        sql, params = "SELECT entries FROM genomes", ()
        if market is not None:
            sql, params = sql + " WHERE market = ?", (market,)
        with self._transaction(write=False) as conn:
            row = conn.execute(f"{sql} ORDER BY version DESC LIMIT 1", params).fetchone()
        return None if row is None else json.loads(row["entries"])

    # -- audit -------------------------------------------------------------------

    def record_audit(self, event: dict[str, Any]) -> None:
        doc = prepare_audit_event(event)
        with self._transaction(write=True) as conn:
            conn.execute(
                "INSERT INTO audit_events (at, kind, actor, doc) VALUES (?, ?, ?, ?)",
                (doc["at"], doc["kind"], doc["actor"], _dumps(doc)),
            )

    def list_audit(self, limit: int = 50) -> list[dict[str, Any]]:
        limit = check_limit(limit)
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT doc FROM audit_events ORDER BY at DESC, event_id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    # -- learning: populations -------------------------------------------------------

    @staticmethod
    def _population_doc(row: sqlite3.Row) -> dict[str, Any]:
        return {
            "cycle_id": row["cycle_id"],
            "saved_at": row["saved_at"],
            "genomes": json.loads(row["genomes"]),
            "meta": json.loads(row["meta"]),
        }

    def save_population(
        self, cycle_id: str, genomes: list[dict[str, Any]], meta: dict[str, Any]
    ) -> None:
        cycle_id, docs, meta_doc, mode, market = prepare_population(cycle_id, genomes, meta)
        with self._transaction(write=True) as conn:
            try:
                conn.execute(
                    "INSERT INTO populations (cycle_id, saved_at, mode, genomes, meta, market) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (cycle_id, utc_now(), mode, _dumps(docs), _dumps(meta_doc), market),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"a population with cycle_id {cycle_id!r} already exists; "
                    "populations are never overwritten"
                ) from exc

    def latest_population(self, mode: str | None = None,
                          market: str | None = None) -> dict[str, Any] | None:
        mode = check_mode(mode)
        market = check_mode(market, "market")
        sql = "SELECT cycle_id, saved_at, genomes, meta FROM populations"
        where = [(col, v) for col, v in (("market", market), ("mode", mode)) if v is not None]
        params: tuple[Any, ...] = tuple(v for _, v in where)
        if where:
            sql += " WHERE " + " AND ".join(f"{col} = ?" for col, _ in where)
        with self._transaction(write=False) as conn:
            row = conn.execute(f"{sql} ORDER BY seq DESC LIMIT 1", params).fetchone()
        return None if row is None else self._population_doc(row)

    def get_population(self, cycle_id: str) -> dict[str, Any]:
        check_id(cycle_id, "cycle_id")
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT cycle_id, saved_at, genomes, meta FROM populations WHERE cycle_id = ?",
                (cycle_id,),
            ).fetchone()
        if row is None:
            raise NotFound(f"no population with cycle_id {cycle_id!r}")
        return self._population_doc(row)

    # -- learning: knowledge base ------------------------------------------------------

    def save_knowledge(self, record: dict[str, Any]) -> str:
        doc = prepare_knowledge(record)
        with self._transaction(write=True) as conn:
            try:
                conn.execute(
                    "INSERT INTO knowledge (cycle_id, mode, created_at, doc) VALUES (?, ?, ?, ?)",
                    (doc["cycle_id"], doc["mode"], doc["created_at"], _dumps(doc)),
                )
            except sqlite3.IntegrityError as exc:
                raise StoreError(
                    f"a knowledge record with cycle_id {doc['cycle_id']!r} already exists; "
                    "knowledge records are never overwritten"
                ) from exc
        return doc["cycle_id"]

    def list_knowledge(
        self, limit: int = 50, before: str | None = None, mode: str | None = None
    ) -> list[dict[str, Any]]:
        limit = check_limit(limit)
        mode = check_mode(mode)
        if before is not None:
            check_id(before, "list_knowledge cursor before")
        where: list[str] = []
        params: list[Any] = []
        if mode is not None:
            where.append("mode = ?")
            params.append(mode)
        with self._transaction(write=False) as conn:
            if before is not None:
                cursor = conn.execute(
                    "SELECT created_at, cycle_id FROM knowledge WHERE cycle_id = ?", (before,)
                ).fetchone()
                if cursor is None:
                    raise NotFound(
                        f"list_knowledge cursor before={before!r} names no knowledge record"
                    )
                where.append("(created_at, cycle_id) < (?, ?)")
                params.extend((cursor["created_at"], cursor["cycle_id"]))
            sql = "SELECT doc FROM knowledge"
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY created_at DESC, cycle_id DESC LIMIT ?"
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return [json.loads(row["doc"]) for row in rows]

    def get_knowledge(self, cycle_id: str) -> dict[str, Any]:
        check_id(cycle_id, "cycle_id")
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT doc FROM knowledge WHERE cycle_id = ?", (cycle_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no knowledge record with cycle_id {cycle_id!r}")
        return json.loads(row["doc"])

    # -- learning: search trials ---------------------------------------------------------

    def save_trial(self, study: str, trial: dict[str, Any]) -> int:
        study, doc = prepare_trial(study, trial)
        # BEGIN IMMEDIATE holds the write lock from the MAX() to the INSERT, so
        # concurrent appenders (threads or processes) get consecutive indexes.
        with self._transaction(write=True) as conn:
            index = conn.execute(
                "SELECT COALESCE(MAX(idx) + 1, 0) FROM search_trials WHERE study = ?", (study,)
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO search_trials (study, idx, value, saved_at, doc) "
                "VALUES (?, ?, ?, ?, ?)",
                (study, index, doc["value"], utc_now(), _dumps(doc)),
            )
        return int(index)

    def list_trials(self, study: str) -> list[dict[str, Any]]:
        check_id(study, "study")
        with self._transaction(write=False) as conn:
            rows = conn.execute(
                "SELECT idx, saved_at, doc FROM search_trials WHERE study = ? ORDER BY idx",
                (study,),
            ).fetchall()
        return [
            {"index": row["idx"], **json.loads(row["doc"]), "saved_at": row["saved_at"]}
            for row in rows
        ]

    def list_studies(self) -> list[dict[str, Any]]:
        with self._transaction(write=False) as conn:
            trials = conn.execute(
                "SELECT study, COUNT(*) AS n, MIN(value) AS best, MAX(saved_at) AS last "
                "FROM search_trials GROUP BY study"
            ).fetchall()
            metas = conn.execute("SELECT study, meta, updated_at FROM search_studies").fetchall()
        studies: dict[str, dict[str, Any]] = {}
        for row in trials:
            studies[row["study"]] = {
                "study": row["study"],
                "trials": row["n"],
                "best_value": float(row["best"]),
                "updated_at": row["last"],
                "meta": None,
            }
        for row in metas:
            entry = studies.setdefault(
                row["study"],
                {
                    "study": row["study"],
                    "trials": 0,
                    "best_value": None,
                    "updated_at": row["updated_at"],
                    "meta": None,
                },
            )
            entry["meta"] = json.loads(row["meta"])
            entry["updated_at"] = max(entry["updated_at"], row["updated_at"])
        ordered = sorted(studies.values(), key=lambda e: e["study"])
        ordered.sort(key=lambda e: e["updated_at"], reverse=True)
        return ordered

    def save_study_meta(
        self, study: str, meta: dict[str, Any], *, replace: bool = False
    ) -> None:
        study, meta_doc = prepare_study_meta(study, meta)
        with self._transaction(write=True) as conn:
            row = conn.execute(
                "SELECT meta FROM search_studies WHERE study = ?", (study,)
            ).fetchone()
            now = utc_now()
            if row is None:
                conn.execute(
                    "INSERT INTO search_studies (study, meta, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?)",
                    (study, _dumps(meta_doc), now, now),
                )
                return
            stored = json.loads(row["meta"])
            if not replace:
                check_study_meta(study, stored, meta_doc)  # raises if they differ
                return
            conn.execute(
                "UPDATE search_studies SET meta = ?, updated_at = ? WHERE study = ?",
                (_dumps(meta_doc), now, study),
            )

    def get_study_meta(self, study: str) -> dict[str, Any] | None:
        check_id(study, "study")
        with self._transaction(write=False) as conn:
            row = conn.execute(
                "SELECT meta FROM search_studies WHERE study = ?", (study,)
            ).fetchone()
        return None if row is None else json.loads(row["meta"])

    # -- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

