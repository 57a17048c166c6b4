"""The deployment port: micro-live deployments of approved promotions and their
rollback incidents.

Deployment (what :meth:`DeploymentStore.create_deployment` takes; see
:func:`~manager.store.documents.deployments.prepare_deployment`)::

    {
        "deployment_id": str,      # id (check_id rules)
        "promotion_id": str,       # the risk_approved promotion; ONE deployment per promotion
        "status": str,             # lower-case status name: "running", "paused", "rolled_back", ...
        "last_bar": int,           # the last processed bar index (-1 = none yet)
        "created_at": str,         # ISO 8601 UTC (canonical); default now
        "updated_at": str,         # set by the store on every update
        ...                        # genome, allocation, timer, broker state, ledger: JSON-able
    }

**Idempotent creation.** :meth:`DeploymentStore.create_deployment` for a
promotion that already has a deployment returns the stored one unchanged
(whatever ``deployment_id`` the second call proposed): a retried "start" never
reserves capital twice.

**Conditional update (restart safety).** :meth:`DeploymentStore.update_deployment`
names the ``last_bar`` it expects (and optionally the ``status``): SQLite
``UPDATE ... WHERE deployment_id = ? AND last_bar = ? [AND status = ?]``, MongoDB
``find_one_and_update`` with both in the filter. Of two workers advancing the
same bar exactly one wins; the loser gets False and must drop what it computed.

Incident (:meth:`DeploymentStore.record_incident`): ``{"trigger": str, ...}``
JSON-able; the store adds ``deployment_id``, ``seq`` (1, 2, ... per deployment in
append order) and ``recorded_at``. Append-only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

__all__ = ["DeploymentStore"]


class DeploymentStore(ABC):
    """Persistence port of deployments and their rollback incidents.

    Documents are copied in and out; every method raises
    :class:`~manager.store.errors.StoreError` subclasses only.
    """

    @abstractmethod
    def create_deployment(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Store a new deployment, or return the one its promotion already has.

        Returns:
            The deployment as stored. When ``doc["promotion_id"]`` already has a
            deployment, that one, unchanged (idempotent per promotion).

        Raises:
            InvalidDocument: a missing or wrong-typed field (named).
            StoreError: ``deployment_id`` exists for another promotion.
        """

    @abstractmethod
    def get_deployment(self, deployment_id: str) -> dict[str, Any]:
        """The deployment as it is now.

        Raises:
            InvalidDocument: a bad id.
            NotFound: no deployment with that id.
        """

    @abstractmethod
    def list_deployments(self, status: str | None = None, limit: int = 50,
                         offset: int = 0) -> list[dict[str, Any]]:
        """Deployments, newest ``created_at`` first (ties: by id); ``status`` an exact filter.

        Raises:
            InvalidDocument: a bad status, ``limit`` or ``offset``.
        """

    @abstractmethod
    def update_deployment(self, deployment_id: str, expected_last_bar: int, changes: dict[str, Any], *,
                          expected_status: str | None = None) -> bool:
        """Apply ``changes`` (top-level keys replaced) if, and only if, the
        deployment's ``last_bar`` is ``expected_last_bar`` (and its status is
        ``expected_status`` when given): a conditional update.

        ``deployment_id``, ``promotion_id`` and ``created_at`` cannot change;
        ``last_bar`` (int >= -1) and ``status`` may; ``updated_at`` is set to now.

        Returns:
            True when this call wrote; False when the deployment had moved on.

        Raises:
            InvalidDocument: bad arguments (a forbidden or wrong-typed key).
            NotFound: no deployment with that id.
        """

    @abstractmethod
    def record_incident(self, deployment_id: str, incident: dict[str, Any]) -> dict[str, Any]:
        """Append a rollback incident to the deployment's incident log.

        Returns:
            The incident as stored (with ``deployment_id``, ``seq``, ``recorded_at``).

        Raises:
            InvalidDocument: a bad incident (``trigger`` missing or not a str).
            NotFound: no deployment with that id.
        """

    @abstractmethod
    def list_incidents(self, deployment_id: str) -> list[dict[str, Any]]:
        """The deployment's incidents, oldest first (by ``seq``).

        Raises:
            InvalidDocument: a bad id.
        """
