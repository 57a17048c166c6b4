"""The campaign pages and the Day-3 promotion modal (issue 13), rendered by the whole app on
a copy of the shared campaign's store (:mod:`tests.api.campaign_store`) under ``RELAXED``:
the day-by-day table, baselines, candidates and policy tiers from the stored campaign; the
review button on the campaign page and the Day-3 cohort page; the modal's allocation, VaR,
checklist figures, equity figure and signatures; the buttons' states per role with their
reasons; and CSRF on the modal's POSTs."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("httpx")

from manager import promotions, services, users  # noqa: E402
from manager.store import open_store  # noqa: E402
from tests.api.campaign_store import BEST, PROMOTER_ENV, RELAXED, copy_to  # noqa: E402
from tests.web.html import figure, no_external, table_rows  # noqa: E402
from tests.web import session  # noqa: E402
from tests.web.session import app_client  # noqa: E402



@pytest.fixture()
def env(tmp_path, monkeypatch, campaign):
    url = copy_to(campaign, tmp_path / "web-promo.db")
    tokens = {}
    with open_store(url) as store:
        for name, role in (("otto", "ops"), ("olga", "ops"), ("rita", "risk"), ("vera", "viewer")):
            _, tokens[name] = users.add_user(store, name, role, actor="test")
    monkeypatch.setenv("COHORTLAB_STORE", url)
    monkeypatch.delenv("COHORTLAB_API_TOKEN", raising=False)
    for k, v in PROMOTER_ENV.items():
        monkeypatch.setenv(k, v)
    return url, tokens


@pytest.fixture()
def client(env):
    with app_client() as c:
        yield c


def sign_in(client, tokens, name) -> str:
    """Sign ``name`` in; returns the session's CSRF token."""
    return session.sign_in(client, tokens, name, "/trading/campaigns")


def modal(client, campaign):
    r = client.get("/trading/promotions/review", params={"run_id": campaign.day3}, headers={"HX-Request": "true"})
    assert r.status_code == 200, r.text
    return r.text


def button(html, kind):
    """``(shown, enabled, reason)`` of a modal button."""
    m = re.search(rf'<button type="button" id="{kind}-button"[^>]*>', html)
    if not m:
        return False, False, None
    reason = re.search(rf'id="{kind}-reason">([^<]*)<', html)
    return True, "disabled" not in m.group(0), reason.group(1) if reason else None


def test_campaign_list_and_nav(client, campaign):
    page = client.get("/trading/campaigns").text
    assert 'href="/trading/campaigns" aria-current="page"' in page
    rows = table_rows(page, "campaign-table")
    assert len(rows) == 1 and campaign.campaign_id in rows[0] and "3 · 2018-01-14 → 2018-01-16" in rows[0]
    assert 'href="/trading/campaigns"' in client.get("/trading/cohorts").text  # linked in the nav


def test_campaign_page_from_the_stored_campaign(client, campaign):
    r = client.get(f"/trading/campaigns/{campaign.campaign_id}")
    assert r.status_code == 200
    page = r.text
    no_external(page)
    assert "/work/" not in page and "/tmp/" not in page  # no server path
    rows = table_rows(page, "day-table")
    assert len(rows) == 3
    for row, day in zip(rows, campaign.report["days"]):
        assert day["date"] in row and f'href="/trading/cohorts/{day["run_id"]}"' in row
        assert f'{100 * day["parent"]["roi"]:.2f} %' in row.replace("\u2212", "-") or \
            f'{100 * day["parent"]["roi"]:.2f}%' in row.replace("\u2212", "-")
        best = min(day["agents"], key=lambda a: a["rank"])
        assert f'>{best["agent_id"]}</a>' in row
    # the review button only on day 3
    assert ["review-button" in row for row in rows] == [False, False, True]
    assert f'hx-get="/trading/promotions/review?run_id={campaign.day3}"' in page
    cands = table_rows(page, "candidate-table")
    assert len(cands) == len(campaign.report["candidates"])
    first = campaign.report["candidates"][0]
    assert f'data-agent="{first["agent_id"]}"' in cands[0] and ("confirmed" in cands[0])
    assert len(table_rows(page, "baseline-table")) == 3 and "no baselines run on this day" in page
    assert page.count('class="policy-day"') == 3
    tier = campaign.report["days"][2]["policy"]["parent_tier"]
    assert f'parent {tier["tier"]:g}× ({tier["trigger"]})' in page
    assert client.get("/trading/campaigns/camp-none").status_code == 404


def test_cohort_page_of_day_3_has_the_review_button(client, campaign):
    assert 'id="review-promotion"' in client.get(f"/trading/cohorts/{campaign.day3}").text
    assert 'id="review-promotion"' not in client.get(f"/trading/cohorts/{campaign.run_ids[1]}").text


def test_modal_content_signed_out(client, campaign):
    html = modal(client, campaign)
    with open_store(services.current_settings().store) as store:
        ready = promotions.readiness(store, campaign.day3, config=RELAXED)
    cand = next(c for c in ready["candidates"] if c["agent_id"] == BEST)
    # allocation, tier, Kelly cap
    amount = cand["allocation"]["amount"]
    assert re.search(r'id="allocation-amount"><strong>[^<]*BTC</strong>', html)
    assert f'{cand["tier"]:g}×' in re.search(r'id="policy-tier">([^<]*)<', html).group(1)
    assert re.search(r'id="kelly-cap">0.00×', html) if cand["kelly_cap"] == 0 else True
    # the checklist: every guard rail with figure, threshold and verdict
    rows = table_rows(html, "checklist-table")
    assert [re.search(r'data-check="([^"]+)"', r).group(1) for r in rows] == [c["name"] for c in cand["checks"]]
    for row, check in zip(rows, cand["checks"]):
        assert check["threshold"].replace(">", "&gt;").replace("<", "&lt;") in row
        assert ("✓ pass" in row) == check["passed"]
    trades = next(r for r in rows if 'data-check="min_trades"' in r)
    assert '<td class="num figure">2</td>' in trades
    # VaR of the allocation: 4 estimates
    assert len(table_rows(html, "allocation-var")) == 4
    # the equity figure: the agent rescaled to the allocation, cash, buy-and-hold
    fig = figure(html, "fig-promotion")
    names = [t["name"] for t in fig["data"]]
    assert names[0].startswith(BEST) and "cash" in names and any("buy-and-hold" in n for n in names)
    assert fig["data"][1]["y"][0] == pytest.approx(amount)
    assert 'id="no-signatures"' in html
    assert button(html, "propose") == (True, False, "sign in to propose")
    assert not button(html, "approve")[0]


