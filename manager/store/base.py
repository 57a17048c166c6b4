"""The storage port: one :class:`Store` combining the ports of every aggregate.

Each aggregate has its own port (:mod:`manager.store.ports`): runs and their
ledger (:class:`~manager.store.ports.runs.RunStore`), learning
(:class:`~manager.store.ports.learning.LearningStore`), audit
(:class:`~manager.store.ports.audit.AuditStore`) and policy
(:class:`~manager.store.ports.policy.PolicyStore`). Code that needs one
aggregate may type its argument with that port; one store object implements
all of them. Every adapter (SQLite, MongoDB) passes the same contract suite
(``tests/manager/store/``); the document checks they share live in
:mod:`manager.store.documents`, the errors in :mod:`manager.store.errors`.
"""

from __future__ import annotations

from abc import abstractmethod
from types import TracebackType

from manager.store.ports import AuditStore, LearningStore, PolicyStore, RunStore
from manager.store.ports import UsersStore
from manager.store.ports import CampaignStore, PromotionStore
from manager.store.ports import DeploymentStore
from manager.store.ports import AlertStore
from manager.store.ports import IntentStore

__all__ = ["Store"]


class Store(RunStore, LearningStore, AuditStore, PolicyStore, UsersStore,
            CampaignStore, PromotionStore, DeploymentStore, AlertStore, IntentStore):
    """Persistence port for runs, their results, the ledger journal, the hall of
    fame, audit events, the learning loop's populations, knowledge base and
    search trials, and risk-policy decisions and the kill switch (the union of the ports in :mod:`manager.store.ports`).

    All methods are synchronous. Documents go in and come out as plain dicts of
    JSON-able values (shapes in each port's module docstring); the store copies
    its input, so callers may mutate their dicts afterwards. Use as a context
    manager to close it on exit.

    Errors: every method raises :class:`~manager.store.errors.StoreError`
    subclasses only: :class:`~manager.store.errors.NotFound` (its subclass
    :class:`~manager.store.errors.RunNotFound` for runs),
    :class:`~manager.store.errors.InvalidDocument` (bad input),
    :class:`~manager.store.errors.RunStateError` (wrong status),
    :class:`~manager.store.errors.StudyMismatch` (a search resumed with other
    settings), or plain :class:`~manager.store.errors.StoreError` (duplicates,
    conflicts, I/O, closed store).
    """

    @abstractmethod
    def close(self) -> None:
        """Release the store's resources; idempotent. Later calls raise StoreError."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
