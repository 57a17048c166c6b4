"""Alerts (issue 15) end to end against real local endpoints, no mocks: a local
HTTP server captures what apprise posts to its ``json://`` target and to a
Slack-shaped incoming webhook (apprise's Mattermost target, ``{"text": ...}`` on
``/hooks/<token>``), and a local SMTP server (aiosmtpd) receives apprise's
``mailto://`` mails. Covered: the run rules and their figures, the delivered
content on every channel, dedup / rate limit per (rule, subject), retry with
backoff through the Celery task (HTTP 500, then 200), a failed delivery recorded
as failed, the ``cohortlab alerts test|list`` commands, and the kill switch hook
delivering from a background worker thread (never inline)."""
from __future__ import annotations

import json
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from manager import alerts as A
from manager.cli import app
from manager.policy import set_kill_switch
from manager.store import SQLiteStore
from manager.tasks import deliver_alert

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
MATTERMOST_TOKEN = "abcdefghijklmnopqrstuvwxyz"


# ------------------------------------------------------------------ local endpoints
class HttpSink:
    """A local HTTP server recording every POST; ``statuses`` is the queue of HTTP
    statuses to answer with (200 once it is empty)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink.lock:
                    status = sink.statuses.pop(0) if sink.statuses else 200
                    sink.posts.append({"path": self.path, "status": status, "body": json.loads(raw or b"null"),
                                       "content_type": self.headers.get("Content-Type")})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def slack_url(self) -> str:
        """A Slack-shaped incoming webhook (Mattermost: ``POST /hooks/<token>`` with ``{"text": ...}``)."""
        return f"mmost://127.0.0.1:{self.port}/{MATTERMOST_TOKEN}"

    def wait(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if len(self.posts) >= n:
                    return list(self.posts)
            time.sleep(0.02)
        raise AssertionError(f"expected {n} posts, got {len(self.posts)}: {self.posts}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """A local SMTP server (aiosmtpd, no TLS, no auth) recording each message."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                sink.messages.append(envelope)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=_free_port())
        self.controller.start()
        self.port = self.controller.port

    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from=alerts@cohortlab.test&to=ops@cohortlab.test&mode=insecure"

    def close(self) -> None:
        self.controller.stop()


@pytest.fixture
def http() -> Iterator[HttpSink]:
    sink = HttpSink()
    yield sink
    sink.close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.fixture
def store_path(tmp_path) -> Any:
    return tmp_path / "alerts.db"


