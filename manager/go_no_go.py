"""The Day-3 go/no-go review: the daily scheduled pass that turns stored campaigns
into promotion requests (issue 14's pipeline; beat runs it as
``cohortlab.day3_review``).

One pass (:func:`review_campaigns`):

1. **expires** the requests whose approval window ended
   (:func:`manager.promotions.expire_due`);
2. **compiles the campaigns that reached Day 3**: every stored campaign whose
   *ranking day* (``report["rule"]["ranked_on"]``, else its last day) is day 3 or
   later;
3. **runs the promoter** on that day (:func:`manager.promotions.review_campaign_day`:
   every guard rail, with the policy tiers and the kill switch as of the day's end);
4. **opens a request** for the promoter's proposal, proposed by ``system``
   (:func:`manager.promotions.open_request`); the approvers (ops, then risk) sign
   it on the dashboard, the API or the CLI; on ``risk_approved`` the deployment
   tick starts it without further action;
5. **notifies**: one log line per decision (``go``: the request and who signs
   next; ``no-go``: the blocking rails with their figures), one audit event
   ``promotion.go_no_go`` and an alert on the channels (:mod:`manager.alerts`:
   ``promotion_pending`` for a go, raised by the new request; ``day3_review`` for a
   no-go), plus the optional ``notify`` hook.

Each campaign day is decided **once**: the decision is stored on the campaign
(``go_no_go[<day>]`` = ``{"decision", "at", "promotion_id" | "blocking"}``) and a
campaign day that already has a request (proposed by hand) is recorded as
``manual`` without a second one. A campaign that cannot be reviewed (its bars
are gone, a bad document) is reported in ``errors`` and retried on the next
pass; the other campaigns are still reviewed.
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Callable

from evolution.promoter import FIRST_DAY, PromoterConfig
from manager.alerts import notify as notify_alert
from manager.promotions import (SYSTEM, ApprovalChain, PromotionError, StateConflict, expire_due, open_request,
                                review_campaign_day)
from manager.store import Store, offset_pages

__all__ = ["GO", "NO_GO", "MANUAL", "ranking_day", "review_campaigns"]

log = logging.getLogger("cohortlab.go_no_go")

GO, NO_GO, MANUAL = "go", "no-go", "manual"
_NOTES = "Day-{day} go/no-go review: the promoter's proposal passes every guard rail"


def ranking_day(campaign: dict) -> int | None:
    """The 1-based campaign day the promotion candidates were ranked on
    (``report["rule"]["ranked_on"]``; a report without it: its last day), None
    when the campaign lists no days."""
    report = campaign.get("report") or {}
    dates = [d.get("date") for d in report.get("days") or []]
    if not dates:
        return None
    ranked_on = (report.get("rule") or {}).get("ranked_on")
    return dates.index(ranked_on) + 1 if ranked_on in dates else len(dates)


def _figure(check: dict) -> str:
    return f"{check['name']} = {check['figure']} (needs {check['threshold']})"


def _record(store: Store, camp: dict, day: int, decision: dict) -> None:
    """Store the decision on the campaign (re-read first: only ``go_no_go`` changes)."""
    fresh = store.get_campaign(camp["campaign_id"])
    store.save_campaign({**fresh, "go_no_go": {**(fresh.get("go_no_go") or {}), str(day): decision}})
    store.record_audit({"kind": "promotion.go_no_go", "actor": SYSTEM, "at": decision["at"],
                        "details": {"campaign_id": camp["campaign_id"], "day": day, **decision}})


def review_campaigns(store: Store, now: datetime | str | None = None, *,
                     config: PromoterConfig = PromoterConfig(), chain: ApprovalChain = ApprovalChain(),
                     notify: Callable[[str, dict], Any] | None = None) -> dict:
    """One go/no-go pass over every stored campaign (see the module docstring).

    Args:
        store: the store (campaigns, runs, promotions, audit).
        now: the review instant (ISO string or aware datetime; default now, UTC): the
            requests' approval windows start then, and requests overdue at it expire.
        config: the promoter's guard rails (``COHORTLAB_PROMOTER`` in the beat task).
        chain: the approval chain stored with each new request.
        notify: called as ``notify(kind, details)`` with ``kind`` ``"go"`` or
            ``"no-go"`` after each decision (the alert channels); its failure is logged
            and never undoes the decision.

    Returns:
        ``{"at", "expired": [promotion ids], "opened": {campaign id: promotion id},
        "no_go": {campaign id: [blocking rails as "name = figure (needs threshold)"]},
        "manual": [campaign ids], "waiting": {campaign id: "day N < 3"},
        "errors": {campaign id: message}}``; campaigns decided by an earlier pass
        appear nowhere.
    """
    at = now if isinstance(now, str) else (now or datetime.now(timezone.utc)).isoformat()
    out: dict = {"at": at, "expired": expire_due(store, at), "opened": {}, "no_go": {}, "manual": [],
                 "waiting": {}, "errors": {}}
    for camp in list(offset_pages(store.list_campaigns)):  # decisions are saved on them as we go
        cid = camp["campaign_id"]
        day = ranking_day(camp)
        if day is None or day < FIRST_DAY:
            out["waiting"][cid] = f"ranking day {day or 0} < {FIRST_DAY}"
            continue
        if str(day) in (camp.get("go_no_go") or {}):
            continue
        try:
            if any(p["day"] == day for p in store.list_promotions(campaign_id=cid, limit=200)):
                _record(store, camp, day, {"decision": MANUAL, "at": at})
                out["manual"].append(cid)
                continue
            review = review_campaign_day(store, cid, day, config)
            if review.proposal is None:
                blocking = [_figure(c) for c in review.blocking]
                decision = {"decision": NO_GO, "at": at, "date": review.date, "blocking": blocking}
                out["no_go"][cid] = blocking
                log.info("Day-%d review of %s (%s): no-go; blocking: %s", day, cid, review.date,
                         "; ".join(blocking) or "no candidate")
                notify_alert(store, "day3_review", f"{cid}:{day}", f"Day-{day} review of {cid}: no-go",
                             f"No candidate of campaign {cid} day {day} ({review.date}) passes every guard rail.\n"
                             f"Blocking: {'; '.join(blocking) or 'no candidate'}.", severity="info",
                             figures={"blocking": blocking}, now=at)
            else:
                doc = open_request(store, review, (SYSTEM, SYSTEM), cid, day, None, _NOTES.format(day=day),
                                   config=config, chain=chain, now=at)
                signer = ApprovalChain.from_dict(doc["chain"]).steps[0].role
                decision = {"decision": GO, "at": at, "date": review.date, "promotion_id": doc["promotion_id"],
                            "agent_id": doc["agent_id"], "allocation": doc["allocation"].get("amount")}
                out["opened"][cid] = doc["promotion_id"]
                log.warning("Day-%d review of %s (%s): go; promotion %s of agent %s opened, awaiting %s "
                            "approval by %s", day, cid, review.date, doc["promotion_id"], doc["agent_id"],
                            signer, doc["expires_at"])
            _record(store, camp, day, decision)
        except StateConflict as exc:  # a request was opened meanwhile (by hand)
            _record(store, camp, day, {"decision": MANUAL, "at": at, "detail": str(exc)})
            out["manual"].append(cid)
            continue
        except (PromotionError, ValueError, OSError) as exc:
            out["errors"][cid] = str(exc)
            log.error("Day-%d review of %s failed: %s", day, cid, exc)
            continue
        if notify is not None:
            try:
                notify(decision["decision"], {"campaign_id": cid, "day": day, **decision})
            except Exception:  # noqa: BLE001 - an alert channel never undoes the decision
                log.exception("go/no-go notification for %s failed", cid)
    return out
