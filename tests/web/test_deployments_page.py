"""The deployment pages (issue 14), rendered by the whole app on a real SQLite store holding
deployments started and stepped on real binance-5m bars (:mod:`tests.api.deployment_store`):
the list's and the detail page's figures against the stored document (recomputed here), the
rollback thresholds, the buttons per role with their reasons, the control POSTs (an allowed
role rolls back: stored ``rolled_back`` with a ``manual`` incident; a disallowed one gets 403
and nothing changes; no CSRF token: refused), the polled partial and the 404 page."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

pytest.importorskip("httpx")

from manager import deployments as D  # noqa: E402
from manager import users  # noqa: E402
from manager.store import open_store  # noqa: E402
from tests.api.deployment_store import ALLOCATION, deploy  # noqa: E402
from tests.helpers import BINANCE  # noqa: E402
from tests.web.html import figure, no_external, table_rows  # noqa: E402
from tests.web import session  # noqa: E402
from tests.web.session import app_client  # noqa: E402

STEPS = 36  # > min_bars_for_variance: every trigger is evaluated
ROLES = {"otto": "ops", "rita": "risk", "vera": "viewer", "ada": "admin"}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """``(path, {"running": id, "rolled": id, "paused": id}, {name: token})``: a store with a
    deployment stepped :data:`STEPS` bars, one rolled back by hand and one paused."""
    if not BINANCE.is_dir():
        pytest.skip(f"bar data not found at {BINANCE}")
    path = tmp_path_factory.mktemp("web-deployments") / "template.db"
    ids, tokens = {}, {}
    with open_store(f"sqlite:///{path}") as store:
        for name, role in ROLES.items():
            _, tokens[name] = users.add_user(store, name, role, actor="test")
        rolled = deploy(store, steps=4)
        D.rollback(store, rolled["deployment_id"], "manual", market=D.deployment_market(rolled),
                   actor=users.Principal("rita", "risk"), notes="setup rollback")
        paused = deploy(store, steps=2)
        D.pause(store, paused["deployment_id"], actor=users.Principal("otto", "ops"), notes="setup pause")
        ids.update(rolled=rolled["deployment_id"], paused=paused["deployment_id"],
                   running=deploy(store, steps=STEPS)["deployment_id"])
    return path, ids, tokens


@pytest.fixture()
def env(template, tmp_path, monkeypatch):
    """``(store url, ids, tokens)`` on a fresh copy of :func:`template`."""
    path, ids, tokens = template
    shutil.copy(path, tmp_path / "deployments.db")
    url = f"sqlite:///{tmp_path / 'deployments.db'}"
    monkeypatch.setenv("COHORTLAB_STORE", url)
    monkeypatch.delenv("COHORTLAB_API_TOKEN", raising=False)
    return url, ids, tokens


@pytest.fixture()
def client(env):
    with app_client() as c:
        yield c


def sign_in(client, tokens, name) -> str:
    """Sign ``name`` in; returns the session's CSRF token."""
    return session.sign_in(client, tokens, name, "/trading/deployments")


def stored(url, deployment_id):
    with open_store(url) as store:
        return D.get_deployment(store, deployment_id)


def button(html, kind):
    """``(enabled, reason)`` of a control button."""
    m = re.search(rf'<button type="button" id="{kind}-button"[^>]*>', html)
    assert m, f"no {kind} button"
    reason = re.search(rf'id="{kind}-reason">([^<]*)<', html)
    return "disabled" not in m.group(0), reason.group(1) if reason else None


def cell(row, cls):
    return re.sub(r"<[^>]+>", "", re.search(rf'<td class="[^"]*\b{cls}\b[^"]*"[^>]*>(.*?)</td>', row, re.S).group(1)
                  ).strip()


