"""Names of the MongoDB adapter's database objects (no driver import)."""

from __future__ import annotations

__all__ = [
    "AGENTS", "AUDIT", "CHILDREN", "COLLECTIONS", "CURVES", "DEFAULT_DATABASE", "HALL_OF_FAME",
    "KILL_SWITCH", "KNOWLEDGE", "LEDGER", "MIGRATIONS", "POLICY_DECISIONS", "POPULATIONS",
    "PROMOTIONS", "RUNS", "STUDIES", "SUMMARIES", "TRADES", "TRIALS",
    "USERS",
    "CAMPAIGNS", "PROMOTION_REQUESTS",
    "DEPLOYMENTS", "DEPLOYMENT_INCIDENTS",
    "ALERT_DELIVERIES", "ALERT_GATES",
    "INTENTS", "KNOWLEDGE_ENTRIES",
]

DEFAULT_DATABASE = "cohortlab"
"""Database used when the URL has no path and no ``database`` is given."""

RUNS = "sim_runs_intraday"
SUMMARIES = "cohort_summaries"
AGENTS = "agent_results"
TRADES = "trades"
LEDGER = "ledger"
CURVES = "equity_curves"
HALL_OF_FAME = "genomes"
AUDIT = "audit_events"
POPULATIONS = "populations"
KNOWLEDGE = "knowledge"
TRIALS = "search_trials"
STUDIES = "search_studies"
MIGRATIONS = "schema_migrations"
PROMOTIONS = "promotion_log"
POLICY_DECISIONS = "policy_decisions"
KILL_SWITCH = "kill_switch"
USERS = "users"
CAMPAIGNS = "campaigns"
PROMOTION_REQUESTS = "promotions"  # current state of each request; PROMOTIONS is its log
DEPLOYMENTS = "deployments"
DEPLOYMENT_INCIDENTS = "deployment_incidents"
ALERT_DELIVERIES = "alert_deliveries"
ALERT_GATES = "alert_gates"  # one per (rule, subject): the dedup / rate-limit gate
INTENTS = "intents"
KNOWLEDGE_ENTRIES = "knowledge_entries"  # the /knowledge history (KNOWLEDGE: the learning loop's cycles)

COLLECTIONS: tuple[str, ...] = (
    RUNS, SUMMARIES, AGENTS, TRADES, LEDGER, CURVES, HALL_OF_FAME, AUDIT,
    POPULATIONS, KNOWLEDGE, TRIALS, STUDIES, MIGRATIONS, PROMOTIONS, POLICY_DECISIONS,
    KILL_SWITCH,
    USERS,
    CAMPAIGNS, PROMOTION_REQUESTS,
    DEPLOYMENTS, DEPLOYMENT_INCIDENTS,
    ALERT_DELIVERIES, ALERT_GATES,
    INTENTS, KNOWLEDGE_ENTRIES,
)
"""Every collection the store and its migrations use."""

CHILDREN: tuple[str, ...] = (SUMMARIES, AGENTS, TRADES, LEDGER, CURVES)
"""Children of a run: written by complete_run, deleted by fail_run."""
