"""MongoDB adapter of the storage port, on PyMongo's asynchronous API.

:class:`MongoStore` implements :class:`~manager.store.base.Store` with
``pymongo.AsyncMongoClient`` (the maintained successor of Motor), one mixin per
port: :mod:`~manager.store.mongo.runs` and :mod:`~manager.store.mongo.ledger`
(runs, results, ledger, listing), :mod:`~manager.store.mongo.learning`,
:mod:`~manager.store.mongo.audit`, :mod:`~manager.store.mongo.policy`, on
:mod:`~manager.store.mongo.client` (the
connection and its event loop); collection names in
:mod:`~manager.store.mongo.names`. Select it with
``COHORTLAB_STORE=mongodb://host:port/dbname`` (see
:func:`manager.store.open_store`); the database name comes from the URL path,
default ``cohortlab``.

Why a private event loop in a thread
------------------------------------
The port is synchronous (the CLI, the runner and Celery tasks call it from plain
threads), the driver is asynchronous. Each :class:`MongoStore` owns one event
loop running in a daemon thread; the client is created on that loop and every
port method submits its coroutine there with
``asyncio.run_coroutine_threadsafe(...).result()``. This

* works from any thread, also from one that already runs its own event loop
  (``asyncio.run`` would refuse there, and a client is bound to the loop that
  created it, so a fresh loop per call would not work either);
* lets several threads share one store object and one connection pool: their
  coroutines interleave on the store's loop instead of each thread opening
  connections of its own;
* keeps the driver's async machinery out of the callers' code.

Calling a store method from inside its own loop thread would deadlock and is
refused. Close the store (or use ``with``) to stop the thread; an unclosed store
does not keep the process alive (daemon thread). Do not share a store across
``fork()``: open it in the child.

Collections (one document per row; caller documents are kept whole in a ``doc``
sub-document, so caller keys can never collide with the store's own fields)::

    sim_runs_intraday  _id = run_id; run_id, kind, status, created_at,
                       finished_at, data_label, header (the typed run header:
                       day, window_start, window_end, bankroll, quote, agents,
                       data_label, market, seeded_from), reason, timings, doc
                       (config, genomes, other caller keys), attempt (see below);
                       cohort runs also carry the listing fields of
                       list_cohort_summaries (header values and summary
                       metrics, flat): date ("YYYY-MM-DD" | None),
                       bankroll, quote, agents, roi, final_equity,
                       max_drawdown, peak_utilisation, breaches, failed_agents,
                       baseline_percentile (0007),
                       and the integer keys it filters and sorts on: day
                       (YYYYMMDD | None) and created_us (created_at in
                       microseconds since 1970, same order as created_at)
    cohort_summaries   _id = run_id; run_id, summary, attempt
    agent_results      run_id, rank, agent_id, doc, attempt
    trades             run_id, position, agent_id, doc, attempt
    ledger             run_id, txn_id, seq, bar, time, kind, doc (the whole
                       transaction), attempt (absent when appended by append_ledger)
    equity_curves      run_id, name, position, chunk, dtype, shape, npy (bytes of a
                       ``.npy`` file, split into chunks of at most 8 MiB), attempt
    genomes            version (save order), saved_at, source, entries -- the hall
                       of fame, every version kept
    audit_events       event_id (= _id, insertion order), at, kind, actor, doc
    populations        _id = cycle_id; cycle_id, seq (save order), saved_at, mode,
                       genomes, meta
    knowledge          _id = cycle_id; cycle_id, mode, created_at, doc
    search_trials      study, index, value, saved_at, doc
    search_studies     _id = study; meta, created_at, updated_at
    schema_migrations  _id = migration id; version, name, applied_at
    promotion_log      created by migration 0001 for a later feature
    policy_decisions   _id = decision_id; market, subject, subject_kind, period,
                       period_end, period_end_us (its microseconds since
                       1970, what ranges and sorts use), tier, trigger, source,
                       decided_at, recorded_at, doc (the whole decision);
                       indexes: unique (market, subject, period), (market,
                       subject, period_end_us), (period_end_us) -- 0009;
                       append-only
    kill_switch        _id = "state"; on, actor, reason, at, and pending /
                       pending_id while a change's audit event is being written
    users              _id = user_id; user_id, name (unique index), role, token_hash
                       (argon2), created_at, revoked_at, rotated_at -- 0010
    campaigns          _id = campaign_id; market, created_at, created_us, doc -- 0011
    promotions         _id = promotion_id; status, campaign_id, agent_id, run_id,
                       created_at, created_us, updated_at, expires_at, doc,
                       log_seq, pending (log row + audit event being written) -- 0011
                       (promotion_log: one row per transition, _id
                       "<promotion_id>:<seq>", unique (promotion_id, seq))
    deployments        _id = deployment_id; promotion_id (unique), status, last_bar,
                       created_at, created_us, updated_at, rev (compare-and-set
                       counter), doc -- 0012
    deployment_incidents  _id = "<deployment_id>:<seq>"; deployment_id, seq, doc
                       (append-only) -- 0012
    alert_deliveries   _id = alert_id; rule, subject, status, created_at, created_us,
                       updated_at, doc -- 0013
    alert_gates        _id = "<rule>\\x1f<subject>"; last_us, alert_id (the dedup /
                       rate-limit gate, compare-and-set) -- 0013

Indexes are created by the versioned migrations of the ``migrations`` package
(applied when the store is opened, unless ``migrate=False``, through the
migrator installed in :mod:`manager.store.schema`); the ledger's idempotency
rests on the unique index ``(run_id, txn_id)``.

The cohort listing (:meth:`MongoStore.list_cohort_summaries`) reads only run
documents, through the indexes ``(kind, created_us, run_id)``, ``(kind, day,
created_us, run_id)`` and ``(kind, bankroll, created_us, run_id)`` of migration
0003, with ``find`` + ``skip``/``limit`` and the ``count`` command. Its filters
are written ``{"$eq": value}`` and compare integers (``day``, ``created_us``)
rather than date strings: the same query and plan on MongoDB, and on nx-27017
(NeoSQLite) the only form that stays an indexed SQL query -- a plain equality
there also matches array elements through an unindexed ``json_each``, and any
comparison with a date-like string is evaluated in Python over every document.
``count_documents`` (an aggregation) would also scan there. The page and the
count are two reads, not one snapshot: a run created between them can be
counted and not listed. For the same
reason every query of a run's children names the run as ``{"run_id": {"$eq":
run_id}}``: identical on MongoDB, and on nx-27017 it keeps the ``(run_id, ...)``
indexes in use, so reading or completing a run costs the same however many runs
are stored.

Atomicity
---------
On a replica set or sharded cluster, ``complete_run``, ``fail_run`` and
``append_ledger`` run in one multi-document transaction (retried on transient
conflicts). A standalone server (or nx-27017) has no transactions; there the
store writes a run's children first, each tagged with a fresh ``attempt`` token
that is also recorded on the run document (the claim), and flips the run's
status last with a write conditioned on that claim. On any failure it deletes
everything tagged with its token and releases the claim (compensation), so the
run stays as it was. Readers never see a half-finished completion: results are
read only for ``"completed"`` runs and only with the token of the completion
that won; leftovers of a crashed attempt are removed by the next attempt.
"""