def drawdown(doc):
    """Max drawdown recomputed from the stored equity: 1 - equity / running peak (peak >= allocation)."""
    eq = np.asarray(doc["equity"], dtype=float)
    peak = np.maximum.accumulate(np.maximum(eq, doc["allocation"]["amount"]))
    return float((1 - eq / peak).max()), float(peak[-1])


def test_list_shows_every_deployment_with_its_figures(client, env):
    url, ids, _ = env
    r = client.get("/trading/deployments")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    no_external(html)
    assert '<a href="/trading/deployments" aria-current="page">Deployments</a>' in html
    rows = table_rows(html, "deployment-table")
    order = [re.search(r'data-deployment="([^"]+)"', row).group(1) for row in rows]
    with open_store(url) as store:
        docs = store.list_deployments(limit=10)
    # newest first (created_at descending; the three share their start, so then by id)
    newest = sorted(sorted(docs, key=lambda d: d["deployment_id"]), key=lambda d: d["created_at"], reverse=True)
    assert order == [d["deployment_id"] for d in newest] and set(order) == set(ids.values())
    rows = {i: row for i, row in zip(order, rows)}
    doc = stored(url, ids["running"])
    row = rows[ids["running"]]
    pnl = doc["equity"][-1] / ALLOCATION - 1
    assert cell(row, "pnl") == f"{pnl * 100:.2f} %"
    dd, _ = drawdown(doc)
    assert cell(row, "dd") == f"{dd * 100:.2f} % / 5.00 %"
    assert cell(row, "equity") == f"{doc['equity'][-1]:.6g}" or float(cell(row, "equity")) == pytest.approx(
        doc["equity"][-1], rel=1e-5)
    # the timer is measured at the deployment clock: the close of its last bar, 3 days from the start
    left_s = 3 * 86400 - STEPS * 300
    assert cell(row, "timer") == f"{left_s // 86400}d {left_s % 86400 // 3600:02d}h {left_s % 3600 // 60:02d}m"
    assert doc["timestamps"][-1][:16].replace("T", " ") == cell(row, "last-bar")
    assert 'data-status="rolled_back"' in rows[ids["rolled"]] and cell(rows[ids["rolled"]], "timer") == "rolled back"
    # the status filter
    only = table_rows(client.get("/trading/deployments", params={"status": "paused"}).text, "deployment-table")
    assert len(only) == 1 and ids["paused"] in only[0]
    assert client.get("/trading/deployments", params={"status": "bogus"}).status_code == 400


def test_detail_page_figures_chart_and_thresholds(client, env):
    url, ids, _ = env
    doc = stored(url, ids["running"])
    r = client.get(f"/trading/deployments/{ids['running']}")
    assert r.status_code == 200
    html = r.text
    no_external(html)
    assert 'hx-trigger="every 5s"' in html and f'hx-get="/trading/deployments/{ids["running"]}/live"' in html
    assert 'id="deployment-status">running<' in html
    dd, peak = drawdown(doc)
    assert f"{(doc['equity'][-1] / ALLOCATION - 1) * 100:.2f} %" in re.search(r'id="pnl".*?</td>', html, re.S).group(0)
    assert f"{dd * 100:.2f} %" in re.search(r'id="drawdown".*?</td>', html, re.S).group(0)
    fig = figure(html, "fig-deployment")
    pytest.importorskip("plotly.graph_objects").Figure(fig)  # valid for plotly.py's schema
    equity, alloc, floor = fig["data"]
    assert equity["y"] == doc["equity"] and equity["x"] == doc["timestamps"]
    assert alloc["y"] == [ALLOCATION, ALLOCATION]
    # the rollback level: the running peak (including the allocation) x (1 - 5 %)
    running = np.maximum.accumulate(np.maximum(np.asarray(doc["equity"]), ALLOCATION)) * 0.95
    assert floor["y"] == pytest.approx(running.tolist(), rel=1e-12)
    assert "running peak" in floor["name"] and "5.00%" in floor["name"]
    assert float(re.search(r'id="threshold-level">([^<]+)<', html).group(1)) == pytest.approx(peak * 0.95, rel=1e-5)
    for trigger in ("drawdown", "variance", "timer"):
        assert f'data-threshold="{trigger}"' in html
    assert "2018-01-18 00:00" in html  # expires_at
    fills = table_rows(html, "fill-table") if doc["fills"] else []
    assert len(fills) == min(20, len(doc["fills"]))
    if fills:
        assert f'data-seq="{doc["fills"][-1]["seq"]}"' in fills[0]  # newest first
    positions = doc["broker"]["positions"]
    if positions:
        assert len(table_rows(html, "position-table")) == len(positions)
    else:
        assert 'id="no-positions"' in html
    # the rolled-back one: its incident with who and why, and no polling
    html = client.get(f"/trading/deployments/{ids['rolled']}").text
    assert 'hx-trigger="every 5s"' not in html
    incident = table_rows(html, "incident-table")
    assert len(incident) == 1 and 'data-trigger="manual"' in incident[0] and "setup rollback" in incident[0]


