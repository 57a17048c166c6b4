"""Users and roles over HTTP (issue 13): the permission matrix of every state-changing route
x every kind of caller, the audit event of each successful change, the dashboard's sign-in,
sign-out and CSRF -- through the whole application on a store of its own.

To add a route, add a row to :data:`ROUTES` (its action in :data:`manager.users.PERMISSIONS`, a
body that succeeds) and its expected statuses to :data:`MATRIX`. The store holds the shared
promotion campaign (:mod:`tests.api.campaign_store`); a route on one request
(``{promotion_id}``) gets a fresh request proposed by another ops user (``olga``) before the
call, and ``{hash}`` in its body is that request's checklist hash; a route on one deployment
(``{deployment_id}``) gets a fresh running one (:mod:`tests.api.deployment_store`)."""
from __future__ import annotations

import re
import shutil
import time
import uuid

import pytest

pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from manager import promotions, services, users  # noqa: E402
from manager.store import open_store  # noqa: E402
from tests.api.campaign_store import PROMOTER_ENV, RELAXED, copy_to  # noqa: E402
from tests.api.deployment_store import deploy  # noqa: E402
from tests.api.server import TOKEN, assert_problem  # noqa: E402

LAUNCH = {"bankroll": 100, "agents": 2, "allocation": "equal", "start": "2024-01-02", "end": "2024-01-02T02:00",
          "seed": 1, "seed_from": "random"}

ROUTES: dict[str, tuple[str, str, dict, str]] = {
    # name: (method, path, a body that succeeds, action of manager.users.PERMISSIONS)
    "launch": ("POST", "/api/cohorts", LAUNCH, "launch"),
    "kill_switch": ("POST", "/api/risk/kill-switch", {"on": False, "reason": "drill"}, "kill_switch"),
    "propose": ("POST", "/api/promotions", {"campaign_id": "{campaign_id}", "day": 3, "notes": "a06 passes"},
                "propose"),
    # the first step of a request: ops signs it; the use case refuses any other role (403)
    "approve": ("POST", "/api/promotions/{promotion_id}/approve", {"notes": "checked", "checklist_hash": "{hash}"},
                "approve:ops"),
    "reject": ("POST", "/api/promotions/{promotion_id}/reject", {"notes": "not now"}, "reject"),
    # a fresh running deployment ({deployment_id}: tests.api.deployment_store) per call
    "rollback": ("POST", "/api/deployments/{deployment_id}/rollback", {"notes": "drill"}, "rollback"),
    "extend": ("POST", "/api/deployments/{deployment_id}/extend", {"notes": "re-approved", "days": 1}, "extend"),
    "pause": ("POST", "/api/deployments/{deployment_id}/pause", {"notes": "watch it"}, "pause"),
    # the assistant's intents (issue 15): drafting and asking store an intent / a knowledge entry
    "intent_grow": ("POST", "/api/assistant/intents/grow", {"bankroll": 100, "days": 1}, "launch"),
    "intent_text": ("POST", "/api/assistant/intents", {"text": "what should I fund tomorrow?"}, "launch"),
    # a fresh draft ({intent_id}, {confirm_token}) with an empty plan per call: confirming starts nothing heavy
    "intent_confirm": ("POST", "/api/assistant/intents/{intent_id}/confirm", {"confirm_token": "{confirm_token}"},
                       "launch"),
}

CALLERS = ("viewer", "ops", "risk", "admin", "bootstrap", "no token", "revoked", "wrong token")

MATRIX: dict[str, dict[str, int]] = {
    #              viewer ops  risk admin bootstrap no token revoked wrong token
    "launch":      dict(zip(CALLERS, (403, 202, 403, 202, 202, 401, 401, 401))),
    "kill_switch": dict(zip(CALLERS, (403, 403, 200, 200, 200, 401, 401, 401))),
    "propose":     dict(zip(CALLERS, (403, 201, 403, 201, 201, 401, 401, 401))),
    "approve":     dict(zip(CALLERS, (403, 200, 403, 403, 403, 401, 401, 401))),
    "reject":      dict(zip(CALLERS, (403, 200, 200, 200, 200, 401, 401, 401))),
    "rollback":    dict(zip(CALLERS, (403, 200, 200, 200, 200, 401, 401, 401))),
    "extend":      dict(zip(CALLERS, (403, 403, 200, 200, 200, 401, 401, 401))),
    "pause":       dict(zip(CALLERS, (403, 200, 200, 200, 200, 401, 401, 401))),
    "intent_grow": dict(zip(CALLERS, (403, 201, 403, 201, 201, 401, 401, 401))),
    "intent_text": dict(zip(CALLERS, (403, 200, 403, 200, 200, 401, 401, 401))),
    "intent_confirm": dict(zip(CALLERS, (403, 202, 403, 202, 202, 401, 401, 401))),
}

