"""The schema hook: how an adapter brings its database's schema up to date
without the store package knowing how.

The tables, collections and indexes are created and changed by the versioned
migrations of the ``migrations`` package, which sits above the store (it
imports the store; the store never imports it). The application wires the two
together once, in :mod:`manager.bootstrap`, by installing a migrator here;
adapters opened with ``migrate=True`` (the default, also of
:func:`manager.store.open_store`) call :func:`migrate_schema` on themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from manager.store.errors import StoreError

if TYPE_CHECKING:  # pragma: no cover
    from manager.store.base import Store

__all__ = ["Migrator", "install_migrator", "installed_migrator", "migrate_schema"]

Migrator = Callable[["Store"], Sequence[str]]
"""Applies the pending schema migrations to an open store and returns their ids."""

_migrator: Migrator | None = None


def install_migrator(migrator: Migrator | None) -> Migrator | None:
    """Install the function that migrates a store's schema (``None`` removes it).

    Args:
        migrator: ``migrator(store) -> ids applied``; it must raise
            :class:`~manager.store.errors.StoreError` when a step fails.

    Returns:
        The migrator installed before (to restore it, e.g. in tests).
    """
    global _migrator
    previous, _migrator = _migrator, migrator
    return previous


def installed_migrator() -> Migrator | None:
    """The installed migrator, or None."""
    return _migrator


def migrate_schema(store: Store) -> list[str]:
    """Apply the pending schema migrations to ``store`` with the installed migrator.

    Returns:
        Ids of the migrations applied (``[]`` when the schema was up to date).

    Raises:
        StoreError: no migrator is installed (import :mod:`manager.bootstrap`,
            which ``import manager`` does), or a migration failed.
    """
    if _migrator is None:
        raise StoreError(
            "no schema migrator is installed, so the store cannot create or upgrade its "
            "schema; import manager.bootstrap (done by `import manager`) or open with migrate=False"
        )
    return list(_migrator(store))
