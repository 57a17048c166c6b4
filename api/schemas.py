"""Pydantic schemas at the edge of the API: the launch request and the response
models that document (and, for the light routes, check) what the routes answer.

The read model (:mod:`manager.read_model`) returns plain dicts; these models only
describe them for OpenAPI. Money is in the run's quote currency (``quote``: BTC
for ``*_BTC`` pairs, USD for USD pairs and equities); fractions are fractions.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from manager.policy import DEFAULT_DAILY_HARD_STOP

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
"""Run ids, job ids, agent ids (the store's id rules)."""

SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def _parse_when(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date/time; use e.g. 2018-01-15 or 2018-01-15T06:00") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


class CohortLaunch(BaseModel):
    """Body of ``POST /api/cohorts``: one intraday cohort on one parent bankroll."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"bankroll": 1000, "agents": 30, "allocation": "equal", "symbols": ["ETH_BTC", "LTC_BTC"],
         "start": "2018-01-15", "end": "2018-01-16", "seed": 7}]})

    bankroll: float = Field(1000.0, ge=50, le=100_000, allow_inf_nan=False,
                            description="Parent bankroll in the bars' quote currency (BTC for *_BTC pairs, "
                                        "USD for USD pairs and equities), 50 to 100,000.")
    agents: int = Field(30, ge=1, le=200, description="Agents in the cohort, 1 to 200.")
    allocation: Literal["equal", "risk_weighted"] = Field(
        "equal", description="How the bankroll is split: `equal`, or `risk_weighted` (inverse volatility over the "
                             "warm-up bars).")
    symbols: list[str] | None = Field(None, min_length=1, max_length=100,
                                      description="Symbols in file-name form (`ETH_BTC`); default: every symbol "
                                                  "in the data folder.")
    start: str | None = Field(None, max_length=40, description="First traded bar, UTC ISO 8601 (`2018-01-15` or "
                              "`2018-01-15T06:00`). Default: one day before `end`, or the last day of the data.")
    end: str | None = Field(None, max_length=40, description="End of the traded window, UTC, exclusive. Default: "
                            "`start` + 1 day.")
    seed: int = Field(7, ge=0, le=2**32 - 1, description="Seed of random genomes and of the synthetic market.")
    data: str | None = Field(None, min_length=1, max_length=4096,
                             description="The NAME of a data folder under the server's data roots "
                                         "(`COHORTLAB_DATA_ROOTS`), e.g. `binance-5m` -- never a path; the launch "
                                         "form lists them with their symbols and dates. Default: "
                                         "`COHORTLAB_DATA_DIR`, else `./data` if it holds bars, else the built-in "
                                         "SYNTHETIC market.")
    quote: str | None = Field(None, pattern=r"^[A-Za-z]{2,10}$",
                              description="Quote currency for files named by ticker only (`SPY.csv` -> `USD`).")
    seed_from: str = Field("latest", pattern=ID_PATTERN,
                           description="Starting genomes: `latest` (the newest hall of fame bred on this same "
                                       "market -- data folder, timeframe and quote -- else random genomes), "
                                       "`random`, or the id of a stored run on this market.")
    daily_hard_stop: float = Field(DEFAULT_DAILY_HARD_STOP, ge=0, lt=1, allow_inf_nan=False,
                                   description="Daily hard stop: fraction of the parent equity at the start of "
                                               "the UTC day; when the parent falls by it every agent is flattened "
                                               "at the next open and stays flat for the day. 0 = off.")
    policy: bool = Field(False, description="Trade under the leverage policy's tiers (agent ceiling = min(gene, "
                                            "lineage tier); parent gross ceiling = the tier of `parent:main`) and "
                                            "record its decisions. The kill switch applies either way.")

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        import re

        for i, sym in enumerate(value):
            if not re.fullmatch(SYMBOL_PATTERN, sym):
                raise ValueError(f"symbols[{i}]={sym!r} is not a symbol in file-name form such as ETH_BTC")
        if len(set(value)) != len(value):
            raise ValueError("symbols must not repeat")
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_when(value)
        return value

    @field_validator("end")
    @classmethod
    def _end(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        end = _parse_when(value)
        start = info.data.get("start")
        if start and end <= _parse_when(start):
            raise ValueError(f"end {value!r} must be after start {start!r}")
        return value


class JobAccepted(BaseModel):
    """A cohort job was queued."""

    job_id: str = Field(description="Job id (equal to the run id).")
    run_id: str = Field(description="The run the job writes to the store.")
    status_url: str = Field(description="Poll this for the job's state: `/api/jobs/{id}`.")
    cohort_url: str = Field(description="The cohort's dashboard page: `/trading/cohorts/{id}`.")


class JobStatus(BaseModel):
    """State of a cohort job."""

    job_id: str
    state: Literal["queued", "running", "completed", "failed"]
    stage: str = Field(description="queued, loading, simulating, storing, completed, failed (Celery jobs also "
                                   "`started`, `retrying`; `running` for a run known only from the store).")
    run_id: str | None
    error: str | None = Field(description="Why the job failed (None otherwise).")
    elapsed_s: float | None = Field(description="Seconds since submission (until it finished).")


class CohortRow(BaseModel):
    """One stored cohort (a row of the cohort summaries)."""

    model_config = ConfigDict(extra="allow")

    run_id: str
    created_at: str | None = None
    finished_at: str | None = None
    status: str | None = None
    reason: str | None = None
    date: str | None = Field(None, description="Traded UTC day, YYYY-MM-DD.")
    bankroll: float | None = Field(None, description="Parent bankroll, quote currency.")
    quote: str | None = None
    agents: int | None = None
    data_label: str | None = None
    roi: float | None = Field(None, description="Parent ROI, fraction.")
    final_equity: float | None = Field(None, description="Parent equity at the end, quote currency.")
    max_drawdown: float | None = Field(None, description="Parent max drawdown, positive fraction of the peak.")
    peak_utilisation: float | None = Field(None, description="Peak capital in positions / capital allocated.")
    breaches: int | None = Field(None, description="Orders clipped by the parent risk gate.")
    failed_agents: int | None = Field(None, description="Agents that errored and were sat out.")
    baseline_percentile: float | None = Field(
        None, description="The cohort's ROI percentile (0..100) among random-genome cohorts on the same "
                          "window, bankroll and costs; null when run without baselines.")


class Paged(BaseModel):
    """One page of a listing."""

    total: int = Field(description="Rows matching.")
    page: int
    page_size: int
    pages: int = Field(description="Number of pages (0 when nothing matches).")
    next_page: int | None = Field(description="The next page number, None on the last page.")


class CohortPage(Paged):
    """A page of stored cohorts, newest first (`GET /api/experiments/cohorts`)."""

    items: list[CohortRow]


class RunHeader(BaseModel):
    """What the run is, known from the moment it is stored (None: not recorded for a run
    stored before runs had a header)."""

    day: str | None = Field(description="UTC day of the first traded bar, YYYY-MM-DD.")
    window_start: str | None = Field(description="First traded bar's open, ISO 8601 UTC.")
    window_end: str | None = Field(description="End of the traded window (exclusive), ISO 8601 UTC.")
    bankroll: float | None = Field(description="Parent bankroll, quote currency.")
    quote: str | None = Field(description="Quote currency of every money figure.")
    agents: int | None = Field(description="Agents in the cohort.")
    data_label: str | None = Field(description="Data source (`SYNTHETIC` for generated bars).")
    market: str | None = Field(description="Seeding market key (data folder, timeframe, quote).")
    seeded_from: str | None = Field(description="Where the genomes came from (`random`, `hall_of_fame`, "
                                                "`run:<id>`, ...).")


class RunBrief(BaseModel):
    """A run: its id, status, times, failure reason, typed header and the request it ran."""

    run_id: str
    status: Literal["running", "completed", "failed"]
    created_at: str | None
    finished_at: str | None
    reason: str | None
    data_label: str | None
    header: RunHeader
    request: dict[str, Any] | None = Field(description="The cohort request as run (bars, bankroll, engine, ...).")


class Curves(BaseModel):
    """Per-bar curves of a cohort, downsampled to at most 2,000 bars (empty lists until completed)."""

    timestamps: list[str] = Field(description="Bar-open times, ISO 8601 UTC (at most 2,000, evenly spread).")
    parent_equity: list[float | None]
    agent_equity: dict[str, list[float | None]]
    gross_exposure: list[float | None] = Field(description="Gross position value / parent equity per bar.")
    utilisation: list[float | None] = Field(description="Gross position value / capital allocated per bar.")


class Limits(BaseModel):
    """The parent's exposure ceilings the cohort ran with."""

    max_gross_leverage: float | None = Field(description="Parent gross-exposure ceiling, multiple of equity.")
    max_symbol_exposure: float | None = Field(description="Per-symbol cap, fraction of parent equity.")


class CohortDetail(BaseModel):
    """A cohort: the run, its report, its curves and the parent limits (`GET /api/cohorts/{run_id}`)."""

    run: RunBrief
    summary: dict[str, Any] | None = Field(description="The stored report (`cohortlab run --json`); None until "
                                                       "the run completed.")
    curves: Curves
    limits: Limits


class Series(BaseModel):
    """A time series: ISO 8601 UTC timestamps and their values."""

    timestamps: list[str]
    values: list[float | None]


class OHLC(BaseModel):
    """Bars of one symbol: ISO 8601 UTC open times and open, high, low, close prices (quote currency)."""

    timestamps: list[str]
    open: list[float | None]
    high: list[float | None]
    low: list[float | None]
    close: list[float | None]


class AgentDetail(BaseModel):
    """One agent of a cohort (`GET /api/cohorts/{run_id}/agents/{agent_id}`)."""

    agent: dict[str, Any] = Field(description="Leaderboard row incl. `genome`.")
    trades: list[dict[str, Any]] = Field(description="Round trips: symbol, side, entry/exit time and price, qty, "
                                                     "fees, pnl, exit_reason, open.")
    equity: Series
    prices: dict[str, OHLC] = Field(description="Bars of the symbols the agent traded over the run window.")
    prices_error: str | None = Field(description="Why `prices` is empty when the bars could not be reloaded.")


class Posting(BaseModel):
    """One posting of a ledger transaction (amounts as exact decimal strings)."""

    model_config = ConfigDict(extra="allow")
    account: str
    amount: str = Field(description="Exact decimal string.")
    qty: str | None = None
    symbol: str | None = None


class Transaction(BaseModel):
    """One ledger transaction; its postings sum to exactly zero."""

    model_config = ConfigDict(extra="allow")
    txn_id: str
    seq: int
    bar: int
    time: str
    kind: str
    memo: str
    postings: list[Posting]


class LedgerPage(Paged):
    """A page of a cohort's ledger journal, in `seq` order."""

    items: list[Transaction]


class StatusRow(BaseModel):
    """A recent cohort run and its parent figures (None until completed)."""

    run_id: str
    status: str
    created_at: str | None
    finished_at: str | None
    reason: str | None
    data_label: str | None
    date: str | None
    bankroll: float | None
    quote: str | None
    agents: int | None
    roi: float | None
    final_equity: float | None
    max_drawdown: float | None
    failed_agents: int | None


class StatusCounts(BaseModel):
    """How many of the listed runs are running, completed and failed."""

    running: int
    completed: int
    failed: int


class StatusRecent(BaseModel):
    """The most recent cohort runs, newest first (`GET /api/assistant/cohorts/status`)."""

    generated_at: str
    counts: StatusCounts
    items: list[StatusRow]


class BankrollRow(BaseModel):
    """How one completed cohort used its bankroll (money in `quote`, fractions as fractions)."""

    run_id: str
    created_at: str | None
    date: str | None
    bankroll: float | None
    quote: str | None
    peak_utilisation: float | None
    mean_gross_exposure: float | None
    unallocated_cash: float | None
    final_equity: float | None
    roi: float | None
    pnl: float | None


class QuoteTotals(BaseModel):
    """Totals of the listed cohorts in one quote currency."""

    cohorts: int
    bankroll: float
    final_equity: float
    pnl: float
    unallocated_cash: float
    roi: float | None
    mean_peak_utilisation: float | None
    mean_gross_exposure: float | None


class BankrollSummary(BaseModel):
    """Bankroll use of recent cohorts (`GET /api/assistant/cohorts/bankroll-summary`)."""

    days: int
    since: str
    until: str
    cohorts: list[BankrollRow]
    by_quote: dict[str, QuoteTotals]


class Check(BaseModel):
    """One readiness check."""

    ok: bool
    error: str | None = None


class Readiness(BaseModel):
    """Whether this API process is ready to serve (`GET /readyz`)."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, Check] = Field(description="`store`, and `broker` when one is configured.")


# -- risk: leverage tiers, policy decisions, the kill switch --------------------------------


class KillSwitchChange(BaseModel):
    """Body of ``POST /api/risk/kill-switch``: the new state and why."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"on": True, "reason": "exchange outage: halt all new exposure"},
        {"on": False, "reason": "exchange back to normal (incident 42 closed)"}]})

    on: bool = Field(description="`true` turns the switch on (every ceiling 0x: no agent takes new exposure); "
                                 "`false` turns it off (the next decision of each subject resumes at the base tier).")
    reason: str = Field(min_length=1, max_length=500, description="Why (required, 1 to 500 characters); recorded "
                                                                  "in the audit log with who and when.")

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("reason must not be blank: say why the switch changes")
        return value


