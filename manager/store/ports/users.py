"""The users port: the people (and their roles) who may change things.

User document (what every read returns; see
:func:`~manager.store.documents.users.prepare_user`)::

    {
        "user_id": str,            # an id (check_id rules), part of the personal token
        "name": str,               # unique; 1-64 characters from A-Z a-z 0-9 . _ @ -
        "role": str,               # "viewer" | "ops" | "risk" | "admin" (checked by manager.users)
        "token_hash": str,         # argon2 hash of the personal token (never the token)
        "created_at": str,         # ISO 8601 UTC (canonical)
        "revoked_at": str | None,  # set once by revoke_user; a revoked user is refused
        "rotated_at": str | None,  # the last update_user_token
    }

The store keeps hashes only; hashing and verifying belong to :mod:`manager.users`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any

__all__ = ["UsersStore"]


class UsersStore(ABC):
    """Persistence port of the users aggregate. Documents are copied in and out;
    every method raises :class:`~manager.store.errors.StoreError` subclasses only."""

    @abstractmethod
    def create_user(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Store a new user.

        Args:
            doc: ``user_id``, ``name``, ``role``, ``token_hash`` (non-empty str),
                optional ``created_at`` (default now); ``revoked_at`` and
                ``rotated_at`` start as None.

        Returns:
            The user as stored.

        Raises:
            InvalidDocument: a missing, empty or wrong-typed field, a bad id or name.
            StoreError: a user with this ``name`` or ``user_id`` exists.
        """

    @abstractmethod
    def get_user(self, user_id: str) -> dict[str, Any]:
        """The user with this id (revoked ones too).

        Raises:
            InvalidDocument: a bad id.
            NotFound: no such user.
        """

    @abstractmethod
    def get_user_by_name(self, name: str) -> dict[str, Any]:
        """The user with this name (revoked ones too).

        Raises:
            InvalidDocument: a bad name.
            NotFound: no such user.
        """

    @abstractmethod
    def list_users(self) -> list[dict[str, Any]]:
        """Every user (revoked ones too), oldest ``created_at`` first, then by name."""

    @abstractmethod
    def update_user_token(self, user_id: str, token_hash: str, at: str | datetime | None = None) -> dict[str, Any]:
        """Replace the user's token hash and set ``rotated_at`` to ``at`` (default now).

        Returns:
            The updated user.

        Raises:
            InvalidDocument: a bad id, an empty hash, a bad ``at``.
            NotFound: no such user.
        """

    @abstractmethod
    def revoke_user(self, user_id: str, at: str | datetime | None = None) -> dict[str, Any]:
        """Set ``revoked_at`` to ``at`` (default now); a user already revoked keeps
        its first ``revoked_at`` (idempotent).

        Returns:
            The user as stored after the call.

        Raises:
            InvalidDocument: a bad id or ``at``.
            NotFound: no such user.
        """