def test_buttons_by_role(client, env):
    url, ids, tokens = env
    page = f"/trading/deployments/{ids['running']}"
    html = client.get(page).text  # signed out
    assert button(html, "rollback") == (False, "sign in as admin or ops or risk to rollback")
    assert 'id="deployment-signin"' in html
    expected = {  # (rollback, extend, pause, resume) enabled on a running deployment
        "vera": (False, False, False, False), "otto": (True, False, True, False),
        "rita": (True, True, True, False), "ada": (True, True, True, False)}
    for name, enabled in expected.items():
        sign_in(client, tokens, name)
        html = client.get(page).text
        got = tuple(button(html, k)[0] for k in ("rollback", "extend", "pause", "resume"))
        assert got == enabled, name
        assert button(html, "resume")[1] == "the deployment is running; resume needs paused"
        if name == "vera":
            assert button(html, "rollback")[1] == "viewer: needs role admin or ops or risk to rollback"
        if name == "otto":
            assert button(html, "extend")[1] == "ops: needs role admin or risk to extend"
    # the roles come from the one permission matrix
    assert set(D.CONTROL_ROLES) == users.PERMISSIONS["rollback"] and set(D.EXTEND_ROLES) == users.PERMISSIONS["extend"]
    html = client.get(f"/trading/deployments/{ids['rolled']}").text
    assert not any(button(html, k)[0] for k in ("rollback", "extend", "pause", "resume"))