class KillSwitchState(BaseModel):
    """The kill switch: on or off, who set it, when and why (None fields until first set)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"on": True, "actor": "user:rita", "reason": "exchange outage: halt all new exposure",
         "at": "2018-01-17T09:30:00.000000+00:00"}]})

    on: bool
    actor: str | None = Field(description="Who changed it (`user:<name>`, `admin:bootstrap`, `cli:<login>`).")
    reason: str | None
    at: str | None = Field(description="When, ISO 8601 UTC.")


class KillSwitchEvent(BaseModel):
    """An audit event of the kill switch (kind `kill_switch.on` / `kill_switch.off`)."""

    model_config = ConfigDict(extra="allow")
    kind: str
    actor: str | None = None
    at: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, description="`{\"reason\"}`.")


class TierRow(BaseModel):
    """The leverage tier in force for one subject (a lineage of agents or the parent)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"market": "binance-5m|5m|BTC", "subject": "parent:camp1", "subject_kind": "parent", "tier": 3.0,
         "next_tier": 4.0, "next_trigger": "a 1d period with Sharpe > 1.5 (annualised), max drawdown < 3.00 % ...",
         "down_tier": 2.0, "down_trigger": "a losing 1d period steps down to 2x; ...", "trigger": "losing_period",
         "rule": "losing period: one step down (not below the floor) (4x -> 3x): ...", "period": "2018-01-17",
         "decided_at": "2018-01-18T00:00:00.000000+00:00"}]})

    market: str
    subject: str = Field(description="`lineage:<founder>` or `parent:<scope>`.")
    subject_kind: Literal["lineage", "parent"]
    tier: float = Field(description="Tier in force: ceiling on gross exposure, multiple of equity (0 = halted).")
    next_tier: float | None = Field(description="The next planned tier up.")
    next_trigger: str | None = Field(description="What would grant `next_tier`.")
    down_tier: float | None = Field(description="Where a bad period would take the tier.")
    down_trigger: str | None
    trigger: str = Field(description="What set the tier (`step_up`, `losing_period`, `kill_switch`, ...).")
    rule: str = Field(description="The policy rule applied, with the figures filled in.")
    period: str | None = Field(description="The evaluation period decided on, YYYY-MM-DD.")
    decided_at: str | None


