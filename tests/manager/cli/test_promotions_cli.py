"""``cohortlab promotions ...`` (issue 13) end to end on the shared real campaign
(:mod:`tests.promotion_campaign`): readiness, propose, approve (ops then risk), reject,
show, list (table, JSON, CSV), expire; users authenticated by their personal tokens
(:func:`manager.users.add_user`); wrong roles, separation of duties, ``--as`` mismatch
and bad tokens exit 2; the transitions are counted in ``cohortlab_promotions_total``.
Also the one-source-of-truth rules between ``manager.users.PERMISSIONS`` and the
default approval chain."""
from __future__ import annotations

import csv
import json
import shutil
from datetime import datetime, timezone

import pytest

from manager import metrics
from manager import promotions as P
from manager import users
from manager.store import SQLiteStore, open_store
from tests.helpers import BINANCE
from tests.promotion_campaign import BEST, RELAXED, run

pytestmark = pytest.mark.skipif(not BINANCE.is_dir(), reason=f"bar data not found at {BINANCE}")

#: the guard rails under which agent a06 passes (tests.promotion_campaign.RELAXED) as --set options
RELAXED_SET = [a for k, v in (("min_trades", RELAXED.min_trades), ("dsr_min", RELAXED.dsr_min),
                              ("pbo_max", RELAXED.pbo_max), ("n_random", RELAXED.n_random))
               for a in ("--set", f"{k}={v}")]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    path = tmp_path_factory.mktemp("promotions-cli") / "s.db"
    with SQLiteStore(path) as s:
        report = run(s)
    return path, report


