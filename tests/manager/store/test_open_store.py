"""``open_store`` (URL parsing, adapters, migrating on open) and the store settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from manager.settings import Settings, get_settings
from manager.store import RunNotFound, SQLiteStore, StoreError, open_store
from tests.manager.store.builders import make_run
from tests.manager.store.mongo_server import MongoServer, fresh_database, free_port, with_database


# -- open_store and settings -------------------------------------------------------


def test_open_store_relative_url_creates_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///nested/dir/runs.db") as store:
        assert isinstance(store, SQLiteStore)
        store.create_run(make_run(run_id="rel"))
    assert (tmp_path / "nested" / "dir" / "runs.db").is_file()
    with open_store("sqlite:///./nested/dir/runs.db") as store:
        assert store.get_run("rel")["run_id"] == "rel"


def test_open_store_absolute_url(tmp_path: Path) -> None:
    target = tmp_path / "abs" / "deeper" / "x.db"
    url = f"sqlite:///{target}"
    assert url.startswith("sqlite:////")
    with open_store(url) as store:
        store.create_run(make_run(run_id="abs"))
    assert target.is_file()
    with SQLiteStore(target) as store:
        assert store.get_run("abs")["run_id"] == "abs"


def test_open_store_memory_databases_are_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///:memory:") as one, open_store("SQLITE:///:memory:") as two:
        one.create_run(make_run(run_id="mem"))
        assert one.get_run("mem")["status"] == "running"
        with pytest.raises(RunNotFound):
            two.get_run("mem")
    assert list(tmp_path.iterdir()) == []


def test_open_store_none_reads_cohortlab_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "env" / "store.db"
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{target}")
    with open_store(None) as store:
        store.create_run(make_run(run_id="env"))
    assert target.is_file()
    with open_store() as store:
        assert store.get_run("env")["run_id"] == "env"


def test_open_store_default_is_cohortlab_db_in_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COHORTLAB_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    with open_store() as store:
        store.create_run(make_run())
    assert (tmp_path / "cohortlab.db").is_file()


def test_open_store_mongodb_selects_the_mongodb_adapter(mongo_server: MongoServer) -> None:
    from manager.store.mongo import MongoStore

    database = fresh_database()
    try:
        with open_store(with_database(mongo_server.url, database)) as store:
            assert isinstance(store, MongoStore)
            assert store.database_name == database
            run_id = store.create_run(make_run())
        with open_store("  " + with_database(mongo_server.url, database) + "  ") as store:
            assert store.get_run(run_id)["status"] == "running"
        # No path: the default database (opened without migrating, so nothing is written).
        with open_store(with_database(mongo_server.url, ""), migrate=False) as store:
            assert store.database_name == "cohortlab"
    finally:
        mongo_server.drop(database)


def test_open_store_mongodb_unreachable_is_a_store_error_without_the_password() -> None:
    url = f"mongodb://ops:hunter2@127.0.0.1:{free_port()}/db?serverSelectionTimeoutMS=200"
    with pytest.raises(StoreError, match="cannot reach MongoDB") as info:
        open_store(url)
    assert "hunter2" not in str(info.value)
    assert "ops:***@127.0.0.1" in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mongodb://127.0.0.1:1/bad.name", "database name 'bad.name' is not valid"),
        ("mongodb://127.0.0.1:1/" + "x" * 64, "is not valid"),
        ("mongodb://u:hunter2@127.0.0.1:notaport/db", "URL .* is not valid: Port contains non-digit"),
        ("mongodb://u:hunter2@/db", "URL .* is not valid: Empty host"),
    ],
)
def test_open_store_mongodb_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        open_store(url)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://user:s3cret@db/x", r"'postgresql://user:\*\*\*@db/x' has an unsupported scheme"),
        ("redis://localhost:6379/0", "'redis://localhost:6379/0' has an unsupported scheme"),
        ("cohortlab.db", "'cohortlab.db' has an unsupported scheme"),
        ("sqlite:cohortlab.db", "unsupported scheme"),
        ("", "unsupported scheme"),
        ("sqlite://host/x.db", "names a host"),
        ("sqlite:///", "has no database path"),
        ("sqlite:///x.db?mode=ro", "query string"),
    ],
)
def test_open_store_refuses_other_urls(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as info:
        open_store(url)
    assert "sqlite:///relative/path.db, sqlite:////absolute/path.db, sqlite:///:memory:" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_open_store_refuses_non_string() -> None:
    with pytest.raises(StoreError, match="must be a str"):
        open_store(Path("x.db"))  # type: ignore[arg-type]


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STORE", "REDIS_URL", "BROKER_URL", "DATA_DIR"):
        monkeypatch.delenv(f"COHORTLAB_{name}", raising=False)
    defaults = get_settings()
    assert defaults.store == "sqlite:///./cohortlab.db"
    assert defaults.redis_url is None and defaults.broker_url is None and defaults.data_dir is None

    monkeypatch.setenv("COHORTLAB_STORE", "sqlite:////srv/runs.db")
    monkeypatch.setenv("COHORTLAB_REDIS_URL", "redis://cache:6379/0")
    monkeypatch.setenv("COHORTLAB_BROKER_URL", "")
    monkeypatch.setenv("COHORTLAB_DATA_DIR", "/data/bars")
    current = get_settings()  # a fresh read, not a cached object
    assert current.store == "sqlite:////srv/runs.db"
    assert current.redis_url == "redis://cache:6379/0"
    assert current.broker_url is None
    assert current.data_dir == "/data/bars"

    monkeypatch.setenv("COHORTLAB_STORE", "  ")
    with pytest.raises(ValidationError, match="COHORTLAB_STORE is empty"):
        Settings()