class LeveragePanel(BaseModel):
    """Everything the `/risk/leverage` page shows (`GET /api/risk/leverage`)."""

    tiers: list[TierRow] = Field(description="Current tier per subject: parents first, then highest tier first.")
    kill_switch: KillSwitchState
    kill_switch_history: list[KillSwitchEvent] = Field(description="The switch's latest audit events, newest first.")
    risk: dict[str, Any] | None = Field(
        description="Risk report of the latest completed cohort: `run_id`, `quote`, `bankroll`, `var` (VaR/CVaR of "
                    "the parent's per-bar returns: `horizon`, `sample`, `estimates: [{method, level, var_fraction, "
                    "cvar_fraction, var_quote, cvar_quote}]`), `stress` (scenarios: parent loss, loss fraction, "
                    "agents liquidated), `kelly` (per agent); `{run_id, error}` when it could not be measured; "
                    "null without a completed cohort.")
    hard_stops: list[dict[str, Any]] = Field(description="That cohort's daily hard-stop events (`time`, "
                                                         "`parent_equity`, `reference_equity`, `drawdown`, "
                                                         "`threshold`).")
    tier_paths: dict[str, list[dict[str, Any]]] = Field(
        description="`{subject: [{period, period_end, tier, trigger}]}` oldest first (the latest decisions).")


