"""The MongoDB server the store and migration tests run against (not a test module).

``COHORTLAB_TEST_MONGODB_URL`` names a real server; without it an nx-27017
server (a MongoDB wire-protocol server on SQLite) is started on a free local
port with its own data folder. One server serves the whole session: the
``mongo_server`` fixtures of ``tests/manager/store/conftest.py`` and
``tests/migrations/conftest.py`` share it through :func:`shared_mongo_server`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class MongoServer:
    """A MongoDB server for the tests: ``url`` without a database; ``nx`` = nx-27017."""

    url: str
    nx: bool

    def drop(self, database: str) -> None:
        """Drop ``database`` (the tests' clean-up)."""
        from pymongo import MongoClient

        with MongoClient(self.url, serverSelectionTimeoutMS=5000) as client:
            client.drop_database(database)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_database() -> str:
    """A new database name (``test_<16 hex>``)."""
    return f"test_{uuid.uuid4().hex[:16]}"


def with_database(url: str, database: str) -> str:
    """``url`` (``mongodb://hosts/[db][?query]``) naming ``database`` instead."""
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    hosts = rest.split("/", 1)[0]
    return f"{scheme}://{hosts}/{database}" + (f"?{query}" if query else "")


def _start_nx_27017(folder: Path) -> tuple[subprocess.Popen, str]:
    """Start nx-27017 on a free localhost port with its own data folder."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    for attempt in range(3):  # the free port may be taken before the server binds it
        port = free_port()
        out = (folder / f"server-{attempt}.out").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "nx_27017.nx_27017", "--host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(folder / "data"), "--pid-file", str(folder / f"nx-{attempt}.pid"),
             "--log-file", str(folder / f"nx-{attempt}.log")],
            stdout=out, stderr=subprocess.STDOUT,
        )
        out.close()
        url = f"mongodb://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with MongoClient(url, serverSelectionTimeoutMS=250) as client:
                    client.admin.command("ping")
                return proc, url
            except PyMongoError:
                time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = (folder / f"server-{attempt}.out").read_text(errors="replace")[-2000:]
    pytest.fail(f"nx-27017 did not start; its output:\n{log}")


_shared: dict[str, object] = {"server": None, "proc": None, "users": 0}


@contextmanager
def shared_mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MongoServer]:
    """The session's server: the real one of ``COHORTLAB_TEST_MONGODB_URL``, else an
    nx-27017 subprocess started by the first user and stopped when the last leaves.

    Skips the test when neither is available.
    """
    url = os.environ.get("COHORTLAB_TEST_MONGODB_URL", "").strip()
    if url:
        yield MongoServer(url=url, nx=False)
        return
    try:
        import nx_27017  # noqa: F401
    except ImportError:
        pytest.skip("nx-27017 is not installed (pip install -e '.[test]'), "
                    "and COHORTLAB_TEST_MONGODB_URL is not set")
    if _shared["server"] is None:
        proc, url = _start_nx_27017(tmp_path_factory.mktemp("nx-27017"))
        _shared.update(server=MongoServer(url=url, nx=True), proc=proc)
    _shared["users"] = int(_shared["users"]) + 1  # type: ignore[call-overload]
    try:
        yield _shared["server"]  # type: ignore[misc]
    finally:
        _shared["users"] = int(_shared["users"]) - 1  # type: ignore[call-overload]
        if _shared["users"] == 0:
            proc = _shared["proc"]
            _shared.update(server=None, proc=None)
            proc.terminate()  # type: ignore[union-attr]
            try:
                proc.wait(timeout=10)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                proc.kill()  # type: ignore[union-attr]
                proc.wait()  # type: ignore[union-attr]
