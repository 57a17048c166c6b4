"""Security faults of issue 11: confined data paths, what unauthenticated reads show, hardening headers.

Every test talks to the real application (:func:`api.app.create_app`) through FastAPI's
``TestClient`` with ``Host: 127.0.0.1``, on a temporary store and a temporary data root:

* ``data`` is a folder NAME under ``COHORTLAB_DATA_ROOTS``: an absolute path, ``..`` and a
  symlink pointing out of the roots are refused with 422, naming no server path and no file;
* a CSV with a secret cell value fails its job with an error naming the file relative to its
  root and the row, never the value nor an absolute path (``GET /api/jobs/{id}`` needs no token);
* ``/healthz``, ``GET /api/cohorts/{id}``, the listings and the dashboard show no absolute path;
* every response carries the CSP, ``X-Frame-Options``, ``nosniff`` and ``Referrer-Policy``;
  a foreign ``Host`` (DNS rebinding) is refused with 400;
* the launch form lists the data folders with their symbols and date ranges.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from manager import services  # noqa: E402
from manager.store import open_store  # noqa: E402

TOKEN = "security-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "hunter2-SECRET"


def _bars(path: Path, rows: int = 400, *, bad_row: int | None = None) -> None:
    """A 5-minute ``*_USD`` CSV of ``rows`` bars; ``bad_row`` (0-based) gets :data:`SECRET` as its open."""
    lines = ["timestamp,open,high,low,close,volume"]
    t0 = 1_514_764_800  # 2018-01-01T00:00:00Z
    for i in range(rows):
        price = 100.0 + (i % 7)
        open_ = SECRET if i == bad_row else f"{price:.2f}"
        lines.append(f"{t0 + 300 * i},{open_},{price + 1:.2f},{price - 1:.2f},{price:.2f},10")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture()
def world(tmp_path, monkeypatch):
    """``(client, root, outside)``: the app on a temporary store, the data root (folders ``good``,
    ``leaky`` with a secret cell, ``escape`` -> a folder outside, ``mixed`` holding a file that
    links outside) and the folder outside the roots (``SECRET_USD.csv``)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    for folder in (root / "good", root / "leaky", root / "mixed", outside):
        folder.mkdir(parents=True)
    _bars(root / "good" / "BTC_USD.csv")
    _bars(root / "good" / "ETH_USD.csv")
    _bars(root / "leaky" / "BTC_USD.csv", bad_row=250)
    _bars(outside / "SECRET_USD.csv")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    _bars(root / "mixed" / "BTC_USD.csv")
    (root / "mixed" / "SECRET_USD.csv").symlink_to(outside / "SECRET_USD.csv")
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{tmp_path / 'sec.db'}")
    monkeypatch.setenv("COHORTLAB_API_TOKEN", TOKEN)
    monkeypatch.setenv("COHORTLAB_DATA_ROOTS", str(root))
    monkeypatch.delenv("COHORTLAB_BROKER_URL", raising=False)
    monkeypatch.delenv("COHORTLAB_DATA_DIR", raising=False)
    monkeypatch.delenv("COHORTLAB_ALLOWED_HOSTS", raising=False)
    monkeypatch.chdir(tmp_path)
    services.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1") as client:
        yield client, root, outside
    services.close_shared_store()


def _no_server_path(text: str, *paths: Path) -> None:
    for path in paths:
        assert str(path) not in text and str(path.resolve()) not in text, text