class PolicyDecisionDoc(BaseModel):
    """A stored policy decision (append-only; one per market, subject and period)."""

    model_config = ConfigDict(extra="allow")

    decision_id: str
    market: str
    subject: str
    subject_kind: Literal["lineage", "parent"]
    period: str = Field(description="The evaluation period decided on, YYYY-MM-DD (UTC day).")
    period_end: str = Field(description="End of that period, ISO 8601 UTC: the decision is known from then on.")
    previous_tier: float = Field(description="Tier in force during the period (multiple of equity).")
    tier: float = Field(description="Tier for the next period.")
    next_tier: float
    next_trigger: str
    down_tier: float | None = None
    down_trigger: str | None = None
    trigger: str
    rule: str
    rationale: dict[str, Any] = Field(description="`figures: [{name, value, unit, annualised, sample, threshold, "
                                                  "passed}]`, `kelly`, `switches`, `period`, `lineage`.")
    config: dict[str, Any] = Field(description="The policy settings used.")
    source: str | None = Field(description="The run or campaign id the decision came from.")
    decided_at: str
    recorded_at: str | None = None


class DecisionPage(BaseModel):
    """A page of policy decisions, newest period first (`GET /api/risk/decisions`)."""

    items: list[PolicyDecisionDoc]
    total: int = Field(description="Decisions matching the filters.")
    limit: int
    offset: int


