"""Schemas of the assistant's intent routes (:mod:`api.routers.intents`). Money is in the quote
currency of the bars; fractions are fractions (0.05 = 5 %); days are UTC days."""
from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from manager.intents import BANKROLL_MAX, BANKROLL_MIN, DAYS_MAX, DAYS_MIN, MAX_TARGET_RETURN

__all__ = ["ConfirmIntent", "FundTomorrow", "GrowRequest", "GrowTarget", "IntentView", "TextIntent", "TextIntentAnswer"]

_SYMBOL = r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,31}_[A-Za-z0-9]{1,16}$|^[A-Za-z0-9][A-Za-z0-9.\-]{0,31}$"


class GrowTarget(BaseModel):
    """The target: an equity amount (quote currency, above the bankroll) or a return (fraction), not both."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    amount: float | None = Field(None, gt=0, le=BANKROLL_MAX * (1 + MAX_TARGET_RETURN),
                                 description="Equity to reach, quote currency (above the bankroll).")
    return_: float | None = Field(None, alias="return", gt=0, le=MAX_TARGET_RETURN,
                                  description="Return to reach, a fraction (0.05 = +5 %).")

    @model_validator(mode="after")
    def _one(self) -> "GrowTarget":
        if (self.amount is None) == (self.return_ is None):
            raise ValueError("give exactly one of amount or return")
        return self


class GrowRequest(BaseModel):
    """`POST /api/assistant/intents/grow`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"bankroll": 1000, "target": {"return": 0.01}, "days": 3, "risk_appetite": "medium", "data": "binance-5m",
         "symbols": ["ETH_BTC", "LTC_BTC"]}]})

    bankroll: float = Field(ge=BANKROLL_MIN, le=BANKROLL_MAX, description="Starting parent bankroll, quote currency, "
                            f"{BANKROLL_MIN:,.0f} to {BANKROLL_MAX:,.0f}.")
    target: GrowTarget | None = Field(None, description="The target; none = end with at least the bankroll.")
    days: int = Field(ge=DAYS_MIN, le=DAYS_MAX, description=f"Plan length, UTC days, {DAYS_MIN} to {DAYS_MAX}.")
    risk_appetite: Literal["low", "medium", "high"] = Field(
        "medium", description="low: the policy's 1x floor; medium/high: its base tier 2x. The target is refused "
                              "below a 5 % probability (high: 1 %).")
    data: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                             description="The NAME of a data folder under the server's data roots; default "
                                         "`COHORTLAB_DATA_DIR`, else `./data`, else SYNTHETIC.")
    symbols: list[str] | None = Field(None, min_length=1, max_length=100, description="Symbols in file-name form.")
    start: date | None = Field(None, description="First UTC day traded; default the day after the latest evidence.")
    agents: int = Field(30, ge=2, le=30, description="Agents per cohort.")
    generations: int = Field(5, ge=1, le=20, description="GA generations of each day's learning cycle.")

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str] | None) -> list[str] | None:
        import re

        for i, sym in enumerate(value or []):
            if not re.match(_SYMBOL, sym):
                raise ValueError(f"symbols[{i}]={sym!r} is not a symbol in file-name form such as ETH_BTC")
        if value is not None and len(set(value)) != len(value):
            raise ValueError("symbols must not repeat")
        return value


class ConfirmIntent(BaseModel):
    """`POST /api/assistant/intents/{intent_id}/confirm`."""

    model_config = ConfigDict(extra="forbid")

    confirm_token: str = Field(min_length=1, max_length=128, description="The draft's `confirm_token` (what you saw).")


class TextIntent(BaseModel):
    """`POST /api/assistant/intents`: what the user typed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"text": "grow $1,000 over 10 days"}, {"text": "what should I fund tomorrow?"}]})

    text: str = Field(min_length=1, max_length=500, description="e.g. `grow $1,000 over 10 days`, "
                      "`grow 1000 to 1100 in 5 days`, `grow $500 by 5% over 3 days`, `what should I fund tomorrow?`.")
    data: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                             description="For a grow intent: the data folder NAME (as in the grow route).")
    symbols: list[str] | None = Field(None, min_length=1, max_length=100, description="For a grow intent: symbols.")


class IntentView(BaseModel):
    """An intent: inputs, market, prerequisites (pass/fail), feasibility (probability, path with its
    5-95 % band, bankroll at risk), the daily plan, the reports so far, `progress`, and `confirm`
    (how to start it) while a draft."""

    model_config = ConfigDict(extra="allow")

    intent_id: str
    kind: str
    status: str = Field(description="draft, refused, blocked, running, completed, failed.")
    narrative: str | None = None
    progress: dict[str, Any] | None = None


class TextIntentAnswer(BaseModel):
    """What the text parsed to and what it does."""

    model_config = ConfigDict(extra="allow")

    parsed: dict[str, Any] = Field(description="`{intent, params, text}`.")
    would: str = Field(description="What it does, in words.")
    result: dict[str, Any] = Field(description="The intent's answer (a grow draft, or the fund-tomorrow answer).")


class FundTomorrow(BaseModel):
    """The answer to "what should I fund tomorrow?"."""

    model_config = ConfigDict(extra="allow")

    as_of: str
    ranked: list[dict[str, Any]]
    recommendations: list[dict[str, Any]]
    pending_approvals: list[dict[str, Any]]
    blockers: list[dict[str, Any]]
    narrative: str
    knowledge_entry_id: str