ACTORS = {"viewer": "user:vera", "ops": "user:otto", "risk": "user:rita", "admin": "user:ada",
          "bootstrap": "admin:bootstrap"}


@pytest.fixture(scope="module")
def users_template(tmp_path_factory, campaign):
    """The campaign's store with a user of every role and a revoked one (made once per module:
    hashing the tokens is the slow part), and ``{caller: token}``."""
    path = tmp_path_factory.mktemp("users") / "auth.db"
    url = copy_to(campaign, path)
    tokens = {"bootstrap": TOKEN, "wrong token": "clab_0123456789ab_" + "x" * 43}
    with open_store(url) as store:
        for caller, name in (("viewer", "vera"), ("ops", "otto"), ("risk", "rita"), ("admin", "ada"),
                             ("revoked", "rex")):
            _, tokens[caller] = users.add_user(store, name, "ops" if caller == "revoked" else caller, actor="test")
        users.revoke_user(store, "rex", actor="test")
    return path, tokens


@pytest.fixture()
def app_env(tmp_path, monkeypatch, users_template):
    """``(store url, {caller: token})``: a copy of the campaign's store with a user of every role
    and a revoked one; the promoter reviews under ``RELAXED``."""
    monkeypatch.chdir(tmp_path)  # no ./data: launches use the built-in SYNTHETIC market
    template, tokens = users_template
    shutil.copy(template, tmp_path / "auth.db")
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    for key, value in PROMOTER_ENV.items():
        monkeypatch.setenv(key, value)
    tokens = dict(tokens)
    monkeypatch.setenv("COHORTLAB_STORE", url)
    monkeypatch.setenv("COHORTLAB_API_TOKEN", TOKEN)
    monkeypatch.delenv("COHORTLAB_SESSION_SECRET", raising=False)
    return url, tokens


@pytest.fixture()
def client(app_env):
    services.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1",
                    follow_redirects=False) as c:
        yield c
        _wait_for_jobs(c, app_env[0])
    services.close_shared_store()


def _wait_for_jobs(client, url, timeout=120.0):
    """Let cohorts launched in the app's thread pool finish before the store is closed."""
    with open_store(url) as store:
        ids = [r["run_id"] for r in store.list_runs(limit=50)]
    for run_id in ids:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = client.get(f"/api/jobs/{run_id}").json().get("state")
            if state in ("completed", "failed", None):
                break
            time.sleep(0.2)


def _auth(tokens, caller):
    token = tokens.get(caller)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _requests(store, limit=200):
    return [e for e in store.list_audit(limit) if e["kind"] == "http.request"]


def test_matrix_covers_every_state_changing_route_and_agrees_with_permissions(client):
    spec = client.get("/openapi.json").json()
    changing = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops
                if m in ("post", "put", "patch", "delete")}
    assert changing == {(m, p) for m, p, _, _ in ROUTES.values()}, "add the new route to ROUTES and MATRIX"
    for name, (_, _, _, action) in ROUTES.items():
        allowed = users.PERMISSIONS[action] | ({"bootstrap"} if "admin" in users.PERMISSIONS[action] else set())
        ok = {c for c, status in MATRIX[name].items() if status < 400}
        assert ok == allowed, name


