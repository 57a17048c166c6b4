"""Document checks and preparation shared by every adapter, one module per aggregate.

- :mod:`~manager.store.documents.values`: JSON-able copies, typed field checks
  (``require_*``), ids, timestamps, page arguments, equity-curve bytes;
- :mod:`~manager.store.documents.runs`: the run document and its typed header,
  agent results, trades, ledger transactions, the cohort listing's fields;
- :mod:`~manager.store.documents.learning`: hall of fame, populations,
  knowledge records, search trials and study settings;
- :mod:`~manager.store.documents.audit`: audit events.

Adapters validate with these functions only, so every adapter accepts and
refuses exactly the same input. A new aggregate (e.g. promotions) adds its
module here beside its port in :mod:`manager.store.ports`.
"""

from manager.store.documents.audit import AUDIT_FIELDS, prepare_audit_event
from manager.store.documents.learning import (
    check_study_meta,
    prepare_hall_of_fame,
    prepare_knowledge,
    prepare_population,
    prepare_study_meta,
    prepare_trial,
)
from manager.store.documents.runs import (
    COHORT_LISTING_FIELDS,
    COHORT_SUMMARY_KEYS,
    LISTING_METRICS,
    RUN_HEADER_FIELDS,
    RUN_KINDS,
    RUN_STATUSES,
    check_cohort_listing,
    cohort_listing_fields,
    empty_header,
    listing_metrics,
    prepare_agent,
    prepare_header,
    prepare_run,
    prepare_trade,
    prepare_txn,
)
from manager.store.documents.values import (
    MAX_LIST_LIMIT,
    check_day,
    check_id,
    check_limit,
    check_mode,
    check_offset,
    check_run_id,
    created_micros,
    decode_array,
    encode_array,
    new_run_id,
    normalise_timestamp,
    require_int,
    require_list,
    require_mapping,
    require_number,
    require_str,
    to_document,
    utc_now,
)

__all__ = [
    "AUDIT_FIELDS",
    "COHORT_LISTING_FIELDS",
    "COHORT_SUMMARY_KEYS",
    "LISTING_METRICS",
    "MAX_LIST_LIMIT",
    "RUN_HEADER_FIELDS",
    "RUN_KINDS",
    "RUN_STATUSES",
    "check_cohort_listing",
    "check_day",
    "check_id",
    "check_limit",
    "check_mode",
    "check_offset",
    "check_run_id",
    "check_study_meta",
    "cohort_listing_fields",
    "created_micros",
    "decode_array",
    "empty_header",
    "encode_array",
    "listing_metrics",
    "new_run_id",
    "normalise_timestamp",
    "prepare_agent",
    "prepare_audit_event",
    "prepare_hall_of_fame",
    "prepare_header",
    "prepare_knowledge",
    "prepare_population",
    "prepare_run",
    "prepare_study_meta",
    "prepare_trade",
    "prepare_trial",
    "prepare_txn",
    "require_int",
    "require_list",
    "require_mapping",
    "require_number",
    "require_str",
    "to_document",
    "utc_now",
]