@pytest.fixture
def store(store_path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(store_path)
    yield s
    s.close()


@pytest.fixture
def env(monkeypatch, store_path, http) -> Any:
    """The settings of a worker: this test's store, the local HTTP channel ``hook``, no broker, no backoff wait."""
    monkeypatch.delenv("COHORTLAB_BROKER_URL", raising=False)
    monkeypatch.setenv("COHORTLAB_STORE", f"sqlite:///{store_path}")
    monkeypatch.setenv("COHORTLAB_ALERT_URLS", f"hook={http.url()}")
    monkeypatch.setenv("COHORTLAB_ALERT_BACKOFF_S", "0")
    monkeypatch.setenv("COHORTLAB_ALERT_MAX_ATTEMPTS", "3")
    return monkeypatch


def report(**parent: Any) -> dict[str, Any]:
    """A cohort run's report (the shape of :func:`manager.report.cohort_report`)."""
    p = {"final_equity": 925.0, "roi": -0.075, "max_drawdown": 0.075, "peak_utilisation": 0.95, "breaches": 7,
         "hard_stops": 1}
    p.update(parent)
    return {"run_id": "20250301T120000-abcd1234", "quote": "USD", "bankroll": 1000.0, "data": "binance-5m",
            "parent": p, "settings": {"max_gross_leverage": 2.0, "daily_hard_stop": 0.05},
            "agents": [{"agent_id": "a00", "breaches": 0}, {"agent_id": "a01", "breaches": 5},
                       {"agent_id": "a02", "breaches": 2}],
            "events": [{"kind": "daily_hard_stop", "time": "2025-03-01T10:05:00Z", "bar": 121,
                        "parent_equity": 948.0, "reference_equity": 1000.0, "drawdown": 0.052, "threshold": 0.05}]}


class Recorder:
    """An enqueue hook that only records what it was asked to deliver."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, alert_id: str) -> None:
        self.ids.append(alert_id)


# ------------------------------------------------------------------ rules
def test_run_rules_fire_with_their_figures() -> None:
    alerts = A.evaluate_run(report())
    assert [a.rule for a in alerts] == ["parent_drawdown", "leverage_breach", "utilisation", "hard_stop"]
    assert {a.subject for a in alerts} == {"20250301T120000-abcd1234"}
    dd, lev, util, stop = alerts
    assert dd.severity == "critical" and "7.50 %" in dd.title and "5.00 %" in dd.title
    assert "Bankroll 1,000.00 USD, final parent equity 925.00 USD, ROI -7.50 %" in dd.body
    assert dd.figures["max_drawdown"] == 0.075 and dd.figures["threshold"] == 0.05
    assert lev.figures["agents"] == {"a01": 5, "a02": 2} and lev.figures["total"] == 7
    assert "- a01: 5 breaches\n- a02: 2 breaches" in lev.body and "gross leverage ceiling 2x" in lev.body
    assert "95.00 %" in util.title and util.figures["peak_utilisation"] == 0.95
    assert "2025-03-01T10:05:00Z: drawdown 5.20 %" in stop.body and "948.00 USD" in stop.body


def test_run_rules_respect_the_thresholds() -> None:
    quiet = report(max_drawdown=0.05, peak_utilisation=0.9)
    quiet["events"] = []
    th = A.Thresholds(parent_drawdown=0.05, utilisation=0.9, leverage_breaches=6)
    assert A.evaluate_run(quiet, th) == []  # "above" is strict; a01 has 5 < 6 breaches
    assert [a.rule for a in A.evaluate_run(quiet, A.Thresholds(leverage_breaches=5))] == ["leverage_breach"]
    assert A.evaluate_run({"run_id": "r"}) == []  # nothing to judge
    with pytest.raises(A.AlertError):
        A.evaluate_run(report(), A.Thresholds(parent_drawdown=0))
    with pytest.raises(A.AlertError, match="severity"):
        A.Alert("x", "y", "loud", "t", "b")


# ------------------------------------------------------------------ delivery to real endpoints
def test_delivered_content_on_json_slack_shaped_and_email(store, http, smtp) -> None:
    rec = Recorder()
    dd = A.evaluate_run(report())[0]
    stored = A.raise_alert(store, dd, T0, enqueue=rec)
    assert rec.ids == [stored["alert_id"]] and stored["status"] == "pending"
    urls = {"hook": http.url(), "slack": http.slack_url(), "mail": smtp.url()}
    doc = A.deliver(store, stored["alert_id"], urls, now=T0 + timedelta(seconds=1))
    assert doc["status"] == "sent" and doc["attempts"] == 1 and doc["last_error"] is None

    posts = {p["path"]: p["body"] for p in http.wait(2)}
    hook = posts["/hook"]
    assert hook["title"] == "[cohortlab] CRITICAL: Parent drawdown 7.50 % > 5.00 % (20250301T120000-abcd1234)"
    assert hook["type"] == "failure"
    assert "Parent max drawdown 7.50 % (threshold 5.00 %) in run 20250301T120000-abcd1234" in hook["message"]
    assert "final parent equity 925.00 USD" in hook["message"]
    assert f"rule: parent_drawdown | subject: 20250301T120000-abcd1234 | alert: {doc['alert_id']}" in hook["message"]
    slack = posts[f"/hooks/{MATTERMOST_TOKEN}"]
    assert "Parent drawdown 7.50 % > 5.00 %" in slack["text"] and "rule: parent_drawdown" in slack["text"]

    assert len(smtp.messages) == 1
    envelope = smtp.messages[0]
    assert envelope.mail_from == "alerts@cohortlab.test" and envelope.rcpt_tos == ["ops@cohortlab.test"]
    mail = message_from_bytes(envelope.content, policy=policy.default)
    assert mail["Subject"] == hook["title"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Parent max drawdown 7.50 % (threshold 5.00 %)" in text and "subject: 20250301T120000-abcd1234" in text
    # idempotent: a redelivered task sends nothing more
    assert A.deliver(store, stored["alert_id"], urls) == doc
    time.sleep(0.2)
    assert len(http.posts) == 2 and len(smtp.messages) == 1


def test_dedup_and_rate_limit_per_rule_and_subject(store, http) -> None:
    rec = Recorder()
    dd = A.evaluate_run(report())[0]
    first = A.raise_alert(store, dd, T0, window=900, enqueue=rec)
    assert A.raise_alert(store, dd, T0 + timedelta(minutes=5), window=900, enqueue=rec) is None  # duplicate
    assert A.raise_alert(store, dd, T0 + timedelta(minutes=14), window=900, enqueue=rec) is None  # rate limited
    other = A.raise_alert(store, A.Alert(dd.rule, "another-run", dd.severity, dd.title, dd.body), T0 + timedelta(
        minutes=5), window=900, enqueue=rec)  # another subject is not suppressed
    later = A.raise_alert(store, dd, T0 + timedelta(minutes=16), window=900, enqueue=rec)  # the window has passed
    assert rec.ids == [first["alert_id"], other["alert_id"], later["alert_id"]]
    assert store.get_alert(first["alert_id"])["suppressed"] == 2
    for alert_id in rec.ids:
        A.deliver(store, alert_id, {"hook": http.url()})
    sent = [p["body"]["message"] for p in http.wait(3)]
    assert len(sent) == 3 and sum("subject: 20250301T120000-abcd1234" in m for m in sent) == 2
    # the rule's default window comes from the settings (COHORTLAB_ALERT_WINDOWS overrides one rule)
    assert A.window_s("parent_drawdown") == 900.0


def test_window_settings(monkeypatch) -> None:
    monkeypatch.setenv("COHORTLAB_ALERT_WINDOW_S", "60")
    monkeypatch.setenv("COHORTLAB_ALERT_WINDOWS", "kill_switch=0,parent_drawdown=3600")
    assert (A.window_s("kill_switch"), A.window_s("parent_drawdown"), A.window_s("rollback")) == (0.0, 3600.0, 60.0)
    monkeypatch.setenv("COHORTLAB_ALERT_URLS", "ops=json://h:1/x?a=1,b, mail=mailto://h?to=a@b.c,d@e.f")
    assert A.alert_urls() == {"ops": "json://h:1/x?a=1,b", "mail": "mailto://h?to=a@b.c,d@e.f"}
    with pytest.raises(A.AlertError, match="configured channels: mail, ops"):
        A.alert_urls(channels=["nope"])


def test_backoff_doubles_up_to_five_minutes() -> None:
    assert [A.backoff_s(n, 2.0) for n in range(4)] == [2.0, 4.0, 8.0, 16.0]
    assert A.backoff_s(20, 2.0) == A.MAX_BACKOFF_S == 300.0


# ------------------------------------------------------------------ the Celery task: retries, failures
def test_task_retries_a_failing_endpoint_then_records_sent(store, http, env) -> None:
    http.statuses = [500]  # the first attempt gets HTTP 500, the retry 200
    stored = A.raise_alert(store, A.evaluate_run(report())[0], T0, enqueue=Recorder())
    result = deliver_alert.apply(args=[stored["alert_id"]])
    assert result.successful(), result.traceback
    assert result.get() == {"alert_id": stored["alert_id"], "status": "sent", "attempts": 2,
                            "last_error": result.get()["last_error"]}
    doc = store.get_alert(stored["alert_id"])
    assert doc["status"] == "sent" and doc["attempts"] == 2
    assert [a["ok"] for a in doc["attempt_log"]] == [False, True]
    assert "500" in doc["attempt_log"][0]["error"] and doc["attempt_log"][0]["error"].startswith("hook:")
    posts = http.wait(2)
    assert [p["status"] for p in posts] == [500, 200]
    assert posts[0]["body"] == posts[1]["body"]  # the same message, sent again


def test_task_records_a_failed_delivery(store, http, env) -> None:
    http.statuses = [500] * 10
    stored = A.raise_alert(store, A.evaluate_run(report())[1], T0, enqueue=Recorder())
    result = deliver_alert.apply(args=[stored["alert_id"]])
    assert result.successful(), result.traceback  # the failure is recorded, the task ends
    assert result.get()["status"] == "failed" and result.get()["attempts"] == 3  # COHORTLAB_ALERT_MAX_ATTEMPTS
    doc = store.get_alert(stored["alert_id"])
    assert doc["status"] == "failed" and doc["attempts"] == 3 and "500" in doc["last_error"]
    assert len(http.wait(3)) == 3
    assert [a["alert_id"] for a in store.list_alerts(status="failed")] == [stored["alert_id"]]


def test_in_process_retries_sleep_with_backoff(store, http) -> None:
    http.statuses = [500, 500]
    stored = A.raise_alert(store, A.evaluate_run(report())[0], T0, enqueue=Recorder())
    slept: list[float] = []
    doc = A.deliver_with_retries(store, stored["alert_id"], {"hook": http.url()}, max_attempts=4, backoff=1.5,
                                 sleep=slept.append)
    assert doc["status"] == "sent" and doc["attempts"] == 3 and slept == [1.5, 3.0]
    assert [p["status"] for p in http.wait(3)] == [500, 500, 200]


def test_unreachable_endpoint_is_recorded_failed(store) -> None:
    stored = A.raise_alert(store, A.evaluate_run(report())[0], T0, enqueue=Recorder())
    doc = A.deliver(store, stored["alert_id"], {"down": f"json://127.0.0.1:{_free_port()}/x"}, final=True)
    assert doc["status"] == "failed" and doc["attempts"] == 1 and doc["last_error"].startswith("down:")
    stored = A.raise_alert(store, A.evaluate_run(report())[2], T0, enqueue=Recorder())
    with pytest.raises(A.DeliveryFailed, match="attempt 1"):
        A.deliver(store, stored["alert_id"], {"down": f"json://127.0.0.1:{_free_port()}/x"}, final=False)
    assert store.get_alert(stored["alert_id"])["status"] == "pending"


def test_no_channel_configured_records_failed_without_a_worker(store, monkeypatch) -> None:
    monkeypatch.delenv("COHORTLAB_ALERT_URLS", raising=False)
    doc = A.raise_alert(store, A.evaluate_run(report())[0], T0)
    assert doc["status"] == "failed" and "COHORTLAB_ALERT_URLS" in doc["last_error"]


# ------------------------------------------------------------------ event hooks
def test_notify_never_fails_its_caller(store) -> None:
    assert A.notify(store, "Bad Rule", "x", "t", "b", enqueue=Recorder()) is None  # invalid: logged, not raised
    assert A.notify(store, "rollback", "dep-1", "t", "b", severity="loud") is None
    store.close()
    assert A.notify(store, "rollback", "dep-1", "t", "b", enqueue=Recorder()) is None  # a closed store


def test_kill_switch_alert_is_delivered_by_a_worker_thread(store, http, env) -> None:
    state = set_kill_switch(store, True, actor="ops:alice", reason="exchange outage")
    assert state["on"] is True
    post = http.wait(1)[0]["body"]
    assert post["title"] == "[cohortlab] CRITICAL: Kill switch turned ON by ops:alice"
    assert "reason: exchange outage" in post["message"] and "rule: kill_switch | subject: kill_switch" in post["message"]
    end = time.monotonic() + 5
    while store.list_alerts(rule="kill_switch")[0]["status"] != "sent" and time.monotonic() < end:
        time.sleep(0.02)
    assert store.list_alerts(rule="kill_switch")[0]["status"] == "sent"


def test_rollback_alert_carries_its_figures(store, http) -> None:
    rec = Recorder()
    deployment = {"deployment_id": "dep-7", "promotion_id": "promo-3", "market": {"quote": "USD"}}
    summary = {"reason": "drawdown", "at": "2025-03-01T12:30:00Z", "by": "system", "role": "system", "notes": "",
               "bar": 412, "allocation": 5.0, "final_equity": 4.6, "pnl": -0.4, "fees": 0.01}
    stored = A.notify_rollback(store, deployment, summary, enqueue=rec)
    assert rec.ids == [stored["alert_id"]] and stored["created_at"].startswith("2025-03-01T12:30:00")
    A.deliver(store, stored["alert_id"], {"hook": http.url()})
    post = http.wait(1)[0]["body"]
    assert post["title"] == "[cohortlab] CRITICAL: Deployment dep-7 rolled back (drawdown)"
    assert "(promotion promo-3) rolled back on drawdown at bar 412, by system (system)" in post["message"]
    assert "allocation 5 USD, final equity 4.6 USD, pnl -0.4 USD, fees 0.01 USD." in post["message"]
    assert "rule: rollback | subject: dep-7" in post["message"]
    assert A.notify_rollback(store, {}, summary, enqueue=rec) is None  # a malformed call: logged, never raised
    assert A.notify_kill_switch(store, None, enqueue=rec) is None  # type: ignore[arg-type]


# ------------------------------------------------------------------ CLI
def test_cli_alerts_test_and_list(store_path, http, env) -> None:
    runner = CliRunner()
    url = f"sqlite:///{store_path}"
    out = runner.invoke(app, ["alerts", "test", "hook", "--store", url], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert "test message sent to hook" in out.output
    post = http.wait(1)[0]["body"]
    assert post["title"] == "[cohortlab] INFO: Test message to channel hook"
    assert "alert channel 'hook'" in post["message"] and "rule: test | subject: hook" in post["message"]

    out = runner.invoke(app, ["alerts", "test", "pager", "--store", url], catch_exceptions=False)
    assert out.exit_code == 2
    assert "unknown alert channel pager" in out.output and "configured channels: hook" in out.output

    http.statuses = [500]
    out = runner.invoke(app, ["alerts", "test", "hook", "--store", url], catch_exceptions=False)
    assert out.exit_code == 1 and "failed" in out.output and "500" in out.output

    out = runner.invoke(app, ["alerts", "list", "--json", "--store", url], catch_exceptions=False)
    assert out.exit_code == 0
    items = json.loads(out.output)["items"]
    assert [(a["rule"], a["subject"], a["status"]) for a in items] == [("test", "hook", "failed"),
                                                                        ("test", "hook", "sent")]
    out = runner.invoke(app, ["alerts", "list", "--status", "sent", "--store", url], catch_exceptions=False)
    assert out.exit_code == 0 and "Test message to channel hook" in out.output


# ------------------------------------------------------------------ a real worker on the local Redis
REDIS = "redis://127.0.0.1:6379/12"


def _redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs the local Redis at 127.0.0.1:6379")
def test_worker_retries_with_backoff_through_celery(tmp_path, store_path, store, http, monkeypatch) -> None:
    """A Celery worker subprocess delivers the alert: HTTP 500 twice, then 200; the
    retries wait the backoff (0.5 s, then 1 s) and the store records 3 attempts."""
    import os
    import signal
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    import redis

    from manager.celery_app import make_app
    from manager.settings import Settings
    from tests.helpers import ROOT

    queue = f"cohortlab-alerts-test-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORTLAB_")}
    env.update(COHORTLAB_BROKER_URL=REDIS, COHORTLAB_STORE=f"sqlite:///{store_path}", COHORTLAB_TASK_QUEUE=queue,
               COHORTLAB_METRICS_PORT="0", COHORTLAB_ALERT_URLS=f"hook={http.url()}", COHORTLAB_ALERT_BACKOFF_S="0.5",
               COHORTLAB_ALERT_MAX_ATTEMPTS="4", PROMETHEUS_MULTIPROC_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    http.statuses = [500, 500]
    stored = A.raise_alert(store, A.evaluate_run(report())[0], T0, enqueue=Recorder())
    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen([str(Path(sys.executable).with_name("celery")), "-A", "manager.celery_app", "worker",
                               "-n", f"alerts-{queue}@%h", "-c", "1", "-Q", queue, "--without-gossip",
                               "--without-mingle", "--without-heartbeat", "--loglevel=INFO"],
                              env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    monkeypatch.setenv("COHORTLAB_TASK_QUEUE", queue)
    client = make_app(Settings(broker_url=REDIS, store=f"sqlite:///{store_path}"))
    res = None
    try:
        res = client.send_task("cohortlab.deliver_alert", args=[stored["alert_id"]])
        out = res.get(timeout=60)
        assert out["status"] == "sent" and out["attempts"] == 3
        posts = http.wait(3)
        assert [p["status"] for p in posts] == [500, 500, 200]
        doc = store.get_alert(stored["alert_id"])
        assert doc["status"] == "sent" and [a["ok"] for a in doc["attempt_log"]] == [False, False, True]
        at = [datetime.fromisoformat(a["at"]) for a in doc["attempt_log"]]
        assert (at[1] - at[0]).total_seconds() >= 0.45 and (at[2] - at[1]).total_seconds() >= 0.95  # the backoff
    finally:
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.wait(timeout=10)
        r = redis.Redis.from_url(REDIS)
        for key in r.scan_iter(f"*{queue}*"):
            r.delete(key)
        if res is not None:
            r.delete(f"celery-task-meta-{res.id}")
