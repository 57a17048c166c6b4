"""The cohort and daily reports (:mod:`manager.reports`): real cohorts on binance-5m stored
in SQLite, the CSV's hourly breakdown against an independent computation from the stored
equity curve, the leverage decisions, the PDF read back with poppler (``pdftotext``,
``pdftoppm``), the API routes and the beat task with its delivery as an attachment."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pandas as pd
import pytest

from manager import reports as R
from manager.launch import execute_cohort
from manager.runner import BarsRequest, CohortRequest
from manager.store import RunNotFound, SQLiteStore
from tests.helpers import BINANCE

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

SYMBOLS = ["ETH_BTC", "LTC_BTC", "XMR_BTC"]
DAY = "2018-01-15"
POPPLER = shutil.which("pdftoppm") and shutil.which("pdftotext")
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftoppm, pdftotext) not installed")


def _cohort(store, day: str, seed: int) -> str:
    req = CohortRequest(bars=BarsRequest(data=str(BINANCE), symbols=SYMBOLS, start=day), bankroll=50, agents=6,
                        seed=seed, baselines=5, policy=True)
    run_id, _, _ = execute_cohort(req, store)
    return run_id


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """``(path, {"a", "b" (both on DAY), "c" (the next day)})``, a kill switch on and off on DAY."""
    path = tmp_path_factory.mktemp("reports") / "s.db"
    with SQLiteStore(path) as s:
        ids = {"a": _cohort(s, DAY, 4), "b": _cohort(s, DAY, 5), "c": _cohort(s, "2018-01-16", 6)}
        s.set_kill_switch(True, actor="rick", reason="drill", at=f"{DAY}T10:00:00+00:00")
        s.set_kill_switch(False, actor="rick", reason="drill over", at=f"{DAY}T10:05:00+00:00")
    return path, ids


@pytest.fixture
def store(stored):
    with SQLiteStore(stored[0]) as s:
        yield s


def _rows(text: str, section: str | None = None) -> list[dict]:
    rows = list(csv.DictReader(io.StringIO(text)))
    return [r for r in rows if section is None or r["section"] == section]


def _independent_hours(store, run_id: str) -> pd.DataFrame:
    """Per UTC hour: first/last equity and PnL, straight from the stored curve with pandas."""
    c = store.get_curves(run_id)
    bankroll = store.get_run(run_id)["header"]["bankroll"]
    eq = pd.Series(c["parent_equity"], index=pd.to_datetime(c["timestamps"], utc=True))
    before = eq.shift(1).fillna(bankroll)
    g = pd.DataFrame({"before": before, "eq": eq}).groupby(eq.index.floor("h"))
    out = pd.DataFrame({"start": g["before"].first(), "end": g["eq"].last()})
    out["pnl"] = out["end"] - out["start"]
    return out


def test_cohort_csv_hourly_breakdown_sums_to_the_parent_pnl(store, stored):
    run_id = stored[1]["a"]
    text = "".join(R.report_csv_chunks(R.cohort_report_view(store, run_id)))
    assert text.splitlines()[0] == ",".join(R.CSV_FIELDS)
    hours = _rows(text, "hourly")
    assert len(hours) == 24 and {h["run_id"] for h in hours} == {run_id}
    c = store.get_curves(run_id)
    parent_pnl = float(c["parent_equity"][-1]) - 50.0  # the day's parent PnL from the stored curve
    assert parent_pnl != 0.0
    assert sum(float(h["pnl"]) for h in hours) == pytest.approx(parent_pnl, abs=1e-9)
    ref = _independent_hours(store, run_id)
    assert [h["time"] for h in hours] == [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in ref.index]
    np.testing.assert_allclose([float(h["pnl"]) for h in hours], ref["pnl"].to_numpy(), atol=1e-12)
    np.testing.assert_allclose([float(h["start_equity"]) for h in hours], ref["start"].to_numpy(), atol=1e-12)
    # the engine's own hourly roll-up in the stored report agrees, hour by hour
    engine = store.get_run(run_id)["summary"]["hourly"]
    np.testing.assert_allclose([float(h["pnl"]) for h in hours], [h["pnl"] for h in engine], atol=1e-9)
    for h in hours:
        assert float(h["return"]) == pytest.approx(float(h["pnl"]) / float(h["start_equity"]))
    assert sum(int(h["trades"]) for h in hours) == len(store.get_trades(run_id))
    # the other sections are there, in order
    sections = [r["section"] for r in _rows(text)]
    assert sections == sorted(sections, key=R.SECTIONS.index)
    bankroll = _rows(text, "bankroll")[0]
    assert float(bankroll["pnl"]) == pytest.approx(parent_pnl, abs=1e-9)
    assert {r["item"] for r in _rows(text, "baselines")} >= {"cohort_roi", "buy_and_hold_roi", "cash_roi", "percentile"}
    assert [r["value"] for r in _rows(text, "compliance") if r["item"] == "ledger"] == ["verified"]
    assert _rows(text, "commentary")


def test_cohort_report_lists_the_runs_leverage_decisions(store, stored):
    run_id = stored[1]["a"]
    expected = [d for d in store.list_policy_decisions(source=run_id, limit=200) if d["period"] == DAY]
    assert expected, "policy on: the run recorded decisions"
    view = R.cohort_report_view(store, run_id)
    assert sorted(d["subject"] for d in view["decisions"]) == sorted(d["subject"] for d in expected)
    rows = _rows("".join(R.report_csv_chunks(view)), "leverage")
    assert len(rows) == len(expected)
    by_subject = {d["subject"]: d for d in expected}
    for r in rows:
        d = by_subject[r["item"]]
        assert float(r["value"]) == d["tier"] and d["rule"] in r["detail"] and d["trigger"] in r["detail"]


def test_daily_report_covers_the_days_cohorts_and_kill_switch(store, stored):
    ids = stored[1]
    view = R.daily_report_view(store, DAY)
    assert [r["run_id"] for r in view["runs"]] == [ids["a"], ids["b"]]  # not the next day's
    text = "".join(R.report_csv_chunks(view))
    hours = _rows(text, "hourly")
    for rid in (ids["a"], ids["b"]):
        mine = [float(h["pnl"]) for h in hours if h["run_id"] == rid]
        assert sum(mine) == pytest.approx(float(store.get_curves(rid)["parent_equity"][-1]) - 50.0, abs=1e-9)
    changes = [r for r in _rows(text, "compliance") if r["item"] == "kill_switch_change"]
    assert sorted(r["value"] for r in changes) == ["kill_switch.off", "kill_switch.on"]
    assert all(d["period"] == DAY for d in view["decisions"]) and view["decisions"]
    empty = R.daily_report_view(store, "2018-02-01")
    assert empty["runs"] == [] and "No cohort traded" in empty["commentary"][0]
    with pytest.raises(R.ReportError):
        R.daily_report_view(store, "2018-02-30")
    with pytest.raises(RunNotFound):
        R.cohort_report_view(store, "no-such-run")


def test_commentary_claims_no_edge_the_baselines_do_not_support(store, stored):
    view = R.cohort_report_view(store, stored[1]["a"])
    pc = view["runs"][0]["baselines"]["percentile"]
    text = " ".join(view["commentary"])
    assert f"percentile {round(pc, 1)}" in text
    assert ("no edge is claimed" in text) == (pc < 95)
    stripped = {**view, "runs": [{**view["runs"][0], "baselines": None}]}
    assert "no edge over chance is claimed" in " ".join(R.commentary(stripped))


@needs_poppler
def test_pdf_page_one_has_the_title_run_id_and_hourly_figures(store, stored, tmp_path):
    from typer.testing import CliRunner

    from manager.cli import app

    run_id = stored[1]["a"]
    out = tmp_path / "r.pdf"
    res = CliRunner().invoke(app, ["report", run_id, "--format", "pdf", "--out", str(out),
                                   "--store", f"sqlite:///{stored[0]}"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:5] == b"%PDF-"
    text = subprocess.run(["pdftotext", "-layout", "-f", "1", "-l", "1", str(out), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert f"Cohort report {run_id}" in text and "Hourly PnL breakdown (UTC)" in text
    ref = _independent_hours(store, run_id)
    for i in (0, 1, 5):  # rows of the hourly table, as printed (6 decimals)
        t, row = ref.index[i], ref.iloc[i]
        line = next(ln for ln in text.splitlines() if t.strftime("%Y-%m-%d %H:%M") in ln)
        assert f"{row['start']:,.6f}" in line and f"{row['end']:,.6f}" in line and f"{row['pnl']:,.6f}" in line
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(out), str(tmp_path / "page")],
                   check=True)
    png = next(tmp_path.glob("page*.png"))
    from PIL import Image

    px = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    assert px.std() > 20 and (px < 128).mean() > 0.01  # text, tables and the chart: not a blank page
    shutil.copy(png, tmp_path / "cohort-report-page1.png")


def test_cli_daily_csv_and_errors(stored, tmp_path):
    from typer.testing import CliRunner

    from manager.cli import app

    url = f"sqlite:///{stored[0]}"
    out = tmp_path / "d.csv"
    res = CliRunner().invoke(app, ["report", "daily", "--date", DAY, "--format", "csv", "--out", str(out),
                                   "--store", url])
    assert res.exit_code == 0, res.output
    assert {r["run_id"] for r in _rows(out.read_text(), "hourly")} == {stored[1]["a"], stored[1]["b"]}
    for args in (["daily", "--format", "csv"], ["daily", "--date", "2018-13-01"], ["nope", "--format", "csv"],
                 [stored[1]["a"], "--format", "xls"]):
        res = CliRunner().invoke(app, ["report", *args, "--out", str(tmp_path / "x"), "--store", url])
        assert res.exit_code == 2, (args, res.output)


def test_pdf_without_weasyprint_says_what_to_install(store, stored, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import fails as when the extra is absent
    with pytest.raises(R.ReportsUnavailable, match=r"pip install cohortlab\[reports\]"):
        R.render_pdf(R.daily_report_view(store, "2018-02-01"), charts=False)


@pytest.fixture
def api(store):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.deps import get_store

    app = create_app()
    app.dependency_overrides[get_store] = lambda: store
    with TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1") as client:
        yield client


def test_api_reports(api, stored):
    run_id = stored[1]["a"]
    r = api.get(f"/api/reports/cohorts/{run_id}", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert len(_rows(r.text, "hourly")) == 24
    assert str(BINANCE) not in r.text and str(stored[0].parent) not in r.text  # no server path
    r = api.get(f"/api/reports/cohorts/{run_id}", params={"format": "pdf"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf" and r.content[:5] == b"%PDF-"
    r = api.get("/api/reports/cohorts/no-such-run", params={"format": "csv"})
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    assert str(stored[0]) not in r.text
    r = api.get(f"/api/reports/daily/{DAY}", params={"format": "csv"})
    assert r.status_code == 200 and {x["run_id"] for x in _rows(r.text, "hourly")} == {stored[1]["a"], stored[1]["b"]}
    for bad in ("2018-02-30", "yesterday", "2018-1-5"):
        r = api.get(f"/api/reports/daily/{bad}", params={"format": "csv"})
        assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json"), bad
    assert api.get(f"/api/reports/daily/{DAY}", params={"format": "xls"}).status_code == 422


class _Capture(BaseHTTPRequestHandler):
    posts: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).posts.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_beat_task_writes_and_delivers_the_daily_pdf(stored, tmp_path, monkeypatch):
    from celery.schedules import crontab

    from manager import tasks
    from manager.celery_app import DAILY_REPORT_ENTRY, beat_schedule
    from manager.settings import Settings

    entry = beat_schedule(Settings())[DAILY_REPORT_ENTRY]
    assert entry["task"] == "cohortlab.daily_report" and entry["schedule"] == crontab(hour=1, minute=0)
    server = HTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Capture.posts = []
    try:
        monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{stored[0]}")
        monkeypatch.setenv("COHORTLAB_REPORT_DIR", str(tmp_path / "out"))
        monkeypatch.setenv("COHORTLAB_ALERT_URLS", f"hook=json://127.0.0.1:{server.server_port}/")
        out = tasks.daily_report.apply(kwargs={"date": DAY}).get()
    finally:
        server.shutdown()
    assert out["file"] == f"cohortlab-daily-{DAY}.pdf" and out["runs"] == 2 and out["delivered"] is True, out
    pdf = (tmp_path / "out" / out["file"]).read_bytes()
    assert pdf[:5] == b"%PDF-" and len(pdf) == out["bytes"]
    [post] = _Capture.posts
    assert post["title"] == f"[cohortlab] daily report {DAY}" and stored[1]["a"] in post["message"]
    [att] = post["attachments"]
    import base64

    assert att["filename"] == out["file"] and base64.b64decode(att["base64"]) == pdf
