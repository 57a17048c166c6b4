"""SQLite adapter of the storage port: the embedded default (stdlib ``sqlite3``).

:class:`SQLiteStore` combines one mixin per port -- :mod:`~manager.store.sqlite.runs`
(runs, results, ledger, listing), :mod:`~manager.store.sqlite.learning` and
:mod:`~manager.store.sqlite.audit` and :mod:`~manager.store.sqlite.policy` -- on one connection
(:mod:`~manager.store.sqlite.connection`: WAL mode, foreign keys on, every
write one ``BEGIN IMMEDIATE`` transaction, so several processes may share a file).

The adapter creates no tables itself: the schema is the migrations' (package
``migrations``, one versioning scheme for both adapters, recorded in the table
``schema_migrations``), applied when a store is opened with ``migrate=True``
(the default). Tables (documents are JSON text columns; queried fields are
real columns)::

    sim_runs_intraday  run_id PK, kind, status, created_at, finished_at,
                       data_label, reason, timings (JSON), doc (JSON: config,
                       genomes, other caller keys)                      -- 0001
                       listing columns (NULL until known): date, bankroll,
                       quote, agents, roi, final_equity, max_drawdown,
                       peak_utilisation, breaches, failed_agents        -- 0003
                       the typed header: date (= header day), window_start,
                       window_end, bankroll, quote, agents, market,
                       seeded_from (+ data_label)                       -- 0005
                       baseline_percentile (the cohort's percentile among
                       its random-genome cohorts)                       -- 0007
                       indexes: (created_at, run_id), (status, created_at,
                       run_id), (kind, created_at, run_id) -- the listing order
                       --, (kind, date, created_at, run_id), (kind, bankroll,
                       created_at, run_id) for the filtered cohort listing
    cohort_summaries   run_id PK -> run, summary (JSON)
    agent_results      (run_id, rank) PK, agent_id (unique per run), doc (JSON)
    trades             (run_id, position) PK, agent_id, doc (JSON);
                       index (run_id, agent_id, position)
    ledger             (run_id, txn_id) PK, seq (unique per run), bar, time,
                       kind, doc (JSON: the whole transaction incl. postings)
    equity_curves      (run_id, name) PK, position, dtype, shape, npy (BLOB)
    genomes            version PK (autoincrement), saved_at, source,
                       entries (JSON), market (0004) -- the hall of fame, every
                       version kept
    audit_events       event_id PK (autoincrement), at, kind, actor, doc (JSON);
                       index (at, event_id)
    promotion_log      created by 0001 for a later feature
    populations        seq PK (autoincrement: save order), cycle_id (unique),
                       saved_at, mode, genomes (JSON), meta (JSON), market
                       (0004); indexes (mode, seq), (market, mode, seq) -- 0002
    knowledge          cycle_id PK, mode, created_at, doc (JSON); indexes
                       (created_at, cycle_id), (mode, created_at, cycle_id)
    search_trials      (study, idx) PK, value (REAL), saved_at, doc (JSON)
    search_studies     study PK, meta (JSON), created_at, updated_at
    policy_decisions   decision_id PK, market, subject, subject_kind, period,
                       period_end, tier, trigger, source, decided_at,
                       recorded_at, doc (JSON: the whole decision);
                       UNIQUE (market, subject, period); indexes (market,
                       subject, period_end) -- point in time --, (period_end,
                       subject); UPDATE refused by a trigger (append-only) -- 0009
    kill_switch        id PK (always 1: one row), is_on, actor, reason, at -- 0009
    users              user_id PK, name UNIQUE, role, token_hash (argon2), created_at,
                       revoked_at, rotated_at; index (created_at, name) -- 0010
    campaigns          campaign_id PK, market, created_at, saved_at, doc (JSON:
                       the campaign report and its days' run ids) -- 0011
    promotions         promotion_id PK, campaign_id, agent_id, run_id, status,
                       created_at, updated_at, expires_at, doc (JSON) -- 0011
    promotion_log      rebuilt by 0011 as the append-only transition log:
                       log_id PK (autoincrement), UNIQUE (promotion_id, seq),
                       from_status, status, actor, created_at, doc
    deployments        deployment_id PK, promotion_id UNIQUE, status, last_bar,
                       created_at, updated_at, doc (JSON) -- 0012
    deployment_incidents  incident_id PK, (deployment_id, seq) UNIQUE, trigger,
                       recorded_at, doc (JSON; append-only) -- 0012
    alert_deliveries   alert_id PK, rule, subject, status, created_at, updated_at,
                       doc (JSON: message, attempts, attempt log) -- 0013

All child tables of a run reference ``sim_runs_intraday(run_id)`` with
``ON DELETE CASCADE``. Files written before the migrations owned the tables
(``PRAGMA user_version`` 1 to 4) are upgraded in place with their data.
"""

from __future__ import annotations

import os

from manager.store.base import Store
from manager.store.sqlite.audit import SQLiteAudit
from manager.store.sqlite.learning import SQLiteLearning
from manager.store.sqlite.policy import SQLitePolicy
from manager.store.sqlite.runs import SQLiteRuns
from manager.store.sqlite.users import SQLiteUsers
from manager.store.sqlite.promotions import SQLitePromotions
from manager.store.sqlite.deployments import SQLiteDeployments
from manager.store.sqlite.alerts import SQLiteAlerts
from manager.store.sqlite.intents import SQLiteIntents

__all__ = ["SQLiteStore"]


class SQLiteStore(SQLiteRuns, SQLiteLearning, SQLiteAudit, SQLitePolicy, SQLiteUsers,
                  SQLitePromotions, SQLiteDeployments, SQLiteAlerts, SQLiteIntents, Store):
    """The storage port on an SQLite database file (stdlib ``sqlite3``).

    Args:
        path: database file (``str`` or path-like); created if it does not
            exist. The parent folder must exist (:func:`manager.store.open_store`
            creates it). ``":memory:"`` gives a private in-memory database.
        migrate: apply the pending schema migrations when opening (default):
            a new file gets every table, an older one is upgraded in place
            with its data, in one transaction. ``False`` opens the file as it
            is (a new file then has no tables until it is migrated).

    Raises:
        StoreError: the file cannot be opened, is not an SQLite database, or
            migrating it failed (e.g. it was written by a newer cohortlab).

    See the module docstring for the table layout and
    :class:`~manager.store.base.Store` for the behaviour of every method.
    """

    def __init__(self, path: str | os.PathLike[str], *, migrate: bool = True) -> None:
        super().__init__(path, migrate=migrate)
