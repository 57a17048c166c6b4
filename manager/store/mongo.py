"""MongoDB adapter of the storage port, on PyMongo's asynchronous API.

:class:`MongoStore` implements :class:`~manager.store.base.Store` with
``pymongo.AsyncMongoClient`` (the maintained successor of Motor). Select it with
``COHORTLAB_STORE=mongodb://host:port/dbname`` (see
:func:`manager.store.open_store`); the database name comes from the URL path,
default ``cohortlab``.

Why a private event loop in a thread
------------------------------------
The port is synchronous (the CLI, the runner and Celery tasks call it from plain
threads), the driver is asynchronous. Each :class:`MongoStore` owns one event
loop running in a daemon thread; the client is created on that loop and every
port method submits its coroutine there with
``asyncio.run_coroutine_threadsafe(...).result()``. This

* works from any thread, also from one that already runs its own event loop
  (``asyncio.run`` would refuse there, and a client is bound to the loop that
  created it, so a fresh loop per call would not work either);
* lets several threads share one store object and one connection pool: their
  coroutines interleave on the store's loop instead of each thread opening
  connections of its own;
* keeps the driver's async machinery out of the callers' code.

Calling a store method from inside its own loop thread would deadlock and is
refused. Close the store (or use ``with``) to stop the thread; an unclosed store
does not keep the process alive (daemon thread). Do not share a store across
``fork()``: open it in the child.

Collections (one document per row; caller documents are kept whole in a ``doc``
sub-document, so caller keys can never collide with the store's own fields)::

    sim_runs_intraday  _id = run_id; run_id, kind, status, created_at,
                       finished_at, data_label, reason, timings, doc (config,
                       genomes, other caller keys), attempt (see below);
                       cohort runs also carry the listing fields of
                       list_cohort_summaries: date ("YYYY-MM-DD" | None),
                       bankroll, quote, agents, roi, final_equity,
                       max_drawdown, peak_utilisation, breaches, failed_agents,
                       and the integer keys it filters and sorts on: day
                       (YYYYMMDD | None) and created_us (created_at in
                       microseconds since 1970, same order as created_at)
    cohort_summaries   _id = run_id; run_id, summary, attempt
    agent_results      run_id, rank, agent_id, doc, attempt
    trades             run_id, position, agent_id, doc, attempt
    ledger             run_id, txn_id, seq, bar, time, kind, doc (the whole
                       transaction), attempt (absent when appended by append_ledger)
    equity_curves      run_id, name, position, chunk, dtype, shape, npy (bytes of a
                       ``.npy`` file, split into chunks of at most 8 MiB), attempt
    genomes            version (save order), saved_at, source, entries -- the hall
                       of fame, every version kept
    audit_events       event_id (= _id, insertion order), at, kind, actor, doc
    populations        _id = cycle_id; cycle_id, seq (save order), saved_at, mode,
                       genomes, meta
    knowledge          _id = cycle_id; cycle_id, mode, created_at, doc
    search_trials      study, index, value, saved_at, doc
    search_studies     _id = study; meta, created_at, updated_at
    schema_migrations  _id = migration id; version, name, applied_at
    promotion_log      created by migration 0001 for a later feature

Indexes are created by the versioned migrations in :mod:`migrations` (applied
when the store is opened, unless ``migrate=False``); the ledger's idempotency
rests on the unique index ``(run_id, txn_id)``.

The cohort listing (:meth:`MongoStore.list_cohort_summaries`) reads only run
documents, through the indexes ``(kind, created_us, run_id)``, ``(kind, day,
created_us, run_id)`` and ``(kind, bankroll, created_us, run_id)`` of migration
0003, with ``find`` + ``skip``/``limit`` and the ``count`` command. Its filters
are written ``{"$eq": value}`` and compare integers (``day``, ``created_us``)
rather than date strings: the same query and plan on MongoDB, and on nx-27017
(NeoSQLite) the only form that stays an indexed SQL query -- a plain equality
there also matches array elements through an unindexed ``json_each``, and any
comparison with a date-like string is evaluated in Python over every document.
``count_documents`` (an aggregation) would also scan there. The page and the
count are two reads, not one snapshot: a run created between them can be
counted and not listed. For the same
reason every query of a run's children names the run as ``{"run_id": {"$eq":
run_id}}``: identical on MongoDB, and on nx-27017 it keeps the ``(run_id, ...)``
indexes in use, so reading or completing a run costs the same however many runs
are stored.

Atomicity
---------
On a replica set or sharded cluster, ``complete_run``, ``fail_run`` and
``append_ledger`` run in one multi-document transaction (retried on transient
conflicts). A standalone server (or nx-27017) has no transactions; there the
store writes a run's children first, each tagged with a fresh ``attempt`` token
that is also recorded on the run document (the claim), and flips the run's
status last with a write conditioned on that claim. On any failure it deletes
everything tagged with its token and releases the claim (compensation), so the
run stays as it was. Readers never see a half-finished completion: results are
read only for ``"completed"`` runs and only with the token of the completion
that won; leftovers of a crashed attempt are removed by the next attempt.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote

import numpy as np
from bson import ObjectId
from bson.errors import InvalidDocument as BSONInvalidDocument
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from manager.store.base import (
    COHORT_SUMMARY_KEYS,
    RUN_KINDS,
    RUN_STATUSES,
    InvalidDocument,
    NotFound,
    RunNotFound,
    RunStateError,
    Store,
    StoreError,
    check_cohort_listing,
    check_id,
    check_limit,
    check_mode,
    check_run_id,
    check_study_meta,
    cohort_listing_fields,
    created_micros,
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
    require_list,
    require_mapping,
    require_str,
    to_document,
    utc_now,
)

__all__ = [
    "AGENTS",
    "AUDIT",
    "COLLECTIONS",
    "CURVES",
    "DEFAULT_DATABASE",
    "HALL_OF_FAME",
    "KNOWLEDGE",
    "LEDGER",
    "MIGRATIONS",
    "MongoStore",
    "POPULATIONS",
    "PROMOTIONS",
    "RUNS",
    "STUDIES",
    "SUMMARIES",
    "TRADES",
    "TRIALS",
    "backfill_cohort_listing",
]

T = TypeVar("T")

DEFAULT_DATABASE = "cohortlab"
"""Database used when the URL has no path and no ``database`` is given."""

RUNS = "sim_runs_intraday"
SUMMARIES = "cohort_summaries"
AGENTS = "agent_results"
TRADES = "trades"
LEDGER = "ledger"
CURVES = "equity_curves"
HALL_OF_FAME = "genomes"
AUDIT = "audit_events"
POPULATIONS = "populations"
KNOWLEDGE = "knowledge"
TRIALS = "search_trials"
STUDIES = "search_studies"
MIGRATIONS = "schema_migrations"
PROMOTIONS = "promotion_log"

COLLECTIONS: tuple[str, ...] = (
    RUNS, SUMMARIES, AGENTS, TRADES, LEDGER, CURVES, HALL_OF_FAME, AUDIT,
    POPULATIONS, KNOWLEDGE, TRIALS, STUDIES, MIGRATIONS, PROMOTIONS,
)
"""Every collection the store and its migrations use."""

# Children of a run: written by complete_run, deleted by fail_run.
_CHILDREN = (SUMMARIES, AGENTS, TRADES, LEDGER, CURVES)

_CHUNK_BYTES = 8 * 1024 * 1024  # a curve's .npy bytes per document (BSON limit: 16 MiB)
_IN_BATCH = 1000  # ids per $in query
_INSERT_RETRIES = 1000  # attempts to take the next number of a sequence under contention
_TXN_RETRIES = 5
_DUPLICATE_KEY = 11000
_DB_NAME_BAD = re.compile(r'[/\\. "$*<>:|?\x00]')
_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def _redact(url: str) -> str:
    return _PASSWORD.sub(r"\1***@", url)


def _url_database(url: str) -> str | None:
    """The database named by the path of a ``mongodb://`` URL, or None."""
    _, _, rest = url.partition("://")
    _, _, path = rest.partition("/")
    path = path.split("?", 1)[0]
    return unquote(path) or None