def test_button_states_per_role_through_the_chain(client, env, campaign):
    url, tokens = env
    csrf = sign_in(client, tokens, "vera")
    assert button(modal(client, campaign), "propose") == (True, False, "viewer: needs role ops or admin to propose")
    client.post("/signout", data={"csrf_token": csrf})

    csrf = sign_in(client, tokens, "otto")
    html = modal(client, campaign)
    assert button(html, "propose") == (True, True, None)
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', html))
    r = client.post("/trading/promotions/propose", data={**hidden, "notes": "a06 passes"},
                    headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert r.status_code == 200 and 'id="promotion-flash"' in r.text and "Proposed a06" in r.text
    assert button(r.text, "approve") == (True, True, None) and button(r.text, "reject")[1]
    pid = re.search(r'id="promotion-id">([^<]+)<', r.text).group(1)
    # notes are required (422 with the reason in the modal)
    r = client.post(f"/trading/promotions/{pid}/approve", data={**hidden, "notes": " "},
                    headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert r.status_code == 422 and "notes are required" in r.text
    r = client.post(f"/trading/promotions/{pid}/approve", data={**hidden, "notes": "ops checked"},
                    headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert r.status_code == 200 and "is now ops_approved" in r.text
    assert button(r.text, "approve") == (True, False, "you signed the ops step; another user must sign")
    client.post("/signout", data={"csrf_token": csrf})

    csrf = sign_in(client, tokens, "olga")
    assert button(modal(client, campaign), "approve") == (True, False, "risk must sign next")
    client.post("/signout", data={"csrf_token": csrf})
    csrf = sign_in(client, tokens, "vera")
    assert button(modal(client, campaign), "approve") == (True, False, "viewer: needs role risk to sign risk_approved")
    client.post("/signout", data={"csrf_token": csrf})

    csrf = sign_in(client, tokens, "rita")
    html = modal(client, campaign)
    sigs = table_rows(html, "signature-table")
    assert [re.search(r'data-user="([^"]+)"', s).group(1) for s in sigs] == ["otto", "otto"]
    assert "ops checked" in sigs[1] and 'class="role">ops<' in sigs[1]
    assert button(html, "approve") == (True, True, None)
    r = client.post(f"/trading/promotions/{pid}/approve", data={**hidden, "notes": "risk ok"},
                    headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert r.status_code == 200 and "is now risk_approved" in r.text
    assert 'id="promotion-status">risk_approved<' in r.text
    assert button(r.text, "propose")[2].endswith("queued for deployment")
    with open_store(url) as store:
        doc = store.get_promotion(pid)
        audit = [e for e in store.list_audit(50) if e["kind"] == "http.request"]
    assert doc["status"] == "risk_approved" and [s["user"] for s in doc["steps"]] == ["otto", "rita"]
    assert {(e["actor"], e["details"]["route"]) for e in audit} >= {
        ("user:otto", "/trading/promotions/propose"), ("user:rita", "/trading/promotions/{promotion_id}/approve")}


@pytest.mark.parametrize("csrf", [None, "wrong"])
def test_modal_posts_need_csrf(client, env, campaign, csrf):
    url, tokens = env
    sign_in(client, tokens, "otto")
    headers = {"HX-Request": "true", **({"X-CSRF-Token": csrf} if csrf else {})}
    data = {"run_id": campaign.day3, "campaign_id": campaign.campaign_id, "day": "3", "notes": "x"}
    r = client.post("/trading/promotions/propose", data=data, headers=headers)
    assert r.status_code == 403 and "CSRF" in r.text
    with open_store(url) as store:
        doc = promotions.propose(store, users.Principal("olga", "ops"), campaign.campaign_id, 3, notes="setup",
                                 config=RELAXED)
    for action in ("approve", "reject"):
        r = client.post(f"/trading/promotions/{doc['promotion_id']}/{action}",
                        data={**data, "checklist_hash": doc["checklist_hash"]}, headers=headers)
        assert r.status_code == 403 and "CSRF" in r.text
    with open_store(url) as store:
        assert [d["status"] for d in store.list_promotions(limit=10)] == ["proposed"]  # nothing changed


def test_signed_out_post_is_401_in_the_modal(client, campaign):
    page = client.get("/trading/campaigns").text
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', page).group(1)
    r = client.post("/trading/promotions/propose", data={"run_id": campaign.day3, "notes": "x"},
                    headers={"X-CSRF-Token": csrf, "HX-Request": "true"})
    assert r.status_code == 401 and "Sign in first" in r.text


def test_modal_of_a_day_below_3_or_unknown_run(client, campaign):
    assert client.get("/trading/promotions/review", params={"run_id": campaign.run_ids[0]}).status_code == 422
    assert client.get("/trading/promotions/review", params={"run_id": "nope"}).status_code == 404
