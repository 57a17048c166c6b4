"""The assistant's port: intents (a "grow $X over N days" plan with its daily plan and the
actual-against-plan reports appended day by day; a "what should I fund tomorrow?" answer)
and the knowledge base of ``/knowledge`` (assistant recommendations, bankroll inputs, ...).

Intent (what :meth:`IntentStore.create_intent` takes; see
:func:`~manager.store.documents.intents.prepare_intent`)::

    {
        "intent_id": str,          # id (check_id rules), e.g. "int-0123456789ab"
        "kind": str,               # "grow" | "fund_tomorrow"
        "status": str,             # "draft" | "refused" | "blocked" | "running" | "completed" | "failed"
                                   # | "cancelled"
        "created_at": str,         # ISO 8601 UTC (canonical); default now
        "updated_at": str,         # set by the store
        "reports": [               # set by the store: appended by add_intent_report, one per day
            {"day": int, "at": str, ...},
        ],
        ...                        # inputs, market, prerequisites, feasibility, plan: JSON-able
    }

Knowledge entry (:meth:`IntentStore.add_knowledge_entry`; see
:func:`~manager.store.documents.intents.prepare_knowledge_entry`)::

    {
        "entry_id": str,           # id
        "kind": str,               # e.g. "assistant.fund_tomorrow", "assistant.grow", "assistant.grow_day"
        "title": str,              # one line
        "narrative": str,          # the templated text, citing its figures
        "market": str | None,      # market key (data folder/timeframe/quote) or None
        "links": [str],            # "<kind>:<id>": "run:..", "campaign:..", "promotion:..", "deployment:..",
                                   # "intent:.."; filterable
        "created_at": str,         # ISO 8601 UTC; default now
        ...                        # figures: JSON-able
    }
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["IntentStore"]


class IntentStore(ABC):
    """Persistence port of assistant intents and knowledge-base entries.

    Documents are copied in and out; every method raises
    :class:`~manager.store.errors.StoreError` subclasses only.
    """

    @abstractmethod
    def create_intent(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Store a new intent (no reports yet) and return it as stored.

        Raises:
            InvalidDocument: a missing or wrong-typed field (named).
            StoreError: ``intent_id`` exists already.
        """

    @abstractmethod
    def get_intent(self, intent_id: str) -> dict[str, Any]:
        """The intent as it is now, with its reports in day order.

        Raises:
            InvalidDocument: a bad id. NotFound: no such intent.
        """

    @abstractmethod
    def update_intent(self, intent_id: str, changes: dict[str, Any], *,
                      expected_status: str | None = None) -> dict[str, Any] | None:
        """Set fields of an intent, conditionally on its status.

        Args:
            changes: fields to set (``status`` checked; ``intent_id``, ``kind``, ``created_at``,
                ``reports`` may not change).
            expected_status: change only if the intent's status is this one (a compare-and-set:
                of two concurrent confirmations one wins). None = unconditional.

        Returns:
            The intent after the change, or None when its status was not ``expected_status``.

        Raises:
            InvalidDocument: bad changes. NotFound: no such intent.
        """

    @abstractmethod
    def add_intent_report(self, intent_id: str, report: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Append the actual-against-plan report of one day, once per ``report["day"]``.

        Returns:
            ``(intent, True)`` when appended, ``(intent, False)`` when that day had a report
            already (a redelivered task: the first report stays).

        Raises:
            InvalidDocument: no or a bad ``day``. NotFound: no such intent.
        """

    @abstractmethod
    def list_intents(self, kind: str | None = None, status: str | None = None, limit: int = 50,
                     offset: int = 0) -> list[dict[str, Any]]:
        """Intents, newest ``created_at`` first (ties: by id); exact ``kind``/``status`` filters.

        Raises:
            InvalidDocument: a bad filter, ``limit`` or ``offset``.
        """

    @abstractmethod
    def add_knowledge_entry(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Store a knowledge-base entry and return it as stored.

        Raises:
            InvalidDocument: a missing or wrong-typed field (named).
            StoreError: ``entry_id`` exists already.
        """

    @abstractmethod
    def get_knowledge_entry(self, entry_id: str) -> dict[str, Any]:
        """One knowledge entry.

        Raises:
            InvalidDocument: a bad id. NotFound: no such entry.
        """

    @abstractmethod
    def list_knowledge_entries(self, *, kind: str | None = None, market: str | None = None,
                               link: str | None = None, since: str | None = None, until: str | None = None,
                               limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        """Knowledge entries, newest ``created_at`` first (ties: by id).

        Args:
            kind: exact kind. market: exact market key. link: entries whose ``links`` hold it.
            since, until: ISO 8601; ``since <= created_at < until``.

        Raises:
            InvalidDocument: a bad filter, ``limit`` or ``offset``.
        """
