"""The assistant's grammar: a table of phrasings and what they parse to, and rejects."""
from __future__ import annotations

import pytest

from manager.intent_grammar import PHRASINGS, GrammarError, parse

G = "grow"


@pytest.mark.parametrize("text, intent, params", [
    ("grow $1,000 over 10 days", G, {"bankroll": 1000.0, "days": 10, "target_amount": None, "target_return": None}),
    ("grow 1000 to 1100 in 5 days", G, {"bankroll": 1000.0, "days": 5, "target_amount": 1100.0}),
    ("grow $500 by 5% over 3 days", G, {"bankroll": 500.0, "days": 3, "target_return": 0.05}),
    ("Grow $1,000.50 for 2 days.", G, {"bankroll": 1000.5, "days": 2}),
    ("grow 2k by 10 % in 1 day with low risk", G, {"bankroll": 2000.0, "days": 1, "target_return": 0.1,
                                                    "risk_appetite": "low"}),
    ("grow $ 750 to $800 over the next 7 days", G, {"bankroll": 750.0, "target_amount": 800.0, "days": 7}),
    ("grow 100 by 2.5 percent in 4 days, with high risk appetite", G, {"target_return": 0.025, "risk_appetite": "high"}),
    ("  GROW 1000 OVER 10 DAYS  ", G, {"bankroll": 1000.0, "days": 10}),
    ("what should I fund tomorrow?", "fund_tomorrow", {}),
    ("What should we fund tomorrow", "fund_tomorrow", {}),
    ("fund tomorrow", "fund_tomorrow", {}),
    ("what to fund tomorrow?", "fund_tomorrow", {}),
    ("fund-tomorrow", "fund_tomorrow", {}),
])
def test_phrasings(text, intent, params):
    parsed = parse(text)
    assert parsed.intent == intent
    for key, value in params.items():
        assert parsed.params[key] == value, key


@pytest.mark.parametrize("text", [
    "", "grow", "grow $1,000", "grow 1000 over days", "grow -5 over 3 days", "grow 1000 over 3 weeks",
    "shrink $1,000 over 10 days", "grow 1000 by five percent over 3 days", "what should I fund today?",
    "fund tomorrow and sell everything", "grow 1,00 over 3 days", "x" * 600,
])
def test_rejects_list_the_supported_phrasings(text):
    with pytest.raises(GrammarError) as info:
        parse(text)
    assert info.value.supported == list(PHRASINGS)
    assert "supported phrasings" in str(info.value)


def test_every_documented_phrasing_parses():
    for text in PHRASINGS:
        parse(text)
