"""``cohortlab assistant ask "TEXT"``: the assistant's grammar from the command line (issue 15).

A thin adapter over :mod:`manager.intent_grammar` and :mod:`manager.intents`: prints the parsed
intent and its answer -- for a grow phrase the prerequisites, the feasibility (probability,
expected final equity with its 5-95 % band, VaR) and the stored draft's id (confirm it over the
API, which checks the role); for fund-tomorrow the narrative (logged to the knowledge base).
``--json`` prints the whole answer. Unknown text exits 2 listing the supported phrasings.
"""
from __future__ import annotations

from typing import Optional

import typer
from rich.markup import escape

from manager import intents
from manager.cli.options import STORE, open_store_or_exit
from manager.cli.output import USER_ERRORS, fail, say, say_json
from manager.intent_grammar import GrammarError, parse

__all__ = ["assistant_ask"]


def assistant_ask(
    text: str = typer.Argument(..., help='e.g. "grow $1,000 over 10 days" or "what should I fund tomorrow?".'),
    data: Optional[str] = typer.Option(None, "--data", help="Bar folder of a grow plan (default COHORTLAB_DATA_DIR)."),
    symbols: Optional[str] = typer.Option(None, "--symbols", help="Comma-separated symbols of a grow plan."),
    start: Optional[str] = typer.Option(None, "--start", help="First UTC day of a grow plan (YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole answer as JSON."),
    store_url: Optional[str] = STORE,
) -> None:
    """Parse TEXT with the assistant's grammar and print the intent and its answer."""
    try:
        parsed = parse(text)
    except GrammarError as exc:
        fail(exc)
    with open_store_or_exit(store_url) as store:
        try:
            if parsed.intent == "fund_tomorrow":
                result = intents.fund_tomorrow(store, actor="cli")
            else:
                p = parsed.params
                result = intents.draft_grow(store, intents.GrowInput(
                    bankroll=p["bankroll"], days=p["days"], target_amount=p["target_amount"],
                    target_return=p["target_return"], risk_appetite=p["risk_appetite"] or "medium", data=data,
                    symbols=symbols.split(",") if symbols else None, start=start), actor="cli")
        except (intents.IntentError, *USER_ERRORS) as exc:
            fail(exc)
    if as_json:
        say_json({"parsed": parsed.to_dict(), "result": result})
        return
    say(f"intent: {parsed.intent} {parsed.params or ''}")
    if parsed.intent == "grow":
        for c in result["prerequisites"]:
            say(escape(f"  [{c['status']}] {c['name']}: {c['detail']}"))
        say(f"status: {result['status']} (intent {result['intent_id']})")
    say(escape(result["narrative"]))
