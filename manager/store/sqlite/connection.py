"""The SQLite adapter's connection: opening a file, transactions, closing.

One connection per store object, guarded by a lock so the object may be shared
between threads of one process. The database runs in WAL mode with foreign keys
on; every write is one explicit transaction (``BEGIN IMMEDIATE``), so several
processes may use the same file. The aggregate mixins
(:mod:`~manager.store.sqlite.runs`, :mod:`~manager.store.sqlite.learning`,
:mod:`~manager.store.sqlite.audit`) run their statements through
:meth:`SQLiteConnection._transaction`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from manager.store.errors import RunNotFound, StoreError, StoreUnavailable
from manager.store.documents import check_run_id
from manager.store.schema import migrate_schema

__all__ = ["SQLiteConnection", "dumps", "loads"]

T = TypeVar("T")

#: primary SQLite result codes a retry may resolve: SQLITE_BUSY, SQLITE_LOCKED
_TRANSIENT_CODES = frozenset({5, 6})


def dumps(document: Any) -> str:
    """A document as compact JSON text (documents were normalised by
    :mod:`manager.store.documents`; ``allow_nan=False`` is a backstop)."""
    return json.dumps(document, allow_nan=False, separators=(",", ":"))


def loads(text: str | None) -> Any:
    """Inverse of :func:`dumps`; ``None`` stays ``None``."""
    return None if text is None else json.loads(text)


class SQLiteConnection:
    """Opens an SQLite database file and runs transactions on it.

    Args:
        path: database file (``str`` or path-like), created if missing; its
            parent folder must exist (:func:`manager.store.open_store` creates
            it). ``":memory:"`` gives a private in-memory database.
        migrate: bring the schema up to date when opening (the installed
            migrator of :mod:`manager.store.schema`, i.e. the migrations of
            ``migrations/``: creates the tables of a new file and upgrades an
            older one in place, in one transaction). ``False`` opens the file
            as it is (``cohortlab migrate --status`` does that); a new file
            then has no tables until it is migrated.

    Raises:
        StoreError: the file cannot be opened or is not an SQLite database, or
            migrating failed (e.g. a file written by a newer cohortlab).
    """

    def __init__(self, path: str | os.PathLike[str], *, migrate: bool = True) -> None:
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
            conn.execute("PRAGMA schema_version").fetchone()  # reads the header: a database?
            if self._path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(f"cannot open SQLite database {self._path!r}: {exc}") from exc
        self._conn = conn
        if migrate:
            try:
                migrate_schema(self)  # type: ignore[arg-type]  # a Store: see SQLiteStore
            except BaseException:
                self.close()
                raise

    @property
    def path(self) -> str:
        """The database path as given (``":memory:"`` for an in-memory store)."""
        return self._path

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"{type(self).__name__}({self._path!r}, {state})"

    # -- transactions ----------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"store {self._path!r} is closed")
        return self._conn

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction: commit on success, roll back on any exception.

        ``sqlite3`` errors are re-raised as :class:`StoreError` with the
        original error chained (``__cause__``): :class:`StoreUnavailable` when
        the database is busy or locked (a retry may succeed), a plain
        :class:`StoreError` otherwise (disk full, read-only or moved file, I/O
        error, corruption: permanent). When SQLite already rolled the
        transaction back itself (it does on ``SQLITE_FULL``, ``SQLITE_IOERR``
        ...), no second ``ROLLBACK`` is issued, and a failing ``ROLLBACK`` never
        replaces the error that caused it.
        """
        with self._lock:
            conn = self._connection()
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            try:
                yield conn
            except BaseException as exc:
                self._rollback(conn)
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc) from exc
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._rollback(conn)
                    raise self._error(exc) from exc

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        """Roll back the open transaction, if SQLite has not already done so;
        a failure here is ignored (the caller raises the error that caused it)."""
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def _error(self, exc: sqlite3.Error) -> StoreError:
        """The :class:`StoreError` for an ``sqlite3`` error: transient
        (:class:`StoreUnavailable`) for ``SQLITE_BUSY`` / ``SQLITE_LOCKED``,
        permanent otherwise; the message keeps SQLite's (``database or disk is
        full``, ``attempt to write a readonly database`` ...) and its code name."""
        code = getattr(exc, "sqlite_errorcode", None)
        name = getattr(exc, "sqlite_errorname", None)
        shown = f"{exc} ({name})" if name else str(exc)
        message = f"SQLite database {self._path!r}: {shown}"
        if code is not None and code & 0xFF in _TRANSIENT_CODES:
            return StoreUnavailable(message)
        return StoreError(message)

    def run_transaction(self, fn: Callable[[sqlite3.Connection], T], *, write: bool = True) -> T:
        """Run ``fn(connection)`` inside one transaction and return its result.

        For administrative code that needs SQL itself (migrations, tests), like
        ``MongoStore.run_async``. ``fn`` must not commit or roll back.

        Args:
            fn: called with the connection (rows are :class:`sqlite3.Row`).
            write: ``BEGIN IMMEDIATE`` (takes the write lock at once, so
                concurrent writers queue up) rather than a deferred ``BEGIN``.

        Raises:
            StoreError: the store is closed, or an ``sqlite3`` error (the
                transaction is rolled back); other exceptions of ``fn`` roll
                back and propagate unchanged.
        """
        with self._transaction(write=write) as conn:
            return fn(conn)

    @staticmethod
    def _status(conn: sqlite3.Connection, run_id: Any) -> str:
        """The status of run ``run_id`` (RunNotFound if there is none)."""
        check_run_id(run_id)
        row = conn.execute(
            "SELECT status FROM sim_runs_intraday WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise RunNotFound(f"no run with run_id {run_id!r}")
        return row["status"]

    # -- lifetime ------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; idempotent. Later calls raise StoreError."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