def _url_password(url: str) -> str | None:
    _, _, rest = url.partition("://")
    hosts = rest.split("/", 1)[0]
    if "@" not in hosts:
        return None
    userinfo = hosts.rsplit("@", 1)[0]
    _, sep, password = userinfo.partition(":")
    return password if sep and password else None


def _check_database_name(name: Any) -> str:
    if not isinstance(name, str) or not name or _DB_NAME_BAD.search(name) or len(name.encode()) > 63:
        raise StoreError(
            f"MongoDB database name {name!r} is not valid; allowed: 1-63 bytes without "
            "/ \\ . space \" $ * < > : | ? (e.g. 'cohortlab')"
        )
    return name


def _chunks(items: list[T], size: int = _IN_BATCH) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class _Retry(Exception):
    """A write inside a transaction met a concurrent writer; run the transaction again."""


class _Results:
    """complete_run's input, validated and turned into documents (no I/O)."""

    def __init__(
        self,
        summary: Any,
        agents: Any,
        trades: Any,
        ledger: Any,
        curves: Any,
        timings: Any,
        run_id: str,
    ) -> None:
        self.summary = to_document(require_mapping(summary, "summary"), "summary")
        self.timings = to_document(require_mapping(timings, "timings"), "timings")
        self.agents: list[dict[str, Any]] = []
        seen_agents: set[str] = set()
        for rank, agent in enumerate(require_list(agents, "agents")):
            doc = prepare_agent(agent, f"agents[{rank}]")
            if doc["agent_id"] in seen_agents:
                raise InvalidDocument(
                    f"agents[{rank}] agent_id {doc['agent_id']!r} appears twice; "
                    "agent ids must be unique within a run"
                )
            seen_agents.add(doc["agent_id"])
            self.agents.append(doc)
        self.trades = [
            prepare_trade(trade, f"trades[{position}]")
            for position, trade in enumerate(require_list(trades, "trades"))
        ]
        self.ledger = _prepare_ledger(ledger, "ledger", run_id)
        if not isinstance(curves, Mapping):
            raise InvalidDocument(
                f"curves must be a dict of name -> numpy.ndarray, got {type(curves).__name__}"
            )
        self.curves: list[tuple[str, np.ndarray, bytes]] = []
        for name, array in curves.items():
            require_str(name, f"curves key {name!r}")
            self.curves.append((str.__str__(name), array, encode_array(array, f"curves[{name!r}]")))


def _prepare_ledger(txns: Any, where: str, run_id: str) -> list[tuple[int, dict[str, Any]]]:
    """Validate transactions; refuse a txn_id or a seq used twice in the list.

    Returns ``(position in the list, transaction)`` pairs.
    """
    out: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for i, raw in enumerate(require_list(txns, where)):
        txn = prepare_txn(raw, f"{where}[{i}]")
        if txn["txn_id"] in seen:
            raise InvalidDocument(
                f"{where}[{i}] txn_id {txn['txn_id']!r} appears twice in the list; "
                "txn_id must be unique within a run"
            )
        seen.add(txn["txn_id"])
        out.append((i, txn))
    seqs: set[int] = set()
    for i, txn in out:
        if txn["seq"] in seqs:
            raise _seq_error(where, i, txn, run_id)
        seqs.add(txn["seq"])
    return out


def _seq_error(where: str, i: int, txn: dict[str, Any], run_id: str) -> StoreError:
    return StoreError(
        f"{where}[{i}] (txn_id {txn['txn_id']!r}) seq {txn['seq']} is already used by "
        f"another transaction of run {run_id!r}; seq must be unique within a run"
    )


def _conflict_error(where: str, i: int, txn_id: str, run_id: str) -> StoreError:
    return StoreError(
        f"{where}[{i}] txn_id {txn_id!r} is already stored for run {run_id!r} "
        "with different content; a txn_id names one transaction only"
    )


def _run_document(row: Mapping[str, Any], summary: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "run_id": row["run_id"],
        "kind": row["kind"],
        "status": row["status"],
        "created_at": row["created_at"],
        "finished_at": row.get("finished_at"),
        "data_label": row["data_label"],
    }
    doc.update(row["doc"])
    doc["reason"] = row.get("reason")
    doc["timings"] = row.get("timings")
    doc["summary"] = summary
    return doc


def _listing_set(
    kind: str, created_at: str, body: Mapping[str, Any], summary: Any = None
) -> dict[str, Any]:
    """The listing fields of a cohort run as stored on its run document ({} for
    other kinds): :data:`~manager.store.base.COHORT_LISTING_FIELDS` plus ``day`` and
    ``created_us``."""
    if kind != "cohort":
        return {}
    fields = cohort_listing_fields(kind, body, summary)
    date = fields["date"]
    fields["day"] = None if date is None else int(date.replace("-", ""))
    fields["created_us"] = created_micros(created_at)
    return fields