def _wait(client: TestClient, job_id: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("completed", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.mark.parametrize("data", ["ABSOLUTE", "../outside", "..", "escape", "mixed", "good/../../outside",
                                  "/etc", "nope"])
def test_a_data_folder_outside_the_roots_is_refused_without_paths_or_listing(world, tmp_path, data):
    client, root, outside = world
    value = str(outside) if data == "ABSOLUTE" else data
    r = client.post("/api/cohorts", headers=AUTH, json={"bankroll": 100, "agents": 2, "data": value})
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["data"]
    _no_server_path(r.text, tmp_path, root, outside)
    assert "SECRET_USD" not in r.text and "passwd" not in r.text  # no file listing of any folder
    assert "good" in r.json()["detail"]  # the allowed folder names are the hint


def test_a_folder_name_under_a_root_is_accepted_and_its_symbols_checked(world, tmp_path):
    client, root, _ = world
    r = client.post("/api/cohorts", headers=AUTH, json={"bankroll": 100, "agents": 2, "data": "good",
                                                        "symbols": ["BTC_USD", "NOPE_USD"]})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["symbols"]
    _no_server_path(r.text, tmp_path)
    r = client.post("/api/cohorts", headers=AUTH, json={"bankroll": 100, "agents": 2, "data": "good",
                                                        "start": "2018-01-02", "seed_from": "random"})
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"])
    assert job["state"] == "completed", job
    detail = client.get(f"/api/cohorts/{job['run_id']}")
    assert detail.status_code == 200
    assert detail.json()["run"]["data_label"] == "good"
    _no_server_path(detail.text, tmp_path, root)


def test_a_secret_cell_value_never_comes_back_through_the_job(world, tmp_path):
    client, root, _ = world
    r = client.post("/api/cohorts", headers=AUTH, json={"bankroll": 100, "agents": 2, "data": "leaky",
                                                        "seed_from": "random"})
    assert r.status_code == 202, r.text
    job = _wait(client, r.json()["job_id"])
    assert job["state"] == "failed"
    error = job["error"]
    assert SECRET not in error and "hunter2" not in error
    _no_server_path(error, tmp_path, root)
    assert "leaky/BTC_USD.csv" in error and "row" in error  # the file relative to its root, and the row
    page = client.get(f"/trading/cohorts/{job['run_id']}?job={job['job_id']}")
    assert "hunter2" not in page.text
    _no_server_path(page.text, tmp_path)


def test_a_stored_reason_with_paths_and_cell_values_is_sanitised_on_every_read(world, tmp_path):
    client, root, _ = world
    label = str(root / "good")
    header = {"day": "2018-01-02", "window_start": "2018-01-02T00:00:00Z", "window_end": "2018-01-03T00:00:00Z",
              "bankroll": 100.0, "quote": "USD", "agents": 2, "data_label": label, "market": "good|5m|USD",
              "seeded_from": "random"}
    doc = {"kind": "cohort", "header": header, "genomes": [], "data_label": label,
           "config": {"request": {"bankroll": 100.0, "bars": {"data": label, "start": "2018-01-02"}}}}
    with open_store() as store:
        run_id = store.create_run(dict(doc))
        store.fail_run(run_id, f"MarketDataError: {root}/good/BTC_USD.csv: data row 7 (timestamp 2018-01-01): "
                               f"open={SECRET!r} is not a number")
    for url in (f"/api/cohorts/{run_id}", f"/api/jobs/{run_id}", "/api/experiments/cohorts",
                "/api/experiments/cohorts?format=csv", "/api/assistant/cohorts/status",
                "/api/assistant/cohorts/bankroll-summary", "/trading/cohorts", f"/trading/cohorts/{run_id}"):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        assert "hunter2" not in r.text, url
        _no_server_path(r.text, tmp_path, root)
    body = client.get(f"/api/cohorts/{run_id}").json()
    assert body["run"]["data_label"] == "good" and body["run"]["request"]["bars"]["data"] == "good"
    assert body["run"]["reason"].startswith("MarketDataError: good/BTC_USD.csv: data row 7")


def test_healthz_names_the_store_kind_not_its_path(world, tmp_path):
    client, _, _ = world
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "store": "sqlite"}
    _no_server_path(r.text, tmp_path)


@pytest.mark.parametrize("url", ["/healthz", "/api/experiments/cohorts", "/trading/cohorts", "/trading/cohorts/new",
                                 "/static/cohortlab.js", "/openapi.json", "/api/cohorts/nope", "/trading/nowhere"])
def test_every_response_carries_the_hardening_headers(world, url):
    client, _, _ = world
    r = client.get(url)
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("url", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_docs_pages_allow_their_inline_script_by_hash_only(world, url):
    client, _, _ = world
    r = client.get(url)
    if r.status_code == 503:
        pytest.skip("swagger-ui-dist / redoc not installed (npm install --prefix web)")
    script_src = next(d for d in r.headers["content-security-policy"].split(";")
                      if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src
    if "<script>" in r.text:
        assert "'sha256-" in script_src
    assert r.headers["x-frame-options"] == "DENY"


def test_a_foreign_host_is_refused(world):
    client, _, _ = world
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example"):
        r = client.get("/healthz", headers={"Host": host})
        assert r.status_code == 400, host
    for host in ("127.0.0.1:8000", "localhost", "[::1]:8000"):
        assert client.get("/healthz", headers={"Host": host}).status_code == 200, host


def test_the_launch_form_lists_the_folders_with_symbols_and_dates(world, tmp_path):
    client, _, _ = world
    r = client.get("/trading/cohorts/new")
    assert r.status_code == 200
    assert 'id="data-folder-list"' in r.text and '<option value="good">' in r.text
    row = r.text[r.text.index("<code>good</code>"):]
    row = row[:row.index("</tr>")]
    assert "BTC_USD, ETH_USD" in row and "2018-01-01T00:00:00Z" in row and "2018-01-02T09:15:00Z" in row
    assert "<code>escape</code>" not in r.text and "<code>mixed</code>" not in r.text  # they lead outside
    _no_server_path(r.text, tmp_path)


def test_data_roots_settings_parse_lists(monkeypatch):
    from manager.settings import get_settings

    monkeypatch.setenv("COHORTLAB_DATA_ROOTS", "/a:/b,/c")
    monkeypatch.setenv("COHORTLAB_ALLOWED_HOSTS", "::1, example.org")
    settings = get_settings()
    assert settings.data_roots == ["/a", "/b", "/c"] and settings.allowed_hosts == ["::1", "example.org"]
    monkeypatch.setenv("COHORTLAB_DATA_ROOTS", '["/x y"]')
    assert get_settings().data_roots == ["/x y"]


def test_public_error_keeps_file_and_row_and_drops_cells():
    from manager.data_roots import public_error

    root = Path("/srv/data")
    message = (f"MarketDataError: /srv/data/b/X_USD.csv: data row 3 (timestamp 2018-01-01T00:00:00+00:00): "
               f"open={SECRET!r} is not a number; allowed: finite numbers")
    once = public_error(message, [root])
    assert once.startswith("MarketDataError: b/X_USD.csv: data row 3: not a number") and SECRET not in once
    assert public_error(once, [root]) == once
    header = public_error("MarketDataError: /etc/passwd: missing column(s) open; found root:x:0:0:root", [root])
    assert "root:x" not in header and "/etc" not in header
    parse = public_error("MarketDataError: /srv/data/b/Y.csv: cannot read as csv file: CSV parse error: "
                         f"{SECRET}", [root])
    assert parse == "MarketDataError: b/Y.csv: cannot read as csv file"