# -- Day-3 promotion: readiness, requests, signatures -----------------------------------------

_HASH_EXAMPLE = "70a488a8754061fc961e04bc8a11eecbe015bf727343af0814770874ffb1bfd5"


def _notes(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("notes are required: say why (a non-empty text)")
    return value


class GuardRail(BaseModel):
    """One guard rail of the checklist: its figure, threshold and verdict."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(description="`min_trades`, `holdout`, `deflated_sharpe`, `pbo`, `baseline_percentile`, "
                                  "`max_drawdown`, `slippage_x2`, `liquidity`, `policy`.")
    figure: Any = Field(description="The measured figure (fractions as fractions); null when not measurable.")
    threshold: str = Field(description="What passes, in words (`>= 3`, `<= 0.05`).")
    passed: bool
    detail: str | None = None


class NextStep(BaseModel):
    """What happens next: `propose`, `approve` (role of the step), `deploy` (queued), `blocked`, `none`."""

    model_config = ConfigDict(extra="allow")
    action: str
    role: list[str] | None = Field(description="Roles that may take it (null: nobody's step).")
    detail: str


class PromotionAllocation(BaseModel):
    """The proposed allocation: an amount of the parent bankroll, its leverage and what bounds it."""

    model_config = ConfigDict(extra="allow")
    amount: float = Field(description="Allocation, quote currency.")
    bankroll: float = Field(description="Parent bankroll, quote currency.")
    leverage: float | None = Field(None, description="min(gene leverage, tier, Kelly cap).")
    gross_exposure: float | None = Field(None, description="amount x leverage, quote currency.")


class PromotionReadiness(BaseModel):
    """The promotion-readiness of a campaign day >= 3 (`GET /api/assistant/cohorts/{id}/promotion-readiness`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "run_id": "20180116T000000-ac2e12d3", "campaign_id": "camp-8409c9da95ea", "day": 3, "date": "2018-01-16",
        "ready": True, "candidate": "a06", "best_agent": "a06",
        "checklist": [{"name": "max_drawdown", "figure": 0.0369, "threshold": "<= 0.05", "passed": True,
                       "detail": "max drawdown on 2018-01-16 (fraction of peak)"}],
        "checklist_hash": _HASH_EXAMPLE, "allocation": {"amount": 50.0, "bankroll": 1000.0, "leverage": 1.0,
                                                        "gross_exposure": 50.0},
        "blocking": [], "next_step": {"action": "propose", "role": ["ops", "admin"],
                                      "detail": "propose agent a06 (notes required)"},
        "open_promotion": None, "candidates": []}]})

    run_id: str
    campaign_id: str
    day: int
    date: str
    ready: bool = Field(description="A candidate passes every guard rail.")
    candidate: str | None = Field(description="The proposal (the best passing agent), null when none passes.")
    best_agent: str = Field(description="The agent whose checklist is shown (the proposal, else the best one).")
    checklist: list[GuardRail]
    checklist_hash: str = Field(description="SHA-256 of the checklist snapshot: what an approver signs.")
    allocation: PromotionAllocation
    blocking: list[GuardRail] = Field(description="The failing guard rails (empty when ready).")
    next_step: NextStep
    open_promotion: str | None = Field(description="The open request of this day, if any.")
    candidates: list[dict[str, Any]] = Field(description="Every agent of the day with its checks and allocation, "
                                                         "passing first.")