def test_rollback_by_an_allowed_role(client, env):
    url, ids, tokens = env
    dep = ids["running"]
    csrf = sign_in(client, tokens, "otto")
    r = client.post(f"/trading/deployments/{dep}/rollback", data={"notes": "drill from the page"},
                    headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert r.status_code == 200, r.text
    assert 'id="deployment-flash"' in r.text and "Rolled back" in r.text
    assert 'id="deployment-status">rolled_back<' in r.text and 'hx-trigger="every 5s"' not in r.text
    doc = stored(url, dep)
    assert doc["status"] == "rolled_back" and doc["rollback"]["by"] == "otto"
    assert [(i["trigger"], i["detail"]["user"], i["detail"]["notes"]) for i in doc["incidents"]] == [
        ("manual", "otto", "drill from the page")]
    assert "drill from the page" in table_rows(r.text, "incident-table")[0]
    with open_store(url) as store:
        assert store.get_promotion(doc["promotion_id"])["status"] == "rolled_back"


def test_refusals_change_nothing(client, env):
    url, ids, tokens = env
    dep = ids["running"]
    before = stored(url, dep)
    # no CSRF token: the 403 page
    sign_in(client, tokens, "otto")
    r = client.post(f"/trading/deployments/{dep}/rollback", data={"notes": "x"})
    assert r.status_code == 403 and "CSRF" in r.text
    # a viewer: 403, shown inline
    csrf = sign_in(client, tokens, "vera")
    r = client.post(f"/trading/deployments/{dep}/rollback", data={"notes": "I want out"},
                    headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert r.status_code == 403 and 'id="deployment-flash"' in r.text and "nothing was changed" in r.text
    # ops may not extend (403); notes are required (422); a running deployment cannot resume (409)
    csrf = sign_in(client, tokens, "otto")
    for action, data, status in (("extend", {"notes": "more", "days": "1"}, 403), ("rollback", {"notes": " "}, 422),
                                 ("resume", {"notes": "go"}, 409)):
        r = client.post(f"/trading/deployments/{dep}/{action}", data=data, headers={"X-CSRF-Token": csrf})
        assert r.status_code == status, (action, r.text)
        assert 'class="flash error"' in r.text
    # signed out: 401
    client.post("/signout", data={"csrf_token": csrf})
    csrf = session.page_csrf(client, "/trading/deployments")
    r = client.post(f"/trading/deployments/{dep}/pause", data={"notes": "x"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 401 and "Sign in first" in r.text
    after = stored(url, dep)
    assert after["status"] == "running" and after["incidents"] == [] and after["controls"] == []
    assert after["expires_at"] == before["expires_at"] and after["updated_at"] == before["updated_at"]


def test_pause_resume_and_extend(client, env):
    url, ids, tokens = env
    dep = ids["running"]
    csrf = sign_in(client, tokens, "rita")
    h = {"X-CSRF-Token": csrf}
    r = client.post(f"/trading/deployments/{dep}/extend", data={"notes": "re-approved", "days": "1.5"}, headers=h)
    assert r.status_code == 200 and "2018-01-19 12:00" in r.text
    assert client.post(f"/trading/deployments/{dep}/extend", data={"notes": "x", "days": "40"},
                       headers=h).status_code == 422
    r = client.post(f"/trading/deployments/{dep}/pause", data={"notes": "watch it"}, headers=h)
    assert r.status_code == 200 and 'id="deployment-status">paused<' in r.text
    assert button(r.text, "resume") == (True, None) and button(r.text, "pause")[0] is False
    r = client.post(f"/trading/deployments/{dep}/resume", data={"notes": "fine"}, headers=h)
    assert r.status_code == 200 and 'id="deployment-status">running<' in r.text
    doc = stored(url, dep)
    assert doc["expires_at"].startswith("2018-01-19T12:00:00")
    assert [(c["action"], c["user"], c["notes"]) for c in doc["controls"]] == [
        ("extended", "rita", "re-approved"), ("paused", "rita", "watch it"), ("resumed", "rita", "fine")]
    assert [re.search(r'data-action="([^"]+)"', row).group(1) for row in table_rows(r.text, "controls-table")] == [
        "resumed", "paused", "extended"]


def test_live_partial_and_unknown_ids(client, env):
    url, ids, _ = env
    live = f"/trading/deployments/{ids['running']}/live"
    r = client.get(live, headers={"HX-Request": "true"})
    assert r.status_code == 200 and r.text.lstrip().startswith('<section class="panel" id="deployment-live"')
    assert 'hx-trigger="every 5s"' in r.text and "<html" not in r.text
    assert figure(r.text, "fig-deployment")["data"][0]["y"] == stored(url, ids["running"])["equity"]
    assert client.get(live).status_code == 303  # a plain request goes to the page
    r = client.get(f"/trading/deployments/{ids['rolled']}/live", headers={"HX-Request": "true"})
    assert 'hx-trigger' not in r.text and ">rolled_back<" in r.text  # polling stops
    for path in ("/trading/deployments/dep-000000000000", "/trading/deployments/dep-000000000000/live"):
        r = client.get(path, headers={"HX-Request": "true"} if path.endswith("live") else {})
        assert r.status_code == 404 and "Deployment not found" in r.text
        assert r.headers["content-type"].startswith("text/html")