from __future__ import annotations

from manager.store.base import Store
from manager.store.mongo.audit import MongoAudit
from manager.store.mongo.learning import MongoLearning
from manager.store.mongo.policy import MongoPolicy
from manager.store.mongo.names import (
    AGENTS,
    AUDIT,
    COLLECTIONS,
    CURVES,
    DEFAULT_DATABASE,
    HALL_OF_FAME,
    KILL_SWITCH,
    KNOWLEDGE,
    LEDGER,
    MIGRATIONS,
    POLICY_DECISIONS,
    POPULATIONS,
    PROMOTIONS,
    RUNS,
    STUDIES,
    SUMMARIES,
    TRADES,
    TRIALS,
)
from manager.store.mongo.runs import MongoRuns, listing_set
from manager.store.mongo.users import MongoUsers
from manager.store.mongo.promotions import MongoPromotions
from manager.store.mongo.deployments import MongoDeployments
from manager.store.mongo.alerts import MongoAlerts
from manager.store.mongo.intents import MongoIntents
from manager.store.mongo.names import CAMPAIGNS, PROMOTION_REQUESTS
from manager.store.mongo.names import USERS

__all__ = [
    "AGENTS",
    "AUDIT",
    "COLLECTIONS",
    "CURVES",
    "DEFAULT_DATABASE",
    "HALL_OF_FAME",
    "KILL_SWITCH",
    "KNOWLEDGE",
    "LEDGER",
    "MIGRATIONS",
    "MongoStore",
    "POLICY_DECISIONS",
    "POPULATIONS",
    "PROMOTIONS",
    "RUNS",
    "STUDIES",
    "SUMMARIES",
    "TRADES",
    "TRIALS",
    "USERS",
    "CAMPAIGNS",
    "PROMOTION_REQUESTS",
    "listing_set",
]


class MongoStore(MongoRuns, MongoLearning, MongoAudit, MongoPolicy, MongoUsers,
                 MongoPromotions, MongoDeployments, MongoAlerts, MongoIntents, Store):
    """The storage port on a MongoDB database (PyMongo ``AsyncMongoClient``).

    Args:
        url: ``mongodb://[user:password@]host[:port][,host...]/[dbname][?options]``
            or ``mongodb+srv://...``. Driver options go in the query string
            (e.g. ``replicaSet=rs0``, ``timeoutMS=10000``,
            ``serverSelectionTimeoutMS=2000``; the store's default server
            selection timeout is 10 s).
        database: database name; default: the URL's path, else ``"cohortlab"``.
        migrate: apply pending migrations (the indexes the store relies on,
            e.g. the unique ledger key) when opening. Leave on unless you run
            ``cohortlab migrate`` yourself.
        transactions: use multi-document transactions for ``complete_run``,
            ``fail_run`` and ``append_ledger``. ``None`` (default) = when the
            server supports them (a replica set member or ``mongos``).
        client_options: further keyword arguments for ``AsyncMongoClient``
            (e.g. ``event_listeners``, TLS settings); they override URL options.

    Raises:
        StoreError: a bad URL or database name, no server reachable, or a failed
            migration. Passwords are not echoed.

    See the module docstring for the layout and the atomicity guarantees, and
    :class:`~manager.store.base.Store` for the behaviour of every method.
    """