class Signature(BaseModel):
    """A signed step: who, in which role, when, why and the checklist hash they saw."""

    model_config = ConfigDict(extra="allow")
    user: str
    role: str
    at: str
    notes: str | None = None
    checklist_hash: str | None = None
    kind: str | None = Field(None, description="`approve`, `reject` or `expire`.")


class PromotionDoc(BaseModel):
    """A promotion request (`proposed -> ops_approved -> risk_approved`, or `rejected` / `expired`)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "promotion_id": "promo-0123456789ab", "campaign_id": "camp-8409c9da95ea", "day": 3, "date": "2018-01-16",
        "run_id": "20180116T000000-ac2e12d3", "agent_id": "a06", "status": "ops_approved",
        "created_at": "2026-01-05T09:00:00.000000Z", "expires_at": "2026-01-06T09:00:00.000000Z",
        "proposed_by": {"user": "otto", "role": "ops", "at": "2026-01-05T09:00:00.000000Z",
                        "notes": "a06 passes every guard rail", "checklist_hash": _HASH_EXAMPLE},
        "checklist_hash": _HASH_EXAMPLE, "allocation": {"amount": 50.0, "bankroll": 1000.0},
        "steps": [{"user": "otto", "role": "ops", "at": "2026-01-05T09:05:00.000000Z", "notes": "checked",
                   "checklist_hash": _HASH_EXAMPLE, "kind": "approve", "step": "ops_approved"}]}]})

    promotion_id: str
    campaign_id: str
    day: int
    date: str | None = None
    run_id: str | None = None
    agent_id: str
    status: str
    created_at: str
    expires_at: str | None = None
    proposed_by: Signature
    checklist_hash: str
    allocation: dict[str, Any]
    steps: list[Signature] = Field(description="Signed steps in order (approvals, a rejection, an expiry).")


class PromotionDetail(PromotionDoc):
    """A request with its transition log and next step (`GET /api/promotions/{id}`)."""

    log: list[dict[str, Any]] = Field(description="The `promotion_log` entries of the request, oldest first.")
    next_step: NextStep


class PromotionPage(BaseModel):
    """A page of promotion requests, newest first (`GET /api/promotions`)."""

    items: list[PromotionDoc]
    total: int = Field(description="Requests matching the filters.")
    limit: int
    offset: int


class PromotionProposal(BaseModel):
    """Body of ``POST /api/promotions``: propose an agent of a campaign day >= 3."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"campaign_id": "camp-8409c9da95ea", "day": 3, "notes": "a06 passes every guard rail; holdout +2.9 %"},
        {"campaign_id": "camp-8409c9da95ea", "day": 3, "agent_id": "a06", "notes": "the proposal"}]})

    campaign_id: str = Field(pattern=ID_PATTERN, description="A stored campaign.")
    day: int = Field(ge=3, le=366, description="The campaign day reviewed (promotion opens after Day 3).")
    agent_id: str | None = Field(None, pattern=ID_PATTERN, description="The agent; default: the promoter's "
                                                                       "proposal (the best passing one).")
    notes: str = Field(min_length=1, max_length=2000, description="Why (required).")

    _check_notes = field_validator("notes")(classmethod(lambda cls, v: _notes(v)))


