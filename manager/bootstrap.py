"""Wires the schema migrations into the store: the one place that knows both.

The store package (:mod:`manager.store`) defines the ports and adapters but
no schema; the ``migrations`` package holds the versioned schema of both
adapters and imports the store. Neither may import the other the other way
round, so this module -- part of the application layer above both -- installs
:func:`migrations.apply_migrations` as the store's migrator
(:func:`manager.store.schema.install_migrator`) when it is imported. Importing
:mod:`manager` imports it, so every entry point (CLI, Celery worker, API,
scripts, tests) gets stores that migrate on open:
:func:`manager.store.open_store`, ``SQLiteStore(path)`` and ``MongoStore(url)``
with ``migrate=True`` (their default).
"""

from __future__ import annotations

from collections.abc import Sequence

import migrations
from manager.store.base import Store
from manager.store.schema import install_migrator

__all__ = ["apply_schema_migrations"]


def apply_schema_migrations(store: Store) -> Sequence[str]:
    """Apply the pending migrations of ``migrations`` to ``store``.

    Looked up at call time, so the migrator works however the two packages
    were first imported (and tests may swap ``migrations.MIGRATIONS``).

    Returns:
        Ids of the migrations applied.

    Raises:
        StoreError: a migration failed, or the adapter has none.
    """
    return migrations.apply_migrations(store)


install_migrator(apply_schema_migrations)