def _prepare(url, campaign, path, body):
    """The route's path and body for this store: a fresh request proposed by ``olga`` (ops)
    for ``{promotion_id}``, its checklist hash for ``{hash}``, the campaign for ``{campaign_id}``."""
    values = {"campaign_id": campaign.campaign_id}
    if "{promotion_id}" in path:
        with open_store(url) as store:
            doc = promotions.propose(store, users.Principal("olga", "ops"), campaign.campaign_id, 3, notes="setup",
                                     config=RELAXED)
        values.update(promotion_id=doc["promotion_id"], hash=doc["checklist_hash"])
    if "{deployment_id}" in path:
        with open_store(url) as store:
            values.update(deployment_id=deploy(store)["deployment_id"])
    if "{intent_id}" in path:
        from manager.intents import confirm_token

        draft = {"intent_id": f"int-{uuid.uuid4().hex[:12]}", "kind": "grow", "status": "draft",
                 "inputs": {"bankroll": 100.0, "days": 0}, "plan": [], "dates": []}
        draft["confirm_token"] = confirm_token(draft)
        with open_store(url) as store:
            store.create_intent(draft)
        values.update(intent_id=draft["intent_id"], confirm_token=draft["confirm_token"])
    fill = {k: v.format(**values) if isinstance(v, str) and "{" in v else v for k, v in body.items()}
    return path.format(**values) if "{" in path else path, fill


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("caller", CALLERS)
def test_permission_matrix(client, app_env, campaign, route, caller):
    url, tokens = app_env
    method, template, body, _ = ROUTES[route]
    path, body = _prepare(url, campaign, template, body)
    expected = MATRIX[route][caller]
    r = client.request(method, path, json=body, headers=_auth(tokens, caller))
    with open_store(url) as store:
        events = _requests(store)
    if expected >= 400:
        problem = assert_problem(r, expected)
        if expected == 403:
            role = {"revoked": "ops", "bootstrap": "admin"}.get(caller, caller)
            assert problem["type"].endswith("forbidden") and f"(role {role})" in problem["detail"]
            for needed in users.PERMISSIONS[ROUTES[route][3]]:
                assert needed in problem["detail"]
        else:
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert events == []  # refused requests change nothing and are not recorded as changes
        return
    assert r.status_code == expected, r.text
    assert [(e["actor"], e["details"]) for e in events] == [
        (ACTORS[caller], {"method": method, "route": template, "status": expected})]
    if route == "kill_switch":
        assert r.json()["actor"] == ACTORS[caller]