@pytest.fixture
def store_url(stored, tmp_path, monkeypatch) -> str:
    """A copy of the campaign's store; no token in the environment to start with."""
    shutil.copy(stored[0], tmp_path / "s.db")
    for name in ("COHORTLAB_TOKEN", "COHORTLAB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return f"sqlite:///{tmp_path / 's.db'}"


@pytest.fixture
def cid(stored) -> str:
    return stored[1]["campaign_id"]


@pytest.fixture
def day3(stored) -> str:
    return stored[1]["days"][2]["run_id"]


@pytest.fixture
def tokens(store_url) -> dict[str, str]:
    """Personal tokens of olga and otto (ops), rick and rita (risk), ada (admin), vic (viewer)."""
    out = {}
    with open_store(store_url) as store:
        for name, role in (("olga", "ops"), ("otto", "ops"), ("rick", "risk"), ("rita", "risk"),
                           ("ada", "admin"), ("vic", "viewer")):
            out[name] = users.add_user(store, name, role)[1]
    return out


def _count(status: str) -> float:
    return metrics.registry().get_sample_value("cohortlab_promotions_total", {"status": status}) or 0.0


def _as(cli, monkeypatch, token: str | None, *args, store_url: str):
    if token is None:
        monkeypatch.delenv("COHORTLAB_TOKEN", raising=False)
    else:
        monkeypatch.setenv("COHORTLAB_TOKEN", token)
    return cli(*args, store_url=store_url)


def _only(store_url: str) -> dict:
    with open_store(store_url) as store:
        (doc,) = store.list_promotions()
    return doc


def test_propose_approve_show_list_end_to_end(cli, store_url, tokens, cid, day3, monkeypatch, tmp_path):
    before = {s: _count(s) for s in ("proposed", "ops_approved", "risk_approved")}

    ready = cli("promotions", "readiness", day3, *RELAXED_SET, store_url=store_url)
    assert ready.exit_code == 0, ready.output
    assert f"ready: agent {BEST}" in ready.output and "next step: propose (ops, admin)" in ready.output
    for rail in ("min_trades", "deflated_sharpe", "pbo", "liquidity", "policy"):
        assert rail in ready.output
    data = json.loads(cli("promotions", "readiness", day3, "--json", *RELAXED_SET, store_url=store_url).output)
    assert data["ready"] and data["candidate"] == BEST and data["blocking"] == []
    blocked = cli("promotions", "readiness", day3, store_url=store_url)  # the default rails: PBO blocks
    assert blocked.exit_code == 0 and "not ready" in blocked.output and "pbo = 0.645" in blocked.output

    res = _as(cli, monkeypatch, tokens["olga"], "promotions", "propose", "--campaign", cid, "--day", 3,
              "--notes", "strong holdout", "--as", "olga", *RELAXED_SET, store_url=store_url)
    assert res.exit_code == 0, res.output
    assert tokens["olga"] not in res.output  # never echoed
    doc = _only(store_url)
    pid, digest = doc["promotion_id"], doc["checklist_hash"]
    assert doc["status"] == "proposed" and doc["agent_id"] == BEST and doc["proposed_by"]["user"] == "olga"
    assert digest == data["checklist_hash"] and f"promotion {pid}: proposed" in res.output
    assert "next step: approve (ops)" in res.output

    # ops proposes and approves (the proposer may sign the first step) ...
    res = _as(cli, monkeypatch, tokens["olga"], "promotions", "approve", pid, "--notes", "ops: checked",
              "--checklist-hash", digest, "--as", "olga", store_url=store_url)
    assert res.exit_code == 0, res.output
    assert "ops_approved" in res.output and "next step: approve (risk)" in res.output
    # ... and risk signs the last step: queued for deployment
    res = _as(cli, monkeypatch, tokens["rick"], "promotions", "approve", pid, "--notes", "risk: within limits",
              "--checklist-hash", digest, "--as", "rick", store_url=store_url)
    assert res.exit_code == 0, res.output
    assert "risk_approved" in res.output and "queued for deployment" in res.output

    shown = cli("promotions", "show", pid, store_url=store_url)
    assert shown.exit_code == 0, shown.output
    out = shown.output
    for text in ("checklist of agent a06", "deflated_sharpe", "signatures", "ops: checked", "risk: within limits",
                 "strong holdout", "olga", "rick", "risk_approved", "queued for deployment", "log"):
        assert text in out, text
    full = json.loads(cli("promotions", "show", pid, "--json", store_url=store_url).output)
    assert [(s["user"], s["role"], s["step"]) for s in full["steps"]] == [
        ("olga", "ops", "ops_approved"), ("rick", "risk", "risk_approved")]
    assert all(s["checklist_hash"] == digest and s["notes"] and s["at"] for s in full["steps"])
    assert [(r["from_status"], r["status"]) for r in full["log"]] == [
        (None, "proposed"), ("proposed", "ops_approved"), ("ops_approved", "risk_approved")]
    assert all(c["figure"] is not None or c["name"] == "policy" for c in full["checklist"]["checks"])

    listed = cli("promotions", "list", "--status", "risk_approved", "--csv", tmp_path / "p.csv", store_url=store_url)
    assert listed.exit_code == 0 and pid in listed.output and "olga" in listed.output
    rows = list(csv.DictReader(open(tmp_path / "p.csv", encoding="utf-8")))
    assert [(r["promotion_id"], r["status"], r["proposed_by"]) for r in rows] == [(pid, "risk_approved", "olga")]
    assert rows[0]["ops_signed_by"].startswith("olga (ops) at ")
    assert rows[0]["risk_signed_by"].startswith("rick (risk) at ")
    page = json.loads(cli("promotions", "list", "--campaign", cid, "--json", store_url=store_url).output)
    assert page["total"] == 1 and page["items"][0]["promotion_id"] == pid
    none = cli("promotions", "list", "--status", "rejected", store_url=store_url)
    assert none.exit_code == 0 and "no promotion requests matching" in none.output
    bad = cli("promotions", "list", "--status", "Not A Status", store_url=store_url)
    assert bad.exit_code == 2 and "status" in bad.output

    assert _count("proposed") == before["proposed"] + 1
    assert _count("ops_approved") == before["ops_approved"] + 1
    assert _count("risk_approved") == before["risk_approved"] + 1
    with open_store(store_url) as store:
        kinds = [e["kind"] for e in store.list_audit(20)]
    assert {"promotion.proposed", "promotion.ops_approved", "promotion.risk_approved"} <= set(kinds)


def test_wrong_roles_and_separation_of_duties_exit_2(cli, store_url, tokens, cid, monkeypatch):
    propose = ("promotions", "propose", "--campaign", cid, "--day", 3, "--notes", "n", *RELAXED_SET)
    for name, why in (("vic", "user 'vic' (role viewer) may not propose; needs one of: admin, ops"),
                      ("rick", "user 'rick' (role risk) may not propose")):
        res = _as(cli, monkeypatch, tokens[name], *propose, "--as", name, store_url=store_url)
        assert res.exit_code == 2 and why in res.output, res.output
    with open_store(store_url) as store:
        assert store.list_promotions() == []

    assert _as(cli, monkeypatch, tokens["otto"], *propose, "--as", "otto", store_url=store_url).exit_code == 0
    doc = _only(store_url)
    approve = ("promotions", "approve", doc["promotion_id"], "--notes", "ok", "--checklist-hash",
               doc["checklist_hash"])
    res = _as(cli, monkeypatch, tokens["rick"], *approve, "--as", "rick", store_url=store_url)  # risk first
    assert res.exit_code == 2 and "needs role ops; rick is risk" in res.output
    res = _as(cli, monkeypatch, tokens["ada"], *approve, "--as", "ada", store_url=store_url)  # admin signs no step
    assert res.exit_code == 2 and "needs role ops; ada is admin" in res.output
    res = _as(cli, monkeypatch, tokens["vic"], "promotions", "reject", doc["promotion_id"], "--notes", "no",
              "--as", "vic", store_url=store_url)
    assert res.exit_code == 2 and "may not reject" in res.output
    res = _as(cli, monkeypatch, tokens["otto"], *approve[:3], "--notes", " ", *approve[5:], "--as", "otto",
              store_url=store_url)
    assert res.exit_code == 2 and "notes are required" in res.output
    res = _as(cli, monkeypatch, tokens["olga"], *approve[:6], "0" * 64, "--as", "olga", store_url=store_url)
    assert res.exit_code == 2 and "re-approval needed" in res.output
    assert _as(cli, monkeypatch, tokens["olga"], *approve, "--as", "olga", store_url=store_url).exit_code == 0
    res = _as(cli, monkeypatch, tokens["otto"], *approve, "--as", "otto", store_url=store_url)  # ops again
    assert res.exit_code == 2 and "already signed by olga" in res.output
    assert _only(store_url)["status"] == "ops_approved"

    # separation of duties under a chain whose two steps need the same role: the same ops user
    # can never sign both (the request is made through the use case with that chain)
    with open_store(store_url) as store:
        P.reject(store, users.Principal("rita", "risk"), doc["promotion_id"], "redo")
        twice = P.ApprovalChain(steps=(P.ApprovalStep("ops", "ops_approved"), P.ApprovalStep("ops", "ops2")))
        req = P.propose(store, users.Principal("ada", "admin"), cid, 3, notes="two ops", config=RELAXED, chain=twice)
    approve = ("promotions", "approve", req["promotion_id"], "--notes", "ok", "--checklist-hash",
               req["checklist_hash"])
    assert _as(cli, monkeypatch, tokens["olga"], *approve, "--as", "olga", store_url=store_url).exit_code == 0
    res = _as(cli, monkeypatch, tokens["olga"], *approve, "--as", "olga", store_url=store_url)
    assert res.exit_code == 2 and "olga already signed a step" in res.output
    assert _as(cli, monkeypatch, tokens["otto"], *approve, "--as", "otto", store_url=store_url).exit_code == 0


def test_as_mismatch_and_bad_tokens_exit_2(cli, store_url, tokens, cid, monkeypatch):
    propose = ("promotions", "propose", "--campaign", cid, "--day", 3, "--notes", "n", *RELAXED_SET)
    res = _as(cli, monkeypatch, tokens["olga"], *propose, "--as", "otto", store_url=store_url)
    assert res.exit_code == 2 and "--as 'otto' does not match the token's user 'olga'" in res.output
    assert tokens["olga"] not in res.output
    res = _as(cli, monkeypatch, None, *propose, "--as", "olga", store_url=store_url)
    assert res.exit_code == 2 and "no token" in res.output
    forged = tokens["olga"][:-4] + "AAAA"
    res = _as(cli, monkeypatch, forged, *propose, "--as", "olga", store_url=store_url)
    assert res.exit_code == 2 and "not valid" in res.output and forged not in res.output
    with open_store(store_url) as store:
        users.revoke_user(store, "otto")
    res = cli(*propose, "--as", "otto", "--token", tokens["otto"], store_url=store_url)  # --token: same rules
    assert res.exit_code == 2 and "not valid" in res.output and tokens["otto"] not in res.output
    res = _as(cli, monkeypatch, tokens["olga"], "promotions", "approve", "promo-000000000000", "--notes", "x",
              "--checklist-hash", "a" * 64, "--as", "olga", store_url=store_url)
    assert res.exit_code == 2 and "no promotion 'promo-000000000000'" in res.output
    with open_store(store_url) as store:
        assert store.list_promotions() == []

    # the bootstrap token is the admin 'admin:bootstrap': it may propose and reject, not approve
    monkeypatch.setenv("COHORTLAB_API_TOKEN", "bootstrap-secret-token-123")
    res = _as(cli, monkeypatch, "bootstrap-secret-token-123", *propose, "--as", users.BOOTSTRAP_NAME,
              store_url=store_url)
    assert res.exit_code == 0, res.output
    assert "bootstrap-secret-token-123" not in res.output and "proposed by admin:bootstrap (admin)" in res.output
    pid = _only(store_url)["promotion_id"]
    before = _count("rejected")
    res = _as(cli, monkeypatch, "bootstrap-secret-token-123", "promotions", "reject", pid, "--notes", "not now",
              "--as", users.BOOTSTRAP_NAME, store_url=store_url)
    assert res.exit_code == 0 and "rejected by admin:bootstrap" in res.output
    assert _only(store_url)["status"] == "rejected" and _count("rejected") == before + 1
    res = _as(cli, monkeypatch, tokens["rick"], "promotions", "reject", pid, "--notes", "again", "--as", "rick",
              store_url=store_url)
    assert res.exit_code == 2 and "is rejected: nothing to reject" in res.output


def test_reject_and_expire(cli, store_url, tokens, cid, monkeypatch):
    with open_store(store_url) as store:  # proposed long ago: its 24 h window is over
        old = P.propose(store, users.Principal("olga", "ops"), cid, 3, notes="old", config=RELAXED,
                        now=datetime(2026, 1, 5, 9, tzinfo=timezone.utc))
    before = _count("expired")
    res = cli("promotions", "expire", store_url=store_url)
    assert res.exit_code == 0 and f"expired 1 promotion request(s): {old['promotion_id']}" in res.output
    assert _only(store_url)["status"] == "expired" and _count("expired") == before + 1
    again = json.loads(cli("promotions", "expire", "--json", store_url=store_url).output)
    assert again == {"expired": [], "count": 0} and _count("expired") == before + 1
    shown = cli("promotions", "show", old["promotion_id"], store_url=store_url).output
    assert "system" in shown and "approval window of 24 h elapsed" in shown

    # a new proposal after the expiry; rick (risk) rejects it with notes
    res = _as(cli, monkeypatch, tokens["olga"], "promotions", "propose", "--campaign", cid, "--day", 3,
              "--agent", BEST, "--notes", "retry", "--as", "olga", *RELAXED_SET, store_url=store_url)
    assert res.exit_code == 0, res.output
    with open_store(store_url) as store:
        (new,) = store.list_promotions(status="proposed")
    res = _as(cli, monkeypatch, tokens["rick"], "promotions", "reject", new["promotion_id"], "--notes",
              "liquidity too thin", "--as", "rick", store_url=store_url)
    assert res.exit_code == 0 and "rejected by rick (risk)" in res.output
    with open_store(store_url) as store:
        assert store.get_promotion(new["promotion_id"])["status"] == "rejected"
    # an unknown agent or a day before 3 is refused with the reason
    res = _as(cli, monkeypatch, tokens["olga"], "promotions", "propose", "--campaign", cid, "--day", 2,
              "--notes", "x", "--as", "olga", store_url=store_url)
    assert res.exit_code == 2 and "opens after Day 3" in res.output
    res = _as(cli, monkeypatch, tokens["olga"], "promotions", "propose", "--campaign", cid, "--day", 3,
              "--agent", "zz", "--notes", "x", "--as", "olga", *RELAXED_SET, store_url=store_url)
    assert res.exit_code == 2 and "agent 'zz' did not trade" in res.output
    res = cli("promotions", "readiness", "nope", "--set", "pbo_max=2", store_url=store_url)
    assert res.exit_code == 2 and "pbo_max" in res.output
    res = cli("promotions", "readiness", "nope", "--set", "colour=blue", store_url=store_url)
    assert res.exit_code == 2 and "unknown promoter setting 'colour'" in res.output


# -- one source of truth: manager.users.PERMISSIONS and the default chain ---------------------


def test_permissions_agree_with_the_default_chain():
    chain = P.ApprovalChain()
    steps = {s.status: s.role for s in chain.steps}
    assert users.PERMISSIONS["approve:ops"] == {steps["ops_approved"]} == {"ops"}
    assert users.PERMISSIONS["approve:risk"] == {steps["risk_approved"]} == {"risk"}
    assert {f"approve:{s.role}" for s in chain.steps} <= set(users.PERMISSIONS)
    # propose / reject roles of the default chain are derived from the matrix (in ROLES order)
    assert chain.propose_roles == ("ops", "admin") and set(chain.propose_roles) == users.PERMISSIONS["propose"]
    assert chain.reject_roles == ("ops", "risk", "admin") and set(chain.reject_roles) == users.PERMISSIONS["reject"]
    assert P.ApprovalChain.from_dict(chain.to_dict()) == chain


def test_users_need_the_permission_and_the_chain(store_url, cid):
    """A users.Principal needs PERMISSIONS["propose"] even when a configured chain would let its
    role propose; a plain principal (no users) is checked against the chain only."""
    lax = P.ApprovalChain(propose_roles=("viewer", "ops", "admin"))
    with open_store(store_url) as store:
        with pytest.raises(P.RoleError, match="user 'vic' \\(role viewer\\) may not propose; needs one of"):
            P.propose(store, users.Principal("vic", "viewer"), cid, 3, notes="n", config=RELAXED, chain=lax)
        narrow = P.ApprovalChain(propose_roles=("admin",))  # the chain narrows what PERMISSIONS allows
        with pytest.raises(P.RoleError, match="olga \\(ops\\) may not propose; allowed roles: admin"):
            P.propose(store, users.Principal("olga", "ops"), cid, 3, notes="n", config=RELAXED, chain=narrow)
        assert store.list_promotions() == []