_SUMMARY_PROJECTION = {key: 1 for key in COHORT_SUMMARY_KEYS} | {"_id": 0}


def _summary_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: row.get(key) for key in COHORT_SUMMARY_KEYS}


async def backfill_cohort_listing(db: AsyncDatabase, batch: int = 500) -> int:
    """Fill the listing fields of cohort runs stored without them (migration 0003).

    A run lacking ``created_us`` was written before the fields existed; its
    fields are computed from its document and, when completed, its summary (of
    the completion that won, see ``attempt``), exactly as ``create_run`` /
    ``complete_run`` would have. Each update is conditioned on the run still
    lacking the fields and having the status read, so a run that a current
    store completes or fails meanwhile keeps what that store wrote. Idempotent:
    a second call finds nothing to do.

    Returns:
        How many runs were updated.
    """
    from pymongo import UpdateOne

    runs = db[RUNS]
    query = {"kind": {"$eq": "cohort"}, "created_us": {"$exists": False}}
    ids = [row["_id"] async for row in runs.find(query, {"_id": 1})]
    updated = 0
    for chunk in _chunks(ids, batch):
        rows = await runs.find(
            {"_id": {"$in": chunk}},
            {"kind": 1, "status": 1, "created_at": 1, "attempt": 1, "doc": 1},
        ).to_list(None)
        completed = {r["_id"]: r.get("attempt") for r in rows if r["status"] == "completed"}
        summaries: dict[str, Any] = {}
        if completed:
            async for doc in db[SUMMARIES].find({"_id": {"$in": list(completed)}}):
                if doc.get("attempt") == completed[doc["_id"]]:
                    summaries[doc["_id"]] = doc.get("summary")
        ops = [
            UpdateOne(
                {"_id": r["_id"], "status": r["status"], "created_us": {"$exists": False}},
                {"$set": _listing_set(
                    r["kind"], r["created_at"], r.get("doc") or {}, summaries.get(r["_id"]))},
            )
            for r in rows
        ]
        if ops:
            result = await runs.bulk_write(ops, ordered=False)
            updated += result.modified_count
    return updated


def _population_document(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "cycle_id": row["cycle_id"],
        "saved_at": row["saved_at"],
        "genomes": row["genomes"],
        "meta": row["meta"],
    }


def _is_duplicate(exc: BaseException) -> bool:
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        return bool(errors) and all(e.get("code") == _DUPLICATE_KEY for e in errors)
    return False


