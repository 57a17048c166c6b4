"""Fixtures of the store contract suite: one store per adapter.

Every test taking the ``store`` or ``open_same`` fixture runs against every
adapter in ``ADAPTERS``. To add an adapter, add one entry there: a function of
the pytest ``request`` and ``tmp_path`` returning a zero-argument opener that
opens a store on one fresh, private database (each call opens that same
database again).

The ``mongo`` adapter runs against an nx-27017 server (a MongoDB wire-protocol
server on SQLite) started once per session on a free local port with its own
data folder, or against the real server named by ``COHORTLAB_TEST_MONGODB_URL``
(:mod:`tests.manager.store.mongo_server`); every test gets a fresh database.
Cases that fail only because of an nx-27017 gap are marked
``xfail(strict=True)`` under nx-27017 (``NX_27017_GAPS``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from manager.store import SQLiteStore, Store
from tests.manager.store.builders import Opener
from tests.manager.store.mongo_server import MongoServer, fresh_database, shared_mongo_server


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """The real server of ``COHORTLAB_TEST_MONGODB_URL``, else an nx-27017 subprocess."""
    with shared_mongo_server(tmp_path_factory) as server:
        yield server


def _sqlite_adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    path = tmp_path / "contract-sqlite" / "store.db"
    path.parent.mkdir()
    return lambda: SQLiteStore(path)


def _mongo_adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    from manager.store.mongo import MongoStore

    server: MongoServer = request.getfixturevalue("mongo_server")
    database = fresh_database()
    request.addfinalizer(lambda: server.drop(database))
    gap = NX_27017_GAPS.get(request.node.name) or NX_27017_GAPS.get(request.node.originalname)
    if server.nx and gap:
        request.applymarker(pytest.mark.xfail(reason=f"nx-27017 gap: {gap}", strict=True))
    return lambda: MongoStore(server.url, database=database)


# Contract cases that fail on nx-27017 only because of a gap of nx-27017 (the
# adapter is right for MongoDB): test name (with parameters, or without for all
# of them) -> the gap. Each is listed in the README's MongoDB section.
NX_27017_GAPS: dict[str, str] = {}


ADAPTERS: dict[str, Callable[[pytest.FixtureRequest, Path], Opener]] = {
    "sqlite": _sqlite_adapter,
    "mongo": _mongo_adapter,
}


@pytest.fixture(params=sorted(ADAPTERS))
def open_same(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opener of stores on one fresh database of the parametrised adapter."""
    opener = ADAPTERS[request.param](request, tmp_path)
    opened: list[Store] = []

    def make() -> Store:
        store = opener()
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(open_same: Opener) -> Store:
    """A store on a fresh database of each adapter."""
    return open_same()


@pytest.fixture
def mongo(mongo_server: MongoServer) -> Iterator[Callable[..., Any]]:
    """Opener of MongoStores on one fresh database (keyword arguments are passed on)."""
    from manager.store.mongo import MongoStore

    database = fresh_database()
    opened: list[Store] = []

    def make(**kwargs: Any) -> Any:
        store = MongoStore(mongo_server.url, database=database, **kwargs)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()
    mongo_server.drop(database)
