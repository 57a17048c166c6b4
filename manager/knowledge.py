"""The knowledge base of ``/knowledge``: one history of assistant recommendations, bankroll
inputs and plan reports (more kinds -- Day-3 decisions, leverage adjustments, rollbacks -- log
here the same way), each linked to its cohort, campaign, promotion, deployment or intent.

Use cases: :func:`log_entry` (store one entry), :func:`list_entries` (filtered, newest
first; view-model-friendly rows), :func:`history` (the merged history of ``/knowledge``:
cohort runs, grow intents, Day-3 decisions, leverage adjustments, rollback incidents and
these entries; exported by :func:`history_csv_rows` and :func:`history_pdf`) and
:func:`entries_for_day` (the daily report's hook, :func:`manager.reports.knowledge_entries`).
Entries live in the store's assistant port
(:class:`manager.store.ports.intents.IntentStore`, table / collection ``knowledge_entries``).
"""
from __future__ import annotations

import uuid
from typing import Any, Sequence

from manager.store import Store, offset_pages

__all__ = ["HISTORY_FIELDS", "HISTORY_KINDS", "KINDS", "entries_for_day", "entry_row", "history", "history_csv_rows",
           "history_pdf", "link", "list_entries", "log_entry"]

#: kinds the assistant writes (others may be added by their own use cases)
KINDS: dict[str, str] = {
    "assistant.grow": "a grow intent: its inputs (bankroll, target, days), prerequisites and feasibility",
    "assistant.grow_confirmed": "a grow plan confirmed and started",
    "assistant.grow_day": "a grow plan's actual-against-plan report of one day",
    "assistant.fund_tomorrow": "an answer to 'what should I fund tomorrow?'",
}


def link(kind: str, ident: str) -> str:
    """A link ``"<kind>:<id>"`` (kinds: ``run``, ``campaign``, ``promotion``, ``deployment``, ``intent``)."""
    return f"{kind}:{ident}"


def log_entry(store: Store, kind: str, title: str, narrative: str = "", *, market: str | None = None,
              links: Sequence[str] = (), figures: dict[str, Any] | None = None, actor: str | None = None,
              created_at: str | None = None) -> dict[str, Any]:
    """Store one knowledge entry and return it.

    Args:
        kind: e.g. ``"assistant.fund_tomorrow"`` (lower case, ``[a-z0-9_.]``).
        title: one line. narrative: the templated text, citing its figures.
        market: the market key it is about, or None.
        links: ``"<kind>:<id>"`` strings (:func:`link`).
        figures: the numbers the narrative cites (JSON-able; fractions, quote currency, days).
        actor: who asked (``"user:otto"``), or None.
        created_at: ISO 8601 (default now).

    Raises:
        InvalidDocument: a bad kind, link or field.
    """
    doc: dict[str, Any] = {"entry_id": f"kb-{uuid.uuid4().hex[:16]}", "kind": kind, "title": title,
                           "narrative": narrative, "market": market, "links": list(links),
                           "figures": figures or {}, "actor": actor}
    if created_at is not None:
        doc["created_at"] = created_at
    return store.add_knowledge_entry(doc)


def entry_row(doc: dict[str, Any]) -> dict[str, Any]:
    """A view-model row: the entry plus ``link_items`` ``[{"kind", "id"}]`` for templates."""
    items = [{"kind": text.split(":", 1)[0], "id": text.split(":", 1)[1]} for text in doc.get("links", [])]
    return {**doc, "link_items": items}


def list_entries(store: Store, *, kind: str | None = None, market: str | None = None, link: str | None = None,
                 since: str | None = None, until: str | None = None, limit: int = 50,
                 offset: int = 0) -> list[dict[str, Any]]:
    """Knowledge entries, newest first, as :func:`entry_row` rows.

    Args:
        kind, market: exact filters. link: ``"<kind>:<id>"`` the entry links to.
        since, until: ISO 8601, ``since <= created_at < until``.
        limit, offset: the page.

    Raises:
        InvalidDocument: a bad filter.
    """
    docs = store.list_knowledge_entries(kind=kind, market=market, link=link, since=since, until=until,
                                        limit=limit, offset=offset)
    return [entry_row(d) for d in docs]


# ----------------------------------------------------------------- the /knowledge history

