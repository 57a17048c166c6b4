"""Fixtures of the migration tests: a fresh, unmigrated database of each adapter.

The MongoDB side runs against the session's server
(:mod:`tests.manager.store.mongo_server`: nx-27017, or
``COHORTLAB_TEST_MONGODB_URL``), shared with the store contract suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from manager.store import SQLiteStore
from tests.manager.store.mongo_server import (
    MongoServer,
    fresh_database,
    shared_mongo_server,
    with_database,
)
from tests.migrations.targets import Target, mongo_schema, sqlite_schema


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """The real server of ``COHORTLAB_TEST_MONGODB_URL``, else an nx-27017 subprocess."""
    with shared_mongo_server(tmp_path_factory) as server:
        yield server


@pytest.fixture(params=["sqlite", "mongo"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A fresh, unmigrated database of each adapter."""
    if request.param == "sqlite":
        path = tmp_path / "m.db"
        made = Target("sqlite", f"sqlite:///{path}", lambda: SQLiteStore(path, migrate=False),
                      sqlite_schema)
    else:
        from manager.store.mongo import MongoStore

        server: MongoServer = request.getfixturevalue("mongo_server")
        database = fresh_database()
        made = Target("mongo", with_database(server.url, database),
                      lambda: MongoStore(server.url, database=database, migrate=False), mongo_schema)
        request.addfinalizer(lambda: server.drop(database))
    yield made
    for store in made.opened:
        store.close()
