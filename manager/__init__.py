"""The application layer: use cases, the read model, jobs, the store and its settings.

Importing the package wires the store's schema migrations in (:mod:`manager.bootstrap`).
"""

from manager import bootstrap as _bootstrap  # noqa: F401  (installs the store's migrator)