#: the kinds of :func:`history` items, in the page's order, with their labels
HISTORY_KINDS: dict[str, str] = {
    "cohort": "Intraday cohort runs",
    "bankroll": "Bankroll inputs (grow intents)",
    "day3": "Day-3 decisions",
    "leverage": "Leverage adjustments",
    "rollback": "Rollback incidents",
    "assistant": "Assistant recommendations",
}

#: the columns of the history's CSV export (:func:`history_csv_rows`)
HISTORY_FIELDS = ("at", "date", "kind", "market", "title", "detail", "status", "links")

#: at most this many newest documents of each source are looked at by :func:`history`
HISTORY_SCAN = 1000

_HREFS = {"run": "/trading/cohorts/{}", "campaign": "/trading/campaigns/{}", "deployment": "/trading/deployments/{}",
          "intent": "/trading/assistant/intents/{}"}
_LABELS = {"run": "cohort", "campaign": "campaign", "promotion": "promotion", "deployment": "deployment",
           "intent": "plan"}


def _day_of(value: Any) -> str | None:
    text = str(value or "")
    return text[:10] if len(text) >= 10 and text[4] == "-" and text[7] == "-" else None


def _link_item(kind: str, ident: str, campaign_of: dict[str, str | None] | None = None) -> dict[str, Any]:
    """``{"kind", "id", "label", "href"}``: a promotion has no page of its own, so it links to its
    campaign's page (where its review lives); an unknown kind links nowhere (``href`` None)."""
    href = _HREFS[kind].format(ident) if kind in _HREFS else None
    if kind == "promotion" and campaign_of is not None and campaign_of.get(ident):
        href = _HREFS["campaign"].format(campaign_of[ident])
    return {"kind": kind, "id": ident, "label": f"{_LABELS.get(kind, kind)} {ident}", "href": href}


def _item(kind: str, at: Any, date: Any, market: str | None, title: str, detail: str, links: list[dict],
          status: str | None = None, ident: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "kind_label": HISTORY_KINDS[kind], "at": str(at or ""), "date": _day_of(date) or _day_of(at),
            "market": market, "title": title, "detail": detail, "status": status, "links": links, "id": ident}


def _cohorts(store: Store, scan: int) -> list[dict[str, Any]]:
    out, cursor, seen = [], None, 0
    while seen < scan:
        page = store.list_runs(limit=200, before=cursor, kind="cohort")
        if not page:
            break
        seen += len(page)
        cursor = page[-1]["run_id"]
        for run in page:
            h = run.get("header") or {}
            summary = run.get("summary") or {}
            roi = (summary.get("parent") or {}).get("roi")
            bank = h.get("bankroll")
            bank = f"{bank:,.2f}" if isinstance(bank, (int, float)) else str(bank)
            bits = [f"traded {h.get('day') or '?'}", f"bankroll {bank} {h.get('quote') or ''}".rstrip(),
                    f"{h.get('agents')} agents"]
            if roi is not None:
                bits.append(f"parent ROI {roi * 100:.2f} %")
            if run.get("status") == "failed" and run.get("reason"):
                bits.append(f"failed: {run.get('reason')}")
            out.append(_item("cohort", run.get("created_at"), h.get("day") or h.get("window_start"), h.get("market"),
                             f"Cohort {run['run_id']} ({run.get('status')})", "; ".join(bits),
                             [_link_item("run", run["run_id"])], run.get("status"), run["run_id"]))
        if len(page) < 200:
            break
    return out


def _intents(store: Store, scan: int) -> list[dict[str, Any]]:
    out = []
    for doc in offset_pages(store.list_intents, kind="grow", max_docs=scan):
        inp = doc.get("inputs") or {}
        feas = doc.get("feasibility") or {}
        prob = feas.get("probability")
        target = feas.get("target_amount")
        title = (f"Grow {float(inp.get('bankroll') or 0):,.2f} {doc.get('quote') or ''} over {inp.get('days')} "
                 f"day(s)".replace("  ", " "))
        detail = (f"target {target:,.2f}" if isinstance(target, (int, float)) else "no target") + \
                 (f"; probability {prob * 100:.2f} %" if isinstance(prob, (int, float)) else "") + \
                 f"; risk appetite {inp.get('risk_appetite')}; {doc.get('narrative') or ''}"
        out.append(_item("bankroll", doc.get("created_at"), doc.get("start") or doc.get("created_at"),
                         doc.get("market"),
                         title, detail, [_link_item("intent", doc["intent_id"])], doc.get("status"), doc["intent_id"]))
    return out