class MongoStore(Store):
    """The storage port on a MongoDB database (PyMongo ``AsyncMongoClient``).

    Args:
        url: ``mongodb://[user:password@]host[:port][,host...]/[dbname][?options]``
            or ``mongodb+srv://...``. Driver options go in the query string
            (e.g. ``replicaSet=rs0``, ``timeoutMS=10000``,
            ``serverSelectionTimeoutMS=2000``; the store's default server
            selection timeout is 10 s).
        database: database name; default: the URL's path, else ``"cohortlab"``.
        migrate: apply pending migrations (:mod:`migrations`: the indexes the
            store relies on, e.g. the unique ledger key) when opening. Leave on
            unless you run ``cohortlab migrate`` yourself.
        transactions: use multi-document transactions for ``complete_run``,
            ``fail_run`` and ``append_ledger``. ``None`` (default) = when the
            server supports them (a replica set member or ``mongos``).
        client_options: further keyword arguments for ``AsyncMongoClient``
            (e.g. ``event_listeners``, TLS settings); they override URL options.

    Raises:
        StoreError: a bad URL or database name, no server reachable, or a failed
            migration. Passwords are not echoed.

    See the module docstring for the layout and the atomicity guarantees, and
    :class:`Store` for the behaviour of every method.
    """

    def __init__(
        self,
        url: str,
        database: str | None = None,
        *,
        migrate: bool = True,
        transactions: bool | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise StoreError(f"MongoDB URL must be a str, got {type(url).__name__}")
        self._url = url.strip()
        self._shown = _redact(self._url)
        password = _url_password(self._url)
        self._secrets = sorted({password, unquote(password)}, key=len, reverse=True) if password else []
        name = database if database is not None else (_url_database(self._url) or DEFAULT_DATABASE)
        self._database_name = _check_database_name(name)
        self._client: AsyncMongoClient | None = None
        self._db: AsyncDatabase | None = None
        self._transactions = False
        self._closed = False
        self._close_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"cohortlab-mongo-{id(self):x}", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._connect(transactions, dict(client_options or {})))
            if migrate:
                from migrations import apply_migrations

                apply_migrations(self)
        except BaseException:
            self.close()
            raise

    # -- plumbing ----------------------------------------------------------------

    @property
    def database_name(self) -> str:
        """The database this store uses."""
        return self._database_name

    @property
    def url(self) -> str:
        """The URL with any password replaced by ``***``."""
        return self._shown

    @property
    def transactions(self) -> bool:
        """Whether multi-document transactions are used (see the module docstring)."""
        return self._transactions

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"MongoStore({self._shown!r}, database={self._database_name!r}, {state})"

    def _scrub(self, text: str) -> str:
        text = _redact(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the store's loop and wait for it (the sync/async bridge)."""
        if self._closed:
            coro.close()
            raise StoreError(f"store {self._shown!r} is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise StoreError(
                "a MongoStore method was called from the store's own event loop thread; "
                "that would deadlock"
            )
        future = asyncio.run_coroutine_threadsafe(self._guard(coro), self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def _guard(self, coro: Awaitable[T]) -> T:
        """Turn driver errors into :class:`StoreError` (passwords removed)."""
        try:
            return await coro
        except StoreError:
            raise
        except BSONInvalidDocument as exc:  # includes DocumentTooLarge
            raise InvalidDocument(
                f"MongoDB cannot store this document: {self._scrub(str(exc))}"
            ) from None
        except PyMongoError as exc:
            raise StoreError(
                f"MongoDB {self._shown} (database {self._database_name!r}): "
                f"{self._scrub(str(exc))}"
            ) from None

    def run_async(self, fn: Callable[[AsyncDatabase], Awaitable[T]]) -> T:
        """Run ``await fn(database)`` on the store's loop and return its result.

        For administrative code that needs the driver itself (migrations, tests);
        driver errors become :class:`StoreError`.
        """
        async def call() -> T:
            return await fn(self._database())

        return self._call(call())

    def _database(self) -> AsyncDatabase:
        if self._db is None:
            raise StoreError(f"store {self._shown!r} is closed")
        return self._db

    def _coll(self, name: str):  # noqa: ANN202 - AsyncCollection
        return self._database()[name]

    async def _connect(self, transactions: bool | None, extra: dict[str, Any]) -> None:
        options: dict[str, Any] = {"appname": "cohortlab"}
        if "serverselectiontimeoutms" not in self._url.lower():
            options["serverSelectionTimeoutMS"] = 10_000
        options.update(extra)
        try:
            self._client = AsyncMongoClient(self._url, **options)
        except (PyMongoError, ValueError, TypeError) as exc:
            raise StoreError(
                f"MongoDB URL {self._shown!r} is not valid: {self._scrub(str(exc))}; "
                "allowed: mongodb://host:port/dbname"
            ) from None
        self._db = self._client[self._database_name]
        try:
            hello = await self._client.admin.command("hello")
        except PyMongoError as exc:
            reason = str(exc).split(", Timeout:")[0]  # drop the topology dump
            raise StoreError(
                f"cannot reach MongoDB at {self._shown}: {self._scrub(reason)}"
            ) from None
        except Exception as exc:  # noqa: BLE001 - e.g. a server answering the handshake oddly
            raise StoreError(
                f"cannot use the server at {self._shown} as MongoDB: the handshake or "
                f"authentication failed ({type(exc).__name__}: {self._scrub(str(exc))})"
            ) from None
        supported = (
            ("setName" in hello or hello.get("msg") == "isdbgrid")
            and hello.get("logicalSessionTimeoutMinutes") is not None
        )
        self._transactions = supported if transactions is None else bool(transactions)

    async def _atomic(self, body: Callable[[AsyncClientSession | None], Awaitable[T]]) -> T:
        """Run ``body`` in a transaction when transactions are used, else directly.

        Without transactions ``body`` gets ``None`` and must compensate its own
        partial writes on failure.
        """
        if not self._transactions:
            return await body(None)
        assert self._client is not None
        for _ in range(_TXN_RETRIES):
            try:
                async with self._client.start_session() as session:
                    return await session.with_transaction(body)
            except _Retry:
                continue
        raise StoreError(
            f"MongoDB {self._shown}: gave up after {_TXN_RETRIES} attempts; concurrent "
            "writers kept conflicting"
        )

    # -- runs ----------------------------------------------------------------------

    async def _run_row(
        self, run_id: str, session: AsyncClientSession | None = None
    ) -> dict[str, Any]:
        row = await self._coll(RUNS).find_one({"_id": run_id}, session=session)
        if row is None:
            raise RunNotFound(f"no run with run_id {run_id!r}")
        return row

    def create_run(self, run: dict[str, Any]) -> str:
        doc = prepare_run(run)
        row = {
            "_id": doc["run_id"],
            "run_id": doc["run_id"],
            "kind": doc["kind"],
            "status": doc["status"],
            "created_at": doc["created_at"],
            "finished_at": None,
            "data_label": doc["data_label"],
            "reason": None,
            "timings": None,
            "doc": {key: value for key, value in doc.items() if key not in (
                "run_id", "kind", "status", "created_at", "data_label")},
        }
        row.update(_listing_set(doc["kind"], doc["created_at"], row["doc"]))

        async def insert() -> None:
            try:
                await self._coll(RUNS).insert_one(row)
            except DuplicateKeyError:
                raise StoreError(f"a run with run_id {doc['run_id']!r} already exists") from None

        self._call(insert())
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
        check_run_id(run_id)
        # Same order of checks as the reference adapter: the run's state first,
        # then the input (validated here, before anything is written).
        row = self._call(self._run_row(run_id))
        if row["status"] != "running":
            raise RunStateError(
                f"run {run_id!r} is {row['status']!r}; only a 'running' run can be completed"
            )
        results = _Results(summary, agents, trades, ledger, curves, timings, run_id)
        listing = _listing_set(row["kind"], row["created_at"], row["doc"], results.summary)
        self._call(self._atomic(
            lambda session: self._complete(run_id, results, listing, session)))

    async def _complete(
        self,
        run_id: str,
        results: _Results,
        listing: dict[str, Any],
        session: AsyncClientSession | None,
    ) -> None:
        token = uuid.uuid4().hex
        runs = self._coll(RUNS)
        claimed = await runs.update_one(
            {"_id": run_id, "status": "running"}, {"$set": {"attempt": token}}, session=session
        )
        if claimed.matched_count == 0:
            row = await self._run_row(run_id, session)
            raise RunStateError(
                f"run {run_id!r} is {row['status']!r}; only a 'running' run can be completed"
            )
        try:
            # Leftovers of earlier attempts that crashed before compensating.
            for name in _CHILDREN:
                await self._coll(name).delete_many(
                    {"run_id": {"$eq": run_id}, "attempt": {"$nin": [None, token]}},
                    session=session,
                )
            new = await self._new_transactions(run_id, results.ledger, "ledger", session)
            await self._coll(SUMMARIES).insert_one(
                {"_id": run_id, "run_id": run_id, "summary": results.summary, "attempt": token},
                session=session,
            )
            await self._insert_many(AGENTS, [
                {"run_id": run_id, "rank": rank, "agent_id": doc["agent_id"], "doc": doc,
                 "attempt": token}
                for rank, doc in enumerate(results.agents)
            ], session)
            await self._insert_many(TRADES, [
                {"run_id": run_id, "position": position, "agent_id": doc["agent_id"], "doc": doc,
                 "attempt": token}
                for position, doc in enumerate(results.trades)
            ], session)
            await self._insert_ledger(run_id, new, "ledger", session, token)
            curve_rows = []
            for position, (name, array, data) in enumerate(results.curves):
                pieces = [data[i:i + _CHUNK_BYTES] for i in range(0, len(data), _CHUNK_BYTES)]
                for chunk, piece in enumerate(pieces or [b""]):
                    curve_rows.append({
                        "run_id": run_id, "name": name, "position": position, "chunk": chunk,
                        "chunks": len(pieces), "dtype": array.dtype.str,
                        "shape": list(array.shape), "npy": piece, "attempt": token,
                    })
            await self._insert_many(CURVES, curve_rows, session)
            flipped = await runs.update_one(
                {"_id": run_id, "status": "running", "attempt": token},
                {"$set": {"status": "completed", "finished_at": utc_now(),
                          "timings": results.timings, "reason": None, **listing}},
                session=session,
            )
            if flipped.matched_count == 0:
                row = await self._run_row(run_id, session)
                if row["status"] != "running":
                    raise RunStateError(
                        f"run {run_id!r} became {row['status']!r} while it was being completed"
                    )
                raise StoreError(
                    f"run {run_id!r} was being completed by another writer at the same time; "
                    "nothing of this attempt was kept"
                )
        except BaseException as exc:
            if session is not None:
                if _is_duplicate(exc):
                    raise _Retry() from exc
                raise
            await self._compensate(run_id, token, exc)
            if _is_duplicate(exc):
                raise StoreError(
                    f"run {run_id!r} was being completed by another writer at the same time; "
                    "nothing of this attempt was kept"
                ) from None
            raise

    async def _compensate(self, run_id: str, token: str, exc: BaseException) -> None:
        """Delete what a failed completion attempt wrote and release its claim."""
        try:
            for name in _CHILDREN:
                await self._coll(name).delete_many({"run_id": {"$eq": run_id}, "attempt": token})
            await self._coll(RUNS).update_one(
                {"_id": run_id, "status": "running", "attempt": token},
                {"$unset": {"attempt": ""}},
            )
        except PyMongoError as cleanup:  # pragma: no cover - needs a server dying mid-way
            exc.add_note(
                f"cleaning up the failed completion of run {run_id!r} also failed "
                f"({self._scrub(str(cleanup))}); the leftovers are invisible to readers "
                "and removed by the next complete_run"
            )

    async def _insert_many(
        self, name: str, rows: list[dict[str, Any]], session: AsyncClientSession | None
    ) -> None:
        if rows:
            await self._coll(name).insert_many(rows, ordered=True, session=session)

    def fail_run(self, run_id: str, reason: str, timings: dict[str, Any] | None = None) -> None:
        reason = require_str(reason, "fail_run reason")
        timings_doc = (
            None if timings is None else to_document(require_mapping(timings, "timings"), "timings")
        )
        check_run_id(run_id)
        # The listing fields again from the run document alone (no summary: a
        # failed run has no metrics); the run is read first for its kind and doc.
        row = self._call(self._run_row(run_id))
        listing = _listing_set(row["kind"], row["created_at"], row["doc"])

        async def body(session: AsyncClientSession | None) -> None:
            # Status first, children after: a concurrent append_ledger or
            # complete_run sees "failed" and backs off.
            flipped = await self._coll(RUNS).update_one(
                {"_id": run_id, "status": {"$in": ["running", "failed"]}},
                {"$set": {"status": "failed", "finished_at": utc_now(), "reason": reason,
                          "timings": timings_doc, **listing},
                 "$unset": {"attempt": ""}},
                session=session,
            )
            if flipped.matched_count == 0:
                await self._run_row(run_id, session)  # RunNotFound
                raise RunStateError(
                    f"run {run_id!r} is 'completed'; a completed run cannot be failed "
                    "(its results would be deleted)"
                )
            for name in _CHILDREN:
                await self._coll(name).delete_many({"run_id": {"$eq": run_id}}, session=session)

        self._call(self._atomic(body))

    def get_run(self, run_id: str) -> dict[str, Any]:
        check_run_id(run_id)

        async def read() -> dict[str, Any]:
            row = await self._run_row(run_id)
            summaries = await self._summaries([row])
            return _run_document(row, summaries.get(run_id))

        return self._call(read())

    async def _summaries(self, rows: list[Mapping[str, Any]]) -> dict[str, Any]:
        """Summaries of the completed runs among ``rows`` (run_id -> summary)."""
        wanted = {r["_id"]: r.get("attempt") for r in rows if r["status"] == "completed"}
        found: dict[str, Any] = {}
        for ids in _chunks(list(wanted)):
            async for doc in self._coll(SUMMARIES).find({"_id": {"$in": ids}}):
                if doc.get("attempt") == wanted[doc["_id"]]:
                    found[doc["_id"]] = doc["summary"]
        return found

    def list_runs(
        self,
        limit: int = 20,
        before: str | None = None,
        status: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        limit = check_limit(limit)
        query: dict[str, Any] = {}
        if status is not None:
            if status not in RUN_STATUSES:
                raise InvalidDocument(
                    f"status {status!r} is not allowed; allowed: {', '.join(RUN_STATUSES)} or None"
                )
            query["status"] = status
        if kind is not None:
            if kind not in RUN_KINDS:
                raise InvalidDocument(
                    f"kind {kind!r} is not allowed; allowed: {', '.join(RUN_KINDS)} or None"
                )
            query["kind"] = kind
        if before is not None:
            check_run_id(before)

        async def read() -> list[dict[str, Any]]:
            runs = self._coll(RUNS)
            if before is not None:
                cursor = await runs.find_one({"_id": before}, {"created_at": 1, "run_id": 1})
                if cursor is None:
                    raise RunNotFound(f"list_runs cursor before={before!r} names no run")
                query.update(_keyset(cursor["created_at"], "run_id", cursor["run_id"]))
            rows = await runs.find(query).sort(
                [("created_at", -1), ("run_id", -1)]).limit(limit).to_list(None)
            summaries = await self._summaries(rows)
            return [_run_document(row, summaries.get(row["_id"])) for row in rows]

        return self._call(read())

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
        # Equalities first, then the created_us range: each combination is one
        # range of a migration-0003 index, read in listing order (see the
        # module docstring for why "$eq" and integers).
        query: dict[str, Any] = {"kind": {"$eq": "cohort"}}
        if date is not None:
            query["day"] = {"$eq": int(date.replace("-", ""))}
        if bankroll is not None:
            query["bankroll"] = {"$eq": bankroll}
        if created_after is not None:
            query["created_us"] = {"$gt": created_micros(created_after)}

        async def read() -> dict[str, Any]:
            runs = self._coll(RUNS)
            rows = await runs.find(query, _SUMMARY_PROJECTION).sort(
                [("created_us", -1), ("run_id", -1)]).skip(offset).limit(limit).to_list(None)
            counted = await self._database().command({"count": RUNS, "query": query})
            return {"items": [_summary_row(row) for row in rows], "total": int(counted["n"])}

        return self._call(read())

    # -- results -----------------------------------------------------------------

    def get_agents(self, run_id: str) -> list[dict[str, Any]]:
        check_run_id(run_id)

        async def read() -> list[dict[str, Any]]:
            row = await self._run_row(run_id)
            if row["status"] != "completed":
                return []
            cursor = self._coll(AGENTS).find(
                {"run_id": {"$eq": run_id}, "attempt": row.get("attempt")}).sort("rank", 1)
            return [doc["doc"] async for doc in cursor]

        return self._call(read())

    def get_trades(self, run_id: str, agent_id: str | None = None) -> list[dict[str, Any]]:
        if agent_id is not None:
            require_str(agent_id, "agent_id")
        check_run_id(run_id)

        async def read() -> list[dict[str, Any]]:
            row = await self._run_row(run_id)
            if row["status"] != "completed":
                return []
            query: dict[str, Any] = {"run_id": {"$eq": run_id}}
            if agent_id is not None:
                query["agent_id"] = agent_id
            query["attempt"] = row.get("attempt")
            cursor = self._coll(TRADES).find(query).sort("position", 1)
            return [doc["doc"] async for doc in cursor]

        return self._call(read())

    def get_ledger(self, run_id: str) -> list[dict[str, Any]]:
        check_run_id(run_id)

        async def read() -> list[dict[str, Any]]:
            row = await self._run_row(run_id)
            if row["status"] == "failed":
                return []
            tags: list[Any] = [None]
            if row["status"] == "completed":
                tags.append(row.get("attempt"))
            cursor = self._coll(LEDGER).find(
                {"run_id": {"$eq": run_id}, "attempt": {"$in": tags}}).sort("seq", 1)
            return [doc["doc"] async for doc in cursor]

        return self._call(read())

    def get_curves(self, run_id: str) -> dict[str, np.ndarray]:
        check_run_id(run_id)

        async def read() -> list[dict[str, Any]]:
            row = await self._run_row(run_id)
            if row["status"] != "completed":
                return []
            cursor = self._coll(CURVES).find(
                {"run_id": {"$eq": run_id}, "attempt": row.get("attempt")},
                {"name": 1, "position": 1, "chunk": 1, "npy": 1},
            )
            return await cursor.to_list(None)

        rows = self._call(read())
        rows.sort(key=lambda r: (r["position"], r["chunk"]))
        parts: dict[str, list[bytes]] = {}
        for r in rows:
            parts.setdefault(r["name"], []).append(bytes(r["npy"]))
        return {name: decode_array(b"".join(pieces)) for name, pieces in parts.items()}

    # -- ledger ------------------------------------------------------------------------

    def append_ledger(self, run_id: str, txns: list[dict[str, Any]]) -> int:
        check_run_id(run_id)
        row = self._call(self._run_row(run_id))
        if row["status"] == "failed":
            raise RunStateError(f"run {run_id!r} failed; its ledger must stay empty")
        prepared = _prepare_ledger(txns, "txns", run_id)
        return self._call(self._atomic(lambda session: self._append(run_id, prepared, session)))

    async def _append(
        self,
        run_id: str,
        prepared: list[tuple[int, dict[str, Any]]],
        session: AsyncClientSession | None,
    ) -> int:
        row = await self._run_row(run_id, session)
        status = row["status"]
        if status == "failed":
            raise RunStateError(f"run {run_id!r} failed; its ledger must stay empty")
        new = await self._new_transactions(run_id, prepared, "txns", session)
        if new and status == "completed":
            raise RunStateError(
                f"run {run_id!r} is 'completed'; its ledger is closed "
                f"({len(new)} of the transactions are new)"
            )
        try:
            inserted = await self._insert_ledger(run_id, new, "txns", session, None)
        except BaseException as exc:
            if session is not None and _is_duplicate(exc):
                raise _Retry() from exc
            raise
        if session is None and inserted:
            # Without a transaction a fail_run may have run meanwhile: it wins.
            after = await self._run_row(run_id)
            if after["status"] == "failed":
                await self._coll(LEDGER).delete_many({"_id": {"$in": inserted}})
                raise RunStateError(f"run {run_id!r} failed; its ledger must stay empty")
        return len(inserted)

    async def _new_transactions(
        self,
        run_id: str,
        prepared: list[tuple[int, dict[str, Any]]],
        where: str,
        session: AsyncClientSession | None,
    ) -> list[tuple[int, dict[str, Any]]]:
        """Drop transactions stored with identical content; refuse conflicting ones.

        Raises StoreError for a txn_id stored with other content, or a seq that
        another stored transaction uses.
        """
        ledger = self._coll(LEDGER)
        stored: dict[str, Any] = {}
        for ids in _chunks([txn["txn_id"] for _, txn in prepared]):
            async for doc in ledger.find(
                {"run_id": {"$eq": run_id}, "txn_id": {"$in": ids}}, {"txn_id": 1, "doc": 1},
                session=session,
            ):
                stored[doc["txn_id"]] = doc["doc"]
        new = []
        for i, txn in prepared:
            if txn["txn_id"] in stored:
                if stored[txn["txn_id"]] != txn:
                    raise _conflict_error(where, i, txn["txn_id"], run_id)
                continue
            new.append((i, txn))
        by_seq = {txn["seq"]: (i, txn) for i, txn in new}
        raced: set[str] = set()
        for seqs in _chunks(list(by_seq)):
            async for taken in ledger.find(
                {"run_id": {"$eq": run_id}, "seq": {"$in": seqs}},
                {"seq": 1, "txn_id": 1, "doc": 1},
                session=session,
            ):
                i, txn = by_seq[taken["seq"]]
                if taken["txn_id"] != txn["txn_id"]:
                    raise _seq_error(where, i, txn, run_id)
                # Stored by a concurrent writer between the two reads.
                if taken["doc"] != txn:
                    raise _conflict_error(where, i, txn["txn_id"], run_id)
                raced.add(txn["txn_id"])
        return [(i, txn) for i, txn in new if txn["txn_id"] not in raced]

    async def _insert_ledger(
        self,
        run_id: str,
        new: list[tuple[int, dict[str, Any]]],
        where: str,
        session: AsyncClientSession | None,
        token: str | None,
    ) -> list[ObjectId]:
        """Insert transactions; returns the ``_id`` of those inserted.

        A duplicate key on a transaction stored meanwhile with identical content
        (a concurrent writer of the same batch) is ignored. Any other failure
        deletes what this call inserted (when not in a transaction) and raises.
        """
        if not new:
            return []
        rows = []
        for _, txn in new:
            row = {"_id": ObjectId(), "run_id": run_id, "txn_id": txn["txn_id"], "seq": txn["seq"],
                   "bar": txn["bar"], "time": txn["time"], "kind": txn["kind"], "doc": txn}
            if token is not None:
                row["attempt"] = token
            rows.append(row)
        try:
            await self._coll(LEDGER).insert_many(rows, ordered=False, session=session)
            return [row["_id"] for row in rows]
        except BulkWriteError as exc:
            if session is not None:
                raise
            failed = {e["index"]: e for e in exc.details.get("writeErrors", [])}
        except BaseException as exc:
            # E.g. the connection dropped half-way: some rows may be stored.
            if session is None and token is None:  # complete_run compensates by token itself
                try:
                    await self._coll(LEDGER).delete_many(
                        {"_id": {"$in": [r["_id"] for r in rows]}})
                except PyMongoError as cleanup:  # pragma: no cover - server gone
                    exc.add_note(f"removing the partly appended batch failed too: {cleanup}")
            raise
        inserted = [row["_id"] for k, row in enumerate(rows) if k not in failed]
        problem: BaseException | None = None
        for k in sorted(failed):
            error = failed[k]
            i, txn = new[k]
            if error.get("code") != _DUPLICATE_KEY:
                problem = StoreError(
                    f"{where}[{i}] (txn_id {txn['txn_id']!r}) could not be stored: "
                    f"{self._scrub(str(error.get('errmsg')))}"
                )
                break
            # Which unique key was hit? Read instead of parsing server messages.
            same = await self._coll(LEDGER).find_one(
                {"run_id": {"$eq": run_id}, "txn_id": txn["txn_id"]}, {"doc": 1}
            )
            if same is None:
                problem = _seq_error(where, i, txn, run_id)
                break
            if same["doc"] != txn:
                problem = _conflict_error(where, i, txn["txn_id"], run_id)
                break
        if problem is not None:
            if token is None and inserted:  # complete_run compensates by token itself
                await self._coll(LEDGER).delete_many({"_id": {"$in": inserted}})
            raise problem
        return inserted

    # -- hall of fame ----------------------------------------------------------------------

    async def _insert_numbered(
        self,
        name: str,
        field: str,
        make: Callable[[int], dict[str, Any]],
        scope: dict[str, Any] | None = None,
        exists: Callable[[], Awaitable[bool]] | None = None,
    ) -> int:
        """Insert ``make(n)`` where ``n`` is one more than the largest ``field``
        within ``scope`` (0 for the first), retrying when a concurrent writer took
        the same number (the unique index on ``field`` decides). ``exists`` tells a
        duplicate of another unique key (then StoreError is left to the caller)."""
        coll = self._coll(name)
        for _ in range(_INSERT_RETRIES):
            last = await coll.find_one(scope or {}, {field: 1}, sort=[(field, -1)])
            number = 0 if last is None else int(last[field]) + 1
            try:
                await coll.insert_one(make(number))
                return number
            except DuplicateKeyError:
                if exists is not None and await exists():
                    raise
                await asyncio.sleep(0)
        raise StoreError(f"MongoDB {self._shown}: could not number a new {name} document")

    def save_hall_of_fame(self, entries: list[dict[str, Any]], source: str,
                          market: str | None = None) -> None:
        docs, source = prepare_hall_of_fame(entries, source)
        market = check_mode(market, "hall of fame market")
        self._call(self._insert_numbered(
            HALL_OF_FAME, "version",
            lambda n: {"version": n, "saved_at": utc_now(), "source": source, "market": market,
                       "entries": docs},
        ))

    def latest_hall_of_fame(self, market: str | None = None) -> list[dict[str, Any]] | None:
        market = check_mode(market, "market")

        async def read() -> Any:
            query = {} if market is None else {"market": {"$eq": market}}
            return await self._coll(HALL_OF_FAME).find_one(
                query, {"entries": 1}, sort=[("version", -1)])

        row = self._call(read())
        return None if row is None else row["entries"]

    # -- audit ---------------------------------------------------------------------------

    def record_audit(self, event: dict[str, Any]) -> None:
        doc = prepare_audit_event(event)

        async def insert() -> None:
            # event_id (= _id) breaks ties of ``at`` in insertion order; a field of
            # its own because nx-27017 cannot index ``_id`` in a compound index.
            event_id = ObjectId()
            await self._coll(AUDIT).insert_one({"_id": event_id, "event_id": event_id,
                                                "at": doc["at"], "kind": doc["kind"],
                                                "actor": doc["actor"], "doc": doc})

        self._call(insert())

    def list_audit(self, limit: int = 50) -> list[dict[str, Any]]:
        limit = check_limit(limit)

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(AUDIT).find({}, {"doc": 1}).sort(
                [("at", -1), ("event_id", -1)]).limit(limit)
            return [row["doc"] async for row in cursor]

        return self._call(read())

    # -- learning: populations ------------------------------------------------------------

    def save_population(
        self, cycle_id: str, genomes: list[dict[str, Any]], meta: dict[str, Any]
    ) -> None:
        cycle_id, docs, meta_doc, mode, market = prepare_population(cycle_id, genomes, meta)
        coll = self._coll(POPULATIONS)

        async def exists() -> bool:
            return await coll.find_one({"_id": cycle_id}, {"_id": 1}) is not None

        async def insert() -> None:
            try:
                await self._insert_numbered(
                    POPULATIONS, "seq",
                    lambda n: {"_id": cycle_id, "cycle_id": cycle_id, "seq": n,
                               "saved_at": utc_now(), "mode": mode, "market": market,
                               "genomes": docs, "meta": meta_doc},
                    exists=exists,
                )
            except DuplicateKeyError:
                raise StoreError(
                    f"a population with cycle_id {cycle_id!r} already exists; "
                    "populations are never overwritten"
                ) from None

        self._call(insert())

    def latest_population(self, mode: str | None = None,
                          market: str | None = None) -> dict[str, Any] | None:
        mode = check_mode(mode)
        market = check_mode(market, "market")

        async def read() -> Any:
            query = {k: {"$eq": v} for k, v in (("market", market), ("mode", mode)) if v is not None}
            return await self._coll(POPULATIONS).find_one(query, sort=[("seq", -1)])

        row = self._call(read())
        return None if row is None else _population_document(row)

    def get_population(self, cycle_id: str) -> dict[str, Any]:
        check_id(cycle_id, "cycle_id")

        async def read() -> Any:
            return await self._coll(POPULATIONS).find_one({"_id": cycle_id})

        row = self._call(read())
        if row is None:
            raise NotFound(f"no population with cycle_id {cycle_id!r}")
        return _population_document(row)

    # -- learning: knowledge base ----------------------------------------------------------

    def save_knowledge(self, record: dict[str, Any]) -> str:
        doc = prepare_knowledge(record)

        async def insert() -> None:
            try:
                await self._coll(KNOWLEDGE).insert_one({
                    "_id": doc["cycle_id"], "cycle_id": doc["cycle_id"], "mode": doc["mode"],
                    "created_at": doc["created_at"], "doc": doc,
                })
            except DuplicateKeyError:
                raise StoreError(
                    f"a knowledge record with cycle_id {doc['cycle_id']!r} already exists; "
                    "knowledge records are never overwritten"
                ) from None

        self._call(insert())
        return doc["cycle_id"]

    def list_knowledge(
        self, limit: int = 50, before: str | None = None, mode: str | None = None
    ) -> list[dict[str, Any]]:
        limit = check_limit(limit)
        mode = check_mode(mode)
        if before is not None:
            check_id(before, "list_knowledge cursor before")

        async def read() -> list[dict[str, Any]]:
            coll = self._coll(KNOWLEDGE)
            query: dict[str, Any] = {} if mode is None else {"mode": mode}
            if before is not None:
                cursor = await coll.find_one({"_id": before}, {"created_at": 1, "cycle_id": 1})
                if cursor is None:
                    raise NotFound(
                        f"list_knowledge cursor before={before!r} names no knowledge record"
                    )
                query.update(_keyset(cursor["created_at"], "cycle_id", cursor["cycle_id"]))
            rows = coll.find(query, {"doc": 1}).sort(
                [("created_at", -1), ("cycle_id", -1)]).limit(limit)
            return [row["doc"] async for row in rows]

        return self._call(read())

    def get_knowledge(self, cycle_id: str) -> dict[str, Any]:
        check_id(cycle_id, "cycle_id")

        async def read() -> Any:
            return await self._coll(KNOWLEDGE).find_one({"_id": cycle_id}, {"doc": 1})

        row = self._call(read())
        if row is None:
            raise NotFound(f"no knowledge record with cycle_id {cycle_id!r}")
        return row["doc"]

    # -- learning: search trials ------------------------------------------------------------

    def save_trial(self, study: str, trial: dict[str, Any]) -> int:
        study, doc = prepare_trial(study, trial)
        return self._call(self._insert_numbered(
            TRIALS, "index",
            lambda n: {"study": study, "index": n, "value": doc["value"], "saved_at": utc_now(),
                       "doc": doc},
            scope={"study": study},
        ))

    def list_trials(self, study: str) -> list[dict[str, Any]]:
        check_id(study, "study")

        async def read() -> list[dict[str, Any]]:
            cursor = self._coll(TRIALS).find({"study": study}).sort("index", 1)
            return [
                {"index": row["index"], **row["doc"], "saved_at": row["saved_at"]}
                async for row in cursor
            ]

        return self._call(read())

    def list_studies(self) -> list[dict[str, Any]]:
        async def read() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            groups = await self._coll(TRIALS).aggregate([
                {"$group": {"_id": "$study", "n": {"$sum": 1}, "best": {"$min": "$value"},
                            "last": {"$max": "$saved_at"}}},
            ])
            trials = await groups.to_list(None)
            metas = await self._coll(STUDIES).find({}).to_list(None)
            return trials, metas

        trials, metas = self._call(read())
        studies: dict[str, dict[str, Any]] = {}
        for row in trials:
            studies[row["_id"]] = {
                "study": row["_id"],
                "trials": int(row["n"]),
                "best_value": float(row["best"]),
                "updated_at": row["last"],
                "meta": None,
            }
        for row in metas:
            entry = studies.setdefault(row["_id"], {
                "study": row["_id"],
                "trials": 0,
                "best_value": None,
                "updated_at": row["updated_at"],
                "meta": None,
            })
            entry["meta"] = row["meta"]
            entry["updated_at"] = max(entry["updated_at"], row["updated_at"])
        ordered = sorted(studies.values(), key=lambda e: e["study"])
        ordered.sort(key=lambda e: e["updated_at"], reverse=True)
        return ordered

    def save_study_meta(
        self, study: str, meta: dict[str, Any], *, replace: bool = False
    ) -> None:
        study, meta_doc = prepare_study_meta(study, meta)

        async def save() -> None:
            coll = self._coll(STUDIES)
            now = utc_now()
            try:
                await coll.insert_one(
                    {"_id": study, "meta": meta_doc, "created_at": now, "updated_at": now})
                return
            except DuplicateKeyError:
                pass
            row = await coll.find_one({"_id": study})
            if not replace:
                check_study_meta(study, row["meta"], meta_doc)  # raises if they differ
                return
            await coll.update_one(
                {"_id": study}, {"$set": {"meta": meta_doc, "updated_at": now}})

        self._call(save())

    def get_study_meta(self, study: str) -> dict[str, Any] | None:
        check_id(study, "study")

        async def read() -> Any:
            return await self._coll(STUDIES).find_one({"_id": study}, {"meta": 1})

        row = self._call(read())
        return None if row is None else row["meta"]

    # -- lifetime -------------------------------------------------------------------------

    def close(self) -> None:
        if threading.current_thread() is self._thread:
            raise StoreError("a MongoStore cannot be closed from its own event loop thread")
        with self._close_lock:
            if self._closed:
                return
            client = self._client
            if client is not None and self._thread.is_alive():
                try:
                    asyncio.run_coroutine_threadsafe(client.close(), self._loop).result(timeout=10)
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
            self._closed = True
            self._client = None
            self._db = None
            if self._thread.is_alive():
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=10)
            if not self._thread.is_alive():
                self._loop.close()


def _keyset(created_at: str, key: str, value: str) -> dict[str, Any]:
    """Documents strictly after ``(created_at, key)`` in newest-first order."""
    return {"$or": [
        {"created_at": {"$lt": created_at}},
        {"created_at": created_at, key: {"$lt": value}},
    ]}