class PromotionApproval(BaseModel):
    """Body of ``POST /api/promotions/{id}/approve``: sign the next step."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"notes": "checked the holdout and the liquidity screen", "checklist_hash": _HASH_EXAMPLE}]})

    notes: str = Field(min_length=1, max_length=2000, description="Why (required).")
    checklist_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="The hash of the checklist you reviewed "
                                "(`checklist_hash` of the readiness or of the request); a different current hash "
                                "refuses the approval with 409 (re-approval needed).")

    _check_notes = field_validator("notes")(classmethod(lambda cls, v: _notes(v)))


class PromotionRejection(BaseModel):
    """Body of ``POST /api/promotions/{id}/reject``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"notes": "the liquidity screen is too close to its limit"}]})

    notes: str = Field(min_length=1, max_length=2000, description="Why (required).")

    _check_notes = field_validator("notes")(classmethod(lambda cls, v: _notes(v)))


class DeploymentDoc(BaseModel):
    """A micro-live deployment (`running`, `paused`, `rolled_back`): its allocation, broker state
    (cash, positions, equity), equity curve, fills, rollback timer, controls and ledger. Data
    folders are shown relative to their data root, never as server paths."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "deployment_id": "dep-0123456789ab", "promotion_id": "promo-0123456789ab", "status": "running",
        "campaign_id": "camp-8409c9da95ea", "agent_id": "a06", "last_bar": 400, "start_bar": 388,
        "allocation": {"amount": 0.005, "leverage": 1.0, "gross_exposure": 0.005},
        "started_at": "2018-01-15T00:00:00.000000Z", "expires_at": "2018-01-18T00:00:00Z",
        "broker": {"equity": 0.00501, "positions": {"ETH_BTC": 0.05}}, "controls": []}]})

    deployment_id: str
    promotion_id: str
    status: str = Field(description="`running`, `paused` or `rolled_back`.")
    campaign_id: str
    agent_id: str
    last_bar: int = Field(description="The last market row processed (-1 before the first).")
    start_bar: int
    allocation: dict[str, Any] = Field(description="`amount` (quote currency), `leverage`, `gross_exposure`.")
    started_at: str
    expires_at: str | None = Field(None, description="When the rollback timer ends the deployment.")
    broker: dict[str, Any] = Field(description="Cash, fees, realised PnL (units), `positions`, `equity`.")
    controls: list[dict[str, Any]] = Field(description="Manual controls: action, user, role, at, notes.")


class DeploymentDetail(DeploymentDoc):
    """A deployment with its rollback incidents (`GET /api/deployments/{id}`)."""

    incidents: list[dict[str, Any]] = Field(description="Rollback incidents, oldest first: trigger, figure, "
                                                        "threshold, final equity, allocation, bar.")


class DeploymentPage(BaseModel):
    """A page of deployments, newest first (`GET /api/deployments`)."""

    items: list[DeploymentDoc]
    limit: int
    offset: int


class DeploymentControl(BaseModel):
    """Body of ``POST /api/deployments/{id}/rollback`` and ``/pause``: who is the caller, why is the body."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"notes": "the venue announced maintenance; flatten now"}]})

    notes: str = Field(min_length=1, max_length=2000, description="Why (required; logged with who).")

    _check_notes = field_validator("notes")(classmethod(lambda cls, v: _notes(v)))


class DeploymentExtension(DeploymentControl):
    """Body of ``POST /api/deployments/{id}/extend``: move the rollback timer (a re-approval)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"notes": "re-approved after the day-4 review", "days": 2}]})

    days: float = Field(gt=0, le=30, description="Days added to the rollback timer, in (0, 30].")