def _day3(store: Store, scan: int, deployments: list[dict]) -> tuple[list[dict[str, Any]], dict[str, str | None]]:
    out: list[dict[str, Any]] = []
    campaign_of: dict[str, str | None] = {}
    markets: dict[str, str | None] = {}
    deployment_of = {d.get("promotion_id"): d.get("deployment_id") for d in deployments}
    for camp in offset_pages(store.list_campaigns, max_docs=scan):
        cid = camp["campaign_id"]
        markets[cid] = camp.get("market")
        days = (camp.get("report") or {}).get("days") or []
        decisions = (camp.get("go_no_go") or {}).items()
        for day, dec in sorted(decisions, key=lambda kv: int(kv[0]) if str(kv[0]).isdigit() else 0):
            dec = dec or {}
            n = int(day) if str(day).isdigit() else None
            d = days[n - 1] if n and 0 < n <= len(days) else {}
            links = [_link_item("campaign", cid)]
            if d.get("run_id"):
                links.append(_link_item("run", d["run_id"]))
            if dec.get("promotion_id"):
                campaign_of[dec["promotion_id"]] = cid
                links.append(_link_item("promotion", dec["promotion_id"], campaign_of))
            blocking = dec.get("blocking")
            why = ("; ".join(map(str, blocking)) if isinstance(blocking, list) else str(blocking or ""))
            detail = (f"proposed as {dec['promotion_id']}" if dec.get("promotion_id") else
                      f"no candidate: {why}" if why else "")
            out.append(_item("day3", dec.get("at"), d.get("date") or dec.get("at"), camp.get("market"),
                             f"Day-{day} go/no-go of campaign {cid}: {dec.get('decision')}", detail, links,
                             str(dec.get("decision") or ""), f"{cid}:{day}"))
    for p in offset_pages(store.list_promotions, max_docs=scan):
        pid, cid = p["promotion_id"], p.get("campaign_id")
        campaign_of[pid] = cid
        links = [_link_item("promotion", pid, campaign_of)]
        if cid:
            links.insert(0, _link_item("campaign", cid))
        if p.get("run_id") and _run_exists(store, p["run_id"]):
            links.append(_link_item("run", p["run_id"]))
        if deployment_of.get(pid):
            links.append(_link_item("deployment", deployment_of[pid]))
        signed = [f"{s.get('user')} ({s.get('role')}): {s.get('kind')}" for s in p.get("steps") or []]
        alloc = p.get("allocation") or {}
        detail = (f"agent {p.get('agent_id')}, day {p.get('day')}; allocation {alloc.get('amount')} at "
                  f"{alloc.get('leverage')}x" + (f"; {'; '.join(signed)}" if signed else ""))
        out.append(_item("day3", p.get("updated_at") or p.get("created_at"), p.get("date") or p.get("created_at"),
                         p.get("market") or markets.get(cid or ""), f"Day-3 promotion {pid}: {p.get('status')}",
                         detail, links, p.get("status"), pid))
    return out, campaign_of


def _run_exists(store: Store, run_id: str) -> bool:
    try:
        store.get_run(run_id)
        return True
    except Exception:  # noqa: BLE001 - NotFound, or an id that cannot be one
        return False


def _leverage(store: Store, market: str | None, scan: int) -> list[dict[str, Any]]:
    out = []
    for d in offset_pages(store.list_policy_decisions, market=market, max_docs=scan):
        prev, tier = d.get("previous_tier"), d.get("tier")
        if prev is None or tier is None or float(prev) == float(tier):
            continue  # only the decisions that changed a tier
        links = []
        subject = str(d.get("subject") or "")
        if subject.startswith("parent:"):
            scope = subject.split(":", 1)[1]
            links.append(_link_item("campaign", scope))
        src = d.get("source")
        if isinstance(src, str) and src and not subject.endswith(src) and _run_exists(store, src):
            links.append(_link_item("run", src))
        out.append(_item("leverage", d.get("decided_at") or d.get("period_end"), d.get("period"), d.get("market"),
                         f"{subject}: {float(prev):g}x -> {float(tier):g}x ({d.get('trigger')})",
                         f"{d.get('rule') or ''}; next {d.get('next_tier')}x on {d.get('next_trigger') or 'n/a'}",
                         links, d.get("trigger"), d.get("decision_id")))
    return out


