"""The API process's operations routes: ``GET /healthz`` and ``GET /metrics``.

Requests go through FastAPI's ``TestClient`` (it needs ``httpx`` or ``httpx2``,
both part of the ``test`` extra). Where neither is installed, a minimal ASGI
client with the same ``get()`` / ``status_code`` / ``json()`` / ``headers``
surface drives the app instead, so these tests never skip.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

import manager.metrics as metrics
import manager.store as store_module
from api.app import app, create_app


class _Response:
    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        self.content = body
        self.text = body.decode("utf-8")

    def json(self):
        return json.loads(self.content)


class _ASGIClient:
    """GET requests straight into an ASGI app (fallback when httpx is absent)."""

    def __init__(self, application) -> None:
        self.app = application

    def get(self, path: str) -> _Response:
        return asyncio.run(self._get(path))

    async def _get(self, path: str) -> _Response:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": b"", "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 50000), "server": ("testserver", 80),
        }
        sent: list[dict] = []
        requested = False

        async def receive():
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await asyncio.sleep(3600)  # never disconnects while the app responds

        async def send(message):
            sent.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return _Response(start["status"], start.get("headers", []), body)


def _client(application):
    try:
        from fastapi.testclient import TestClient
    except (ImportError, RuntimeError):  # starlette raises RuntimeError without httpx/httpx2
        return _ASGIClient(application)
    return TestClient(application, base_url="http://127.0.0.1")


@pytest.fixture()
def client():
    return _client(app)


@pytest.fixture()
def sqlite_store(tmp_path: Path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'health' / 'cohortlab.db'}"
    monkeypatch.setenv("COHORTLAB_STORE", url)
    return url


def test_healthz_ok_on_an_sqlite_store(client, sqlite_store):
    response = client.get("/healthz")
    assert response.status_code == 200
    # the adapter kind only: the route needs no token, so no server path
    assert response.json() == {"status": "ok", "store": "sqlite"}
    assert sqlite_store.split("///", 1)[1] not in response.text
    assert response.headers["content-type"].startswith("application/json")


def test_healthz_reads_the_store_setting_on_every_call(client, tmp_path, monkeypatch):
    for name in ("a.db", "b.db"):
        url = f"sqlite:///{tmp_path / name}"
        monkeypatch.setenv("COHORTLAB_STORE", url)
        assert client.get("/healthz").json()["store"] == "sqlite"
        assert (tmp_path / name).exists()


def test_healthz_closes_the_store(client, monkeypatch):
    events: list[str] = []

    class FakeStore:
        def __enter__(self):
            events.append("open")
            return self

        def __exit__(self, *exc):
            events.append("close")

        def list_runs(self, limit=20, **_):
            events.append(f"list_runs({limit})")
            return []

    monkeypatch.setattr(store_module, "open_store", lambda url=None: FakeStore())
    assert client.get("/healthz").status_code == 200
    assert events == ["open", "list_runs(1)", "close"]


def test_healthz_503_when_the_store_url_is_unsupported(client, monkeypatch):
    monkeypatch.setenv("COHORTLAB_STORE", "postgres://admin:hunter2@db:5432/cohortlab")
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["store"] == "postgres"
    assert "unsupported scheme" in body["error"]
    assert "hunter2" not in response.text


def test_healthz_503_when_the_database_cannot_be_opened(client, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{blocker / 'cohortlab.db'}")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["error"] and str(tmp_path) not in response.text


def test_healthz_503_when_a_query_fails(client, sqlite_store, monkeypatch):
    class BrokenStore:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def list_runs(self, **_):
            raise store_module.StoreError("database is locked")

    monkeypatch.setattr(store_module, "open_store", lambda url=None: BrokenStore())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "store": "sqlite", "error": "database is locked"}


def test_healthz_503_hides_unexpected_error_messages(client, sqlite_store, monkeypatch):
    def explode(url=None):
        raise ConnectionError("could not connect with password s3cret")

    monkeypatch.setattr(store_module, "open_store", explode)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["error"] == "ConnectionError while opening the store"
    assert "s3cret" not in response.text


def test_healthz_503_when_the_settings_are_invalid(client, monkeypatch):
    monkeypatch.setenv("COHORTLAB_STORE", "   ")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["error"] == "ValidationError while opening the store"


def test_metrics_exposes_the_cohortlab_registry(client, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    before = metrics.COHORT_RUNTIME._sum.get()
    metrics.record_cohort(seconds=1.5, failed_agents=0, peak_utilisation=0.25)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "version=" in response.headers["content-type"]
    text = response.text
    for name in ("cohortlab_cohort_runtime_seconds", "cohortlab_failed_agents_total",
                 "cohortlab_bankroll_utilisation_ratio", "cohortlab_learning_cycle_seconds",
                 "cohortlab_task_latency_seconds", "cohortlab_tasks_total"):
        # a counter's TYPE line names it with or without "_total", by client version
        assert any(f"# TYPE {n} " in text for n in (name, name.removesuffix("_total"))), name
    assert "cohortlab_bankroll_utilisation_ratio 0.25" in text
    assert f"cohortlab_cohort_runtime_seconds_sum {before + 1.5}" in text


def test_metrics_serves_exactly_what_exposition_returns(client, monkeypatch):
    monkeypatch.setattr(metrics, "exposition",
                        lambda: (b"# sentinel\n", "text/plain; version=0.0.4; charset=utf-8"))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content == b"# sentinel\n"
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_metrics_in_multiprocess_mode(client, tmp_path, monkeypatch):
    # With PROMETHEUS_MULTIPROC_DIR set, exposition() aggregates the files of all
    # processes in that folder; an empty folder is a valid, empty exposition.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "cohortlab_cohort_runtime_seconds_sum" not in response.text


def test_operations_routes_and_openapi(sqlite_store):
    client = _client(create_app())  # a fresh app has the operations routes too
    assert client.get("/metrics").status_code == 200
    assert client.get("/healthz").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/healthz" in schema["paths"]
    assert "/metrics" not in schema["paths"]  # an operations endpoint, not part of the API
    assert schema["info"]["title"] == "cohortlab"
