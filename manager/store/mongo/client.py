"""The MongoDB adapter's client: URL and database name, the private event loop
that runs PyMongo's async client for the synchronous port, error translation,
transactions, closing (see :mod:`manager.store.mongo` for why a loop in a thread).

The aggregate mixins (:mod:`~manager.store.mongo.runs`,
:mod:`~manager.store.mongo.ledger`, :mod:`~manager.store.mongo.learning`,
:mod:`~manager.store.mongo.audit`) submit their coroutines with
:meth:`MongoClientBase._call` and run multi-document writes with
:meth:`MongoClientBase._atomic`.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote

from bson.errors import InvalidDocument as BSONInvalidDocument
from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from manager.store.errors import InvalidDocument, StoreError
from manager.store.mongo.names import DEFAULT_DATABASE
from manager.store.schema import migrate_schema

__all__ = ["DUPLICATE_KEY", "IN_BATCH", "MongoClientBase", "Retry", "chunks", "is_duplicate",
           "keyset", "redact"]

T = TypeVar("T")

IN_BATCH = 1000
"""Ids per ``$in`` query."""
TXN_RETRIES = 5
"""Attempts of a transaction that keeps meeting concurrent writers."""
DUPLICATE_KEY = 11000
"""The server's error code of a unique-index violation."""
_DB_NAME_BAD = re.compile(r'[/\\. "$*<>:|?\x00]')
_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
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


def chunks(items: list[T], size: int = IN_BATCH) -> Iterable[list[T]]:
    """``items`` in lists of at most ``size`` (ids per ``$in`` query)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def keyset(created_at: str, key: str, value: str) -> dict[str, Any]:
    """Documents strictly after ``(created_at, key)`` in newest-first order."""
    return {"$or": [
        {"created_at": {"$lt": created_at}},
        {"created_at": created_at, key: {"$lt": value}},
    ]}


class Retry(Exception):
    """A write inside a transaction met a concurrent writer; run the transaction again."""


def is_duplicate(exc: BaseException) -> bool:
    """Whether ``exc`` is a duplicate-key error (also every error of a bulk write)."""
    if isinstance(exc, DuplicateKeyError):
        return True
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        return bool(errors) and all(e.get("code") == DUPLICATE_KEY for e in errors)
    return False


class MongoClientBase:
    """Connects to MongoDB and runs the port's coroutines on a private event loop.

    Args:
        url: ``mongodb://[user:password@]host[:port][,host...]/[dbname][?options]``
            or ``mongodb+srv://...``. Driver options go in the query string
            (e.g. ``replicaSet=rs0``, ``timeoutMS=10000``,
            ``serverSelectionTimeoutMS=2000``; the default server selection
            timeout is 10 s).
        database: database name; default: the URL's path, else ``"cohortlab"``.
        migrate: apply the pending migrations (the installed migrator of
            :mod:`manager.store.schema`: the indexes the store relies on, e.g.
            the unique ledger key) when opening. Leave on unless you run
            ``cohortlab migrate`` yourself.
        transactions: use multi-document transactions for ``complete_run``,
            ``fail_run`` and ``append_ledger``. ``None`` (default) = when the
            server supports them (a replica set member or ``mongos``).
        client_options: further keyword arguments for ``AsyncMongoClient``
            (e.g. ``event_listeners``, TLS settings); they override URL options.

    Raises:
        StoreError: a bad URL or database name, no server reachable, or a failed
            migration. Passwords are not echoed.
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
        self._shown = redact(self._url)
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
                migrate_schema(self)  # type: ignore[arg-type]  # a Store: see MongoStore
        except BaseException:
            self.close()
            raise

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
        """Whether multi-document transactions are used (see :mod:`manager.store.mongo`)."""
        return self._transactions

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"{type(self).__name__}({self._shown!r}, database={self._database_name!r}, {state})"

    def _scrub(self, text: str) -> str:
        text = redact(text)
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
        for _ in range(TXN_RETRIES):
            try:
                async with self._client.start_session() as session:
                    return await session.with_transaction(body)
            except Retry:
                continue
        raise StoreError(
            f"MongoDB {self._shown}: gave up after {TXN_RETRIES} attempts; concurrent "
            "writers kept conflicting"
        )

    def close(self) -> None:
        """Close the client and stop the store's event loop thread; idempotent."""
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