def _rollbacks(store: Store, deployments: list[dict]) -> list[dict[str, Any]]:
    out = []
    for dep in deployments:
        did = dep["deployment_id"]
        for inc in store.list_incidents(did):
            who = (inc.get("detail") or {}).get("user")
            figure = inc.get("figure")
            detail = (f"{inc.get('reason') or ''}"
                      + (f"; figure {figure} vs {inc.get('threshold')} {inc.get('unit') or ''}" if figure is not None
                         else "")
                      + (f"; by {who}: {(inc.get('detail') or {}).get('notes')}" if who else "")
                      + (f"; final equity {inc.get('final_equity')}" if inc.get("final_equity") is not None else ""))
            links = [_link_item("deployment", did)]
            if dep.get("campaign_id"):
                links.append(_link_item("campaign", dep["campaign_id"]))
            out.append(_item("rollback", inc.get("at"), inc.get("at"), (dep.get("market") or {}).get("key"),
                             f"Rollback of {did}: {inc.get('trigger')}", detail.strip("; "), links,
                             inc.get("trigger"), f"{did}:{inc.get('seq', '')}"))
    return out


def _entries(store: Store, market: str | None, scan: int, campaign_of: dict[str, str | None]) -> list[dict[str, Any]]:
    out = []
    for e in offset_pages(store.list_knowledge_entries, market=market, max_docs=scan):
        if e.get("kind") == "assistant.grow":
            continue  # the intent itself is the "bankroll" item
        links = []
        for text in e.get("links") or []:
            kind, _, ident = str(text).partition(":")
            if kind == "promotion" and ident not in campaign_of:
                try:
                    campaign_of[ident] = store.get_promotion(ident).get("campaign_id")
                except Exception:  # noqa: BLE001 - a dangling link still shows, without a page
                    campaign_of[ident] = None
            links.append(_link_item(kind, ident, campaign_of))
        about = (e.get("figures") or {}).get("date") or e.get("created_at")  # the day it is about, when it names one
        out.append(_item("assistant", e.get("created_at"), about, e.get("market"),
                         e.get("title") or e.get("kind"), e.get("narrative") or "", links, e.get("kind"),
                         e.get("entry_id")))
    return out


def history(store: Store, kinds: Sequence[str] | None = None, start: str | None = None, end: str | None = None,
            market: str | None = None, limit: int = 100, offset: int = 0, *,
            scan: int = HISTORY_SCAN) -> dict[str, Any]:
    """One history of what happened: intraday cohort runs, bankroll inputs (grow intents), Day-3
    decisions (a campaign's ``go_no_go[<day>]`` and the promotion requests), leverage adjustments
    (policy decisions whose tier differs from the previous one), rollback incidents and the
    assistant's recommendations (knowledge entries), newest first.

    Each item: ``kind`` (a key of :data:`HISTORY_KINDS`), ``kind_label``, ``at`` (ISO 8601 UTC:
    when it was recorded or decided), ``date`` (``YYYY-MM-DD``: the market day it is about -- the
    traded day of a cohort, the first day of a plan, the period of a policy decision, the day of
    a campaign), ``market`` (market key or None), ``title``, ``detail``, ``status``, ``links``
    (``[{"kind", "id", "label", "href"}]``: its cohort, campaign, promotion -- on its campaign's
    page --, deployment or plan page) and ``id``.

    Args:
        kinds: keys of :data:`HISTORY_KINDS` to keep (None or empty = all).
        start, end: ``YYYY-MM-DD``, inclusive bounds on ``date``.
        market: exact market key (e.g. ``"binance-5m|5m|BTC"``).
        limit, offset: the page (1..1000, >= 0).
        scan: at most this many newest documents of each source are read.

    Returns:
        ``{"items": [...], "total": int, "kinds": {kind: count}, "limit", "offset"}``
        (``total`` and ``kinds`` count every matching item, not only the page).

    Raises:
        ValueError: an unknown kind, a bad date, limit or offset.
    """
    wanted = list(kinds or HISTORY_KINDS)
    bad = [k for k in wanted if k not in HISTORY_KINDS]
    if bad:
        raise ValueError(f"kind {bad[0]!r} is not a history kind; allowed: {', '.join(HISTORY_KINDS)}")
    for name, value in (("start", start), ("end", end)):
        if value is not None and not (_day_of(value) == value):
            raise ValueError(f"{name}={value!r} is not a day; allowed: YYYY-MM-DD")
    if start and end and start > end:
        raise ValueError(f"start {start} is after end {end}")
    if not 1 <= int(limit) <= 1000 or int(offset) < 0:
        raise ValueError(f"limit={limit} must be 1 to 1000 and offset={offset} >= 0")
    items: list[dict[str, Any]] = []
    deployments = list(offset_pages(store.list_deployments, max_docs=scan)) \
        if {"day3", "rollback"} & set(wanted) else []
    campaign_of: dict[str, str | None] = {}
    if "cohort" in wanted:
        items += _cohorts(store, scan)
    if "bankroll" in wanted:
        items += _intents(store, scan)
    day3, campaign_of = _day3(store, scan, deployments) if ("day3" in wanted or "assistant" in wanted) else ([], {})
    if "day3" in wanted:
        items += day3
    if "leverage" in wanted:
        items += _leverage(store, market, scan)
    if "rollback" in wanted:
        items += _rollbacks(store, deployments)
    if "assistant" in wanted:
        items += _entries(store, market, scan, campaign_of)
    keep = [i for i in items if (market is None or i["market"] == market)
            and (start is None or (i["date"] or "") >= start) and (end is None or (i["date"] or "9999") <= end)]
    keep.sort(key=lambda i: (i["at"], i["kind"], str(i["id"])), reverse=True)
    counts = {k: sum(1 for i in keep if i["kind"] == k) for k in HISTORY_KINDS}
    return {"items": keep[int(offset):int(offset) + int(limit)], "total": len(keep), "kinds": counts,
            "limit": int(limit), "offset": int(offset)}


