"""The campaign and promotion ports: stored campaign reports, and Day-3 promotion
requests with their append-only transition log.

Campaign (what :meth:`CampaignStore.save_campaign` takes and the reads return; see
:func:`~manager.store.documents.promotions.prepare_campaign`)::

    {
        "campaign_id": str,        # id (check_id rules)
        "market": str,             # market key, e.g. "binance-5m|5m|BTC"
        "created_at": str,         # ISO 8601 UTC (canonical); default now
        "report": dict,            # the report as manager.campaigns.run_campaign returns it
        "run_ids": [str, ...],     # the days' cohort run ids, Day 1 first
        "saved_at": str,           # set by the store
        ...                        # further JSON-able caller keys
    }

Saving a campaign again under the same id replaces it (a re-run of the same
campaign id is the newer truth); ``created_at`` of the first save is kept.

Promotion request (what :meth:`PromotionStore.create_promotion` takes; see
:func:`~manager.store.documents.promotions.prepare_promotion`)::

    {
        "promotion_id": str,       # id (check_id rules)
        "campaign_id": str,
        "day": int,                # the campaign day reviewed (>= 1)
        "run_id": str,             # the ranking day's cohort run
        "agent_id": str,
        "status": str,             # lower-case status name, e.g. "proposed"
        "created_at": str,         # ISO 8601 UTC (canonical); default now
        "expires_at": str | None,  # ISO 8601 UTC: end of the approval window
        "steps": [dict, ...],      # the signed steps so far (appended by transitions)
        ...                        # checklist, hash, allocation, chain, ...: JSON-able
    }

**Transitions** (:meth:`PromotionStore.transition_promotion`) are conditional on
the current status: the update names the status it expects (SQLite ``UPDATE ...
WHERE status = ?``, MongoDB ``find_one_and_update`` with the status in the
filter), so of two concurrent transitions from the same status exactly one
wins. Each successful transition appends the step to the request's ``steps``,
sets ``status`` and ``updated_at``, and appends one row to ``promotion_log``
(``seq`` = 1, 2, ... per request in append order, ``promotion_id``,
``agent_id``, ``run_id``, ``from_status``, ``status``, ``actor``,
``created_at``, ``doc`` = the step)
and one audit event (kind ``promotion.<to_status>``, the step's ``user`` as
actor, ``details {"promotion_id", "from", "to", ...}``). SQLite writes the
three in one transaction; MongoDB in a transaction where the server has them,
else the request first (with the log row and event ``pending`` on it, under
fixed ids) and the log row and event after, a pending pair left by a failure
being written (once) by the next read of the request.

The creation itself is logged the same way (``from_status`` None, kind
``promotion.<status>``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["CampaignStore", "PromotionStore"]


class CampaignStore(ABC):
    """Persistence port of stored campaign reports.

    Documents are copied in and out; every method raises
    :class:`~manager.store.errors.StoreError` subclasses only.
    """

    @abstractmethod
    def save_campaign(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Store (or replace) a campaign.

        Returns:
            The campaign as stored (with ``saved_at``; ``created_at`` of the
            first save when it is replaced).

        Raises:
            InvalidDocument: a missing or wrong-typed field (named), a bad id,
                a value that is not JSON-able.
        """

    @abstractmethod
    def get_campaign(self, campaign_id: str) -> dict[str, Any]:
        """The stored campaign.

        Raises:
            InvalidDocument: a bad id.
            NotFound: no campaign with that id.
        """

    @abstractmethod
    def list_campaigns(self, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Stored campaigns, newest ``created_at`` first (ties: by id).

        Raises:
            InvalidDocument: ``limit`` not 1 to MAX_LIST_LIMIT, ``offset`` < 0.
        """


class PromotionStore(ABC):
    """Persistence port of promotion requests and their transition log.

    Documents are copied in and out; every method raises
    :class:`~manager.store.errors.StoreError` subclasses only.
    """

    @abstractmethod
    def create_promotion(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Store a new promotion request, log its creation and audit it
        (actor: ``doc["proposed_by"]["user"]`` when given, else ``"system"``).

        Returns:
            The request as stored (``updated_at`` = ``created_at``).

        Raises:
            InvalidDocument: a missing or wrong-typed field (named).
            StoreError: a request with that ``promotion_id`` exists.
        """

    @abstractmethod
    def get_promotion(self, promotion_id: str) -> dict[str, Any]:
        """The request as it is now.

        Raises:
            InvalidDocument: a bad id.
            NotFound: no request with that id.
        """

    @abstractmethod
    def list_promotions(self, *, status: str | None = None, campaign_id: str | None = None,
                        limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Requests, newest ``created_at`` first (ties: by id); exact filters, None = any.

        Raises:
            InvalidDocument: a bad filter, ``limit`` or ``offset``.
        """

    @abstractmethod
    def count_promotions(self, *, status: str | None = None, campaign_id: str | None = None) -> int:
        """How many requests :meth:`list_promotions` would page through."""

    @abstractmethod
    def transition_promotion(self, promotion_id: str, from_status: str, to_status: str,
                             step: dict[str, Any]) -> bool:
        """Move a request from ``from_status`` to ``to_status`` if, and only if,
        it is in ``from_status`` now (a conditional update: of concurrent calls
        from one status exactly one returns True).

        Args:
            promotion_id: the request.
            from_status, to_status: status names (lower-case, ``[a-z0-9_]``).
            step: the signed step (JSON-able dict with a non-empty ``user``;
                ``at`` canonicalised, default now) appended to ``steps``, logged
                in ``promotion_log`` and audited as ``promotion.<to_status>``.

        Returns:
            True when this call made the transition; False when the request was
            not in ``from_status`` (nothing written).

        Raises:
            InvalidDocument: bad arguments.
            NotFound: no request with that id.
        """

    @abstractmethod
    def promotion_log(self, promotion_id: str) -> list[dict[str, Any]]:
        """The request's log rows, oldest first: ``{"seq", "promotion_id",
        "agent_id", "run_id", "from_status", "status", "actor", "created_at",
        "doc"}`` (``seq`` 1, 2, ... in append order; 1 is the creation).

        Raises:
            InvalidDocument: a bad id.
        """
