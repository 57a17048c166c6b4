"""The assistant's grammar: a small, rule-based parser of what a user types.

No external service: each supported phrasing is one regular expression, matched case-
insensitively on the whole text (surrounding spaces and a final ``?``, ``!`` or ``.`` ignored).

================================================  =============================================
phrasing                                          parsed
================================================  =============================================
``grow $1,000 over 10 days``                      grow: bankroll 1000, days 10, no target
                                                  (= end with at least the bankroll)
``grow 1000 to 1100 in 5 days``                   grow: bankroll 1000, target amount 1100, days 5
``grow $500 by 5% over 3 days``                   grow: bankroll 500, target return 0.05, days 3
``grow 2k by 10 % in 1 day with low risk``        ... plus ``risk_appetite`` low / medium / high
``what should I fund tomorrow?``                  fund_tomorrow
``fund tomorrow``, ``what to fund tomorrow``      fund_tomorrow
================================================  =============================================

Amounts: digits with optional thousands commas and decimals, an optional ``$`` before and an
optional ``k`` (thousands) after, e.g. ``$1,000``, ``1000.50``, ``2k``; they are in the quote
currency of the market traded (the ``$`` is accepted as the usual way of writing money, not a
currency conversion). ``in`` / ``over`` / ``for`` and ``day`` / ``days`` are interchangeable.
Bounds (bankroll 50-100,000, days 1-90) are checked by the intent (:mod:`manager.intents`),
not here, so text and JSON get the same message.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PHRASINGS", "GrammarError", "ParsedIntent", "parse"]

PHRASINGS: tuple[str, ...] = (
    "grow $1,000 over 10 days",
    "grow 1000 to 1100 in 5 days",
    "grow $500 by 5% over 3 days",
    "grow 2k by 10% in 1 day with low risk",
    "what should I fund tomorrow?",
    "fund tomorrow",
)
"""Examples of every supported phrasing (what a 422 lists)."""

_AMOUNT = r"\$?\s*(?P<{name}>(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?)\s*(?P<{name}_k>k)?"
_GROW = re.compile(
    r"grow\s+" + _AMOUNT.format(name="bankroll") +
    r"(?:\s+(?:to\s+" + _AMOUNT.format(name="target") + r"|by\s+(?P<pct>\d+(?:\.\d+)?)\s*(?:%|percent)))?"
    r"\s+(?:over|in|for)\s+(?:the\s+next\s+)?(?P<days>\d+)\s+days?"
    r"(?:\s*,?\s+with\s+(?P<risk>low|medium|high)\s+risk(?:\s+appetite)?)?",
    re.IGNORECASE)
_FUND = re.compile(r"(?:what\s+(?:should\s+(?:i|we)\s+|to\s+)?)?fund(?:\s+|-)tomorrow", re.IGNORECASE)


class GrammarError(ValueError):
    """Text no phrasing matches; ``supported`` lists examples of the phrasings."""

    def __init__(self, text: str) -> None:
        super().__init__(f"not understood: {text!r}; supported phrasings: " + "; ".join(repr(p) for p in PHRASINGS))
        self.text = text
        self.supported = list(PHRASINGS)


@dataclass(frozen=True)
class ParsedIntent:
    """What the text asks for.

    Attributes:
        intent: ``"grow"`` or ``"fund_tomorrow"``.
        params: for grow ``{"bankroll", "days", "target_amount" | None, "target_return" | None,
            "risk_appetite" | None}`` (quote currency, days, fraction); empty for fund_tomorrow.
        text: the text parsed.
    """

    intent: str
    params: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        """``{"intent", "params", "text"}``."""
        return {"intent": self.intent, "params": dict(self.params), "text": self.text}


def _amount(match: re.Match, name: str) -> float | None:
    raw = match.group(name)
    if raw is None:
        return None
    value = float(raw.replace(",", ""))
    return value * 1000 if match.group(f"{name}_k") else value


def parse(text: str) -> ParsedIntent:
    """Parse ``text`` into a :class:`ParsedIntent` (table in the module docstring).

    Raises:
        GrammarError: no phrasing matches (its message and ``supported`` list the phrasings).
    """
    if not isinstance(text, str):
        raise GrammarError(repr(text))
    clean = re.sub(r"\s+", " ", text.strip()).rstrip("?!. ").strip()
    if len(clean) > 500:
        raise GrammarError(clean[:60] + "...")
    m = _GROW.fullmatch(clean)
    if m:
        pct = m.group("pct")
        risk = m.group("risk")
        return ParsedIntent("grow", {
            "bankroll": _amount(m, "bankroll"), "days": int(m.group("days")),
            "target_amount": _amount(m, "target"),
            "target_return": None if pct is None else float(pct) / 100.0,
            "risk_appetite": risk.lower() if risk else None,
        }, text)
    if _FUND.fullmatch(clean):
        return ParsedIntent("fund_tomorrow", {}, text)
    raise GrammarError(text)