def history_csv_rows(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """History items as rows of :data:`HISTORY_FIELDS` (``links`` as space-separated
    ``<kind>:<id>=<path>``)."""
    return [{**{k: i.get(k) for k in HISTORY_FIELDS},
             "links": " ".join(f"{ln['kind']}:{ln['id']}" + (f"={ln['href']}" if ln.get("href") else "")
                               for ln in i.get("links") or [])} for i in items]


def history_pdf(view: dict[str, Any], filters: dict[str, Any]) -> bytes:
    """The history as a PDF (A4), printed by WeasyPrint (as :func:`manager.reports.render_pdf`)
    from ``manager/report_templates/knowledge.html``.

    Raises:
        manager.reports.ReportsUnavailable: WeasyPrint (or pango) is missing.
    """
    from jinja2 import Environment, PackageLoader, select_autoescape

    from manager.reports import ReportsUnavailable

    try:
        from weasyprint import HTML
    except ImportError as exc:
        raise ReportsUnavailable("PDF export needs WeasyPrint: pip install cohortlab[reports] "
                                 f"({type(exc).__name__}: {exc})") from None
    except OSError as exc:
        raise ReportsUnavailable(f"WeasyPrint cannot load its system libraries (pango): {exc}") from None
    env = Environment(loader=PackageLoader("manager", "report_templates"), autoescape=select_autoescape(["html"]))
    html = env.get_template("knowledge.html").render(v=view, filters=filters, kinds=HISTORY_KINDS)
    return HTML(string=html).write_pdf()


def entries_for_day(store: Store, day: str) -> list[dict[str, Any]]:
    """The knowledge entries created on ``day`` (``YYYY-MM-DD``, UTC), oldest first, for the daily
    report's commentary (:func:`manager.reports.knowledge_entries`): ``{"at", "kind", "title",
    "text", "links"}``.

    Raises:
        ValueError: ``day`` is not ``YYYY-MM-DD``.
    """
    from datetime import date, timedelta

    d = date.fromisoformat(str(day)[:10])
    since, until = f"{d.isoformat()}T00:00:00+00:00", f"{(d + timedelta(days=1)).isoformat()}T00:00:00+00:00"
    docs = list(offset_pages(store.list_knowledge_entries, since=since, until=until, max_docs=2000))
    docs.sort(key=lambda e: (e.get("created_at") or "", e.get("entry_id") or ""))
    return [{"at": e.get("created_at"), "kind": e.get("kind"), "title": e.get("title"),
             "text": e.get("narrative") or "", "links": list(e.get("links") or [])} for e in docs]