def test_no_token_configured_message_only_without_users(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/empty.db"
    monkeypatch.setenv("COHORTLAB_STORE", url)
    monkeypatch.delenv("COHORTLAB_API_TOKEN", raising=False)
    services.close_shared_store()
    with TestClient(create_app(), raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        body = assert_problem(c.post("/api/risk/kill-switch", json={"on": True, "reason": "x"}), 401)
        assert "COHORTLAB_API_TOKEN" in body["detail"] and "no users" in body["detail"]
        with open_store(url) as store:
            _, token = users.add_user(store, "rita", "risk", actor="test")
        body = assert_problem(c.post("/api/risk/kill-switch", json={"on": True, "reason": "x"}), 401)
        assert "disabled" not in body["detail"]
        r = c.post("/api/risk/kill-switch", json={"on": False, "reason": "x"},
                   headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["actor"] == "user:rita"  # users work without a bootstrap token
    services.close_shared_store()


def test_rotated_token_is_refused_and_the_new_one_works(client, app_env):
    url, tokens = app_env
    with open_store(url) as store:
        new = users.rotate_token(store, "rita", actor="test")
    body = {"on": False, "reason": "drill"}
    assert_problem(client.post("/api/risk/kill-switch", json=body, headers=_auth(tokens, "risk")), 401)
    assert client.post("/api/risk/kill-switch", json=body,
                       headers={"Authorization": f"Bearer {new}"}).status_code == 200


# -- dashboard: sign-in, sign-out, CSRF -------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(client, path="/signin"):
    page = client.get(path)
    assert page.status_code == 200
    return _CSRF.search(page.text).group(1)


def _sign_in(client, name, token):
    return client.post("/signin", data={"name": name, "token": token, "csrf_token": _csrf(client),
                                        "next": "/trading/cohorts/new"})


def test_sign_in_with_a_personal_token_shows_the_user_and_role(client, app_env):
    url, tokens = app_env
    assert 'id="signin-link"' in client.get("/trading/cohorts").text  # signed out: a sign-in link
    r = _sign_in(client, "otto", tokens["ops"])
    assert r.status_code == 303 and r.headers["location"] == "/trading/cohorts/new"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("cohortlab_session=") and "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower() and "secure" not in cookie.lower()  # plain http here
    page = client.get("/trading/cohorts").text
    assert re.search(r'id="session-user">otto<', page) and re.search(r'id="session-role">ops<', page)
    assert 'id="signin-link"' not in page
    launch = client.get("/trading/cohorts/new").text
    assert 'data-session="1"' in launch and 'name="token"' not in launch  # no token field when signed in
    with open_store(url) as store:
        assert [(e["actor"], e["details"]["route"]) for e in _requests(store)] == [("user:otto", "/signin")]


@pytest.mark.parametrize("name, caller", [("otto", "risk"), ("", "ops"), ("otto", "revoked"), ("nobody", "ops")])
def test_sign_in_refused(client, app_env, name, caller):
    r = _sign_in(client, name, app_env[1][caller])
    assert r.status_code == 401 and 'id="signin-error"' in r.text
    assert 'id="session-user"' not in client.get("/trading/cohorts").text


def test_bootstrap_token_signs_in_the_bootstrap_admin(client):
    assert _sign_in(client, "", TOKEN).status_code == 303
    assert re.search(r'id="session-user">admin:bootstrap<', client.get("/trading/cohorts").text)


def test_secure_cookie_over_https(app_env):
    services.close_shared_store()
    with TestClient(create_app(), base_url="https://127.0.0.1", follow_redirects=False) as c:
        r = _sign_in(c, "otto", app_env[1]["ops"])
        assert r.status_code == 303 and "secure" in r.headers["set-cookie"].lower()
    services.close_shared_store()


def test_sign_out_needs_csrf_and_ends_the_session(client, app_env):
    _sign_in(client, "otto", app_env[1]["ops"])
    refused = client.post("/signout", data={"csrf_token": "wrong"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert 'id="session-user"' in client.get("/trading/cohorts").text  # still signed in
    r = client.post("/signout", data={"csrf_token": _csrf(client, "/trading/cohorts")})
    assert r.status_code == 303
    assert 'id="signin-link"' in client.get("/trading/cohorts").text


@pytest.mark.parametrize("csrf", [None, "wrong"])
def test_post_without_or_with_a_wrong_csrf_token_is_403(client, app_env, csrf):
    url, tokens = app_env
    data = {"name": "otto", "token": tokens["ops"]}
    if csrf:
        data["csrf_token"] = csrf
    client.get("/signin")
    r = client.post("/signin", data=data)
    assert r.status_code == 403 and "CSRF" in r.text and r.headers["content-type"].startswith("text/html")
    assert 'id="session-user"' not in client.get("/trading/cohorts").text
    # a signed-in session's API request (the launch form's fetch) needs the CSRF header too
    _sign_in(client, "otto", tokens["ops"])
    headers = {} if csrf is None else {"X-CSRF-Token": csrf}
    assert_problem(client.post("/api/cohorts", json=LAUNCH, headers=headers), 403)


def test_session_launch_with_the_csrf_header_succeeds(client, app_env):
    url, tokens = app_env
    _sign_in(client, "otto", tokens["ops"])
    page = client.get("/trading/cohorts/new").text
    csrf = re.search(r'hx-headers=\'\{"X-CSRF-Token": "([^"]+)"\}\'', page).group(1)
    r = client.post("/api/cohorts", json=LAUNCH, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 202, r.text
    with open_store(url) as store:
        assert _requests(store)[0]["actor"] == "user:otto" and _requests(store)[0]["details"]["route"] == "/api/cohorts"
    # a viewer's session may not launch (403), a revoked user's session ends
    client.post("/signout", data={"csrf_token": csrf})
    _sign_in(client, "vera", tokens["viewer"])
    csrf = _csrf(client, "/trading/cohorts")
    assert_problem(client.post("/api/cohorts", json=LAUNCH, headers={"X-CSRF-Token": csrf}), 403)
    with open_store(url) as store:
        users.revoke_user(store, "vera", actor="test")
    assert_problem(client.post("/api/cohorts", json=LAUNCH, headers={"X-CSRF-Token": csrf}), 401)


# -- dashboard: the deployment controls (issue 14) ---------------------------------------------------
# The API's guard above covers the OpenAPI schema; dashboard routes are left out of it, so their
# state-changing routes have a matrix of their own. A route not listed in DASHBOARD_ROUTES must be
# one of DASHBOARD_COVERED_ELSEWHERE (their own tests), else the guard fails.

DASHBOARD_ROUTES: dict[str, tuple[str, dict, str, str]] = {
    # name: (path, a form that succeeds, action of manager.users.PERMISSIONS, the deployment's state before)
    "web_rollback": ("/trading/deployments/{deployment_id}/rollback", {"notes": "drill"}, "rollback", "running"),
    "web_extend": ("/trading/deployments/{deployment_id}/extend", {"notes": "re-approved", "days": "1"}, "extend",
                   "running"),
    "web_pause": ("/trading/deployments/{deployment_id}/pause", {"notes": "watch it"}, "pause", "running"),
    "web_resume": ("/trading/deployments/{deployment_id}/resume", {"notes": "fine"}, "pause", "paused"),
}

DASHBOARD_COVERED_ELSEWHERE = {
    "/signin", "/signout",  # this module's sign-in tests
    # tests/web/test_campaign_page.py
    "/trading/promotions/propose", "/trading/promotions/{promotion_id}/approve",
    "/trading/promotions/{promotion_id}/reject",
    # tests/web/test_assistant_pages.py (roles viewer/risk 403, ops/admin 200, signed out 401; CSRF)
    "/trading/assistant/grow", "/trading/assistant/intents/{intent_id}/confirm",
    "/toasts/dismiss",  # any signed-in session: it only hides toasts in that session
}

WEB_CALLERS = ("viewer", "ops", "risk", "admin", "bootstrap", "signed out", "revoked")

DASHBOARD_MATRIX: dict[str, dict[str, int]] = {
    #                viewer ops  risk admin bootstrap signed out revoked
    "web_rollback": dict(zip(WEB_CALLERS, (403, 200, 200, 200, 200, 401, 401))),
    "web_extend":   dict(zip(WEB_CALLERS, (403, 403, 200, 200, 200, 401, 401))),
    "web_pause":    dict(zip(WEB_CALLERS, (403, 200, 200, 200, 200, 401, 401))),
    "web_resume":   dict(zip(WEB_CALLERS, (403, 200, 200, 200, 200, 401, 401))),
}


def test_dashboard_matrix_covers_every_state_changing_dashboard_route(client):
    from web.routes import router

    def walk(routes):  # an included router is a wrapper of its original router (recent FastAPI)
        for r in routes:
            inner = getattr(r, "original_router", None) or (r if hasattr(r, "include_router") else None)
            if inner is not None:
                yield from walk(inner.routes)
            else:
                yield r

    changing = {r.path for r in walk(router.routes)
                if (getattr(r, "methods", None) or set()) & {"POST", "PUT", "PATCH", "DELETE"}}
    listed = {path for path, _, _, _ in DASHBOARD_ROUTES.values()}
    assert changing - DASHBOARD_COVERED_ELSEWHERE == listed, "add the new dashboard route to DASHBOARD_ROUTES"
    for name, (_, _, action, _) in DASHBOARD_ROUTES.items():
        allowed = users.PERMISSIONS[action] | ({"bootstrap"} if "admin" in users.PERMISSIONS[action] else set())
        assert {c for c, s in DASHBOARD_MATRIX[name].items() if s < 400} == allowed, name


@pytest.mark.parametrize("route", sorted(DASHBOARD_ROUTES))
@pytest.mark.parametrize("caller", WEB_CALLERS)
def test_dashboard_permission_matrix(client, app_env, route, caller):
    from manager import deployments as D

    url, tokens = app_env
    template, form, _, state = DASHBOARD_ROUTES[route]
    with open_store(url) as store:
        dep = deploy(store)["deployment_id"]
        if state == "paused":
            D.pause(store, dep, actor=users.Principal("ada", "admin"), notes="setup")
        before = D.get_deployment(store, dep)
    if caller == "revoked":  # signed in, then revoked: the session no longer stands for anyone
        with open_store(url) as store:
            _, token = users.add_user(store, "rudy", "ops", actor="test")
        assert _sign_in(client, "rudy", token).status_code == 303
        with open_store(url) as store:
            users.revoke_user(store, "rudy", actor="test")
    elif caller != "signed out":
        name = {"viewer": "vera", "ops": "otto", "risk": "rita", "admin": "ada", "bootstrap": ""}[caller]
        assert _sign_in(client, name, tokens[caller]).status_code == 303
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/trading/deployments").text).group(1)
    with open_store(url) as store:
        seen = len(_requests(store))
    path = template.format(deployment_id=dep)
    r = client.post(path, data=form, headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    expected = DASHBOARD_MATRIX[route][caller]
    assert r.status_code == expected, r.text
    assert r.headers["content-type"].startswith("text/html")
    with open_store(url) as store:
        after = D.get_deployment(store, dep)
        events = _requests(store)[: len(_requests(store)) - seen]
    if expected >= 400:
        assert 'id="deployment-flash"' in r.text and "nothing was changed" in r.text.lower()
        assert after == before  # refused: nothing changed
        assert events == []
        return
    who = {"viewer": "vera", "ops": "otto", "risk": "rita", "admin": "ada", "bootstrap": users.BOOTSTRAP_NAME}
    assert after["controls"][-1]["user"] == who[caller]
    assert after["updated_at"] != before["updated_at"]
    assert [(e["actor"], e["details"]) for e in events] == [
        (ACTORS[caller], {"method": "POST", "route": template, "status": 200})]
