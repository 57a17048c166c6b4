"""Errors of the storage port: every store method raises only :class:`StoreError`
and its subclasses, whichever adapter is behind it."""

from __future__ import annotations

from typing import Any

__all__ = [
    "InvalidDocument",
    "MISSING",
    "NotFound",
    "RunLeased",
    "RunNotFound",
    "RunStateError",
    "StoreError",
    "StoreUnavailable",
    "StudyMismatch",
]


class StoreError(Exception):
    """Any failure of a store operation (bad URL, I/O, constraint, state)."""


class StoreUnavailable(StoreError):
    """A *transient* store failure that a retry may resolve: the database is
    busy or locked by another writer, or the server is unreachable.

    Every other :class:`StoreError` is permanent: a disk that is full
    (``SQLITE_FULL``), a read-only or moved file, I/O errors, a corrupt file,
    constraint and state errors. The original driver error is chained
    (``__cause__``).
    """


class NotFound(StoreError):
    """No document with the given id exists in the store (a run, a population,
    a knowledge record, a pagination cursor)."""


class RunNotFound(NotFound):
    """No run with the given ``run_id`` exists in the store."""


class InvalidDocument(StoreError, ValueError):
    """Input to the store has the wrong shape or holds a value it cannot store.

    Also a :class:`ValueError`, so callers validating input may catch either.
    """


class RunStateError(StoreError):
    """The operation is not allowed in the run's current ``status``.

    For example completing a run that already completed or failed, or failing a
    completed run (which would destroy its stored results).
    """


class RunLeased(StoreError):
    """The run is ``running`` under another owner whose lease has not expired:
    a live worker (or API process) is executing it, so it is not taken over.

    Transient: a later delivery finds the lease renewed (the run is still live)
    or expired (its owner died) and takes over.
    """


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
"""Stands for an absent key in :attr:`StudyMismatch.differences`."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class StudyMismatch(StoreError):
    """A search study is being resumed with settings other than the ones it was
    started with (see :meth:`~manager.store.ports.learning.LearningStore.save_study_meta`).

    Args:
        study: the study name.
        differences: one ``(path, stored, given)`` triple per differing value.

    Attributes:
        study: the study name.
        differences: one ``(path, stored, given)`` triple per differing value;
            ``path`` is a dotted key path (``"space.fast"``), a missing value is
            :data:`MISSING`.
    """

    def __init__(self, study: str, differences: list[tuple[str, Any, Any]]) -> None:
        self.study = study
        self.differences = differences
        shown = "; ".join(
            f"{path}: stored {_show(stored)}, given {_show(given)}"
            for path, stored, given in differences[:10]
        )
        more = f"; and {len(differences) - 10} more" if len(differences) > 10 else ""
        super().__init__(
            f"study {study!r} was started with other settings ({shown}{more}); resume it "
            "with the same search space and settings, or start a new study under another name"
        )
