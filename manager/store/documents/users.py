"""Documents of the users aggregate (shape: see :mod:`manager.store.ports.users`)."""

from __future__ import annotations

import re
from typing import Any

from manager.store.documents.values import check_id, require_mapping, require_str, timestamp_or_now
from manager.store.errors import InvalidDocument

__all__ = ["USER_FIELDS", "check_user_name", "prepare_user"]

USER_FIELDS: tuple[str, ...] = ("user_id", "name", "role", "token_hash", "created_at", "revoked_at", "rotated_at")
"""Keys of every stored user, in order."""

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def check_user_name(name: Any) -> str:
    """A user name: 1-64 characters from ``A-Z a-z 0-9 . _ @ -``, starting with a letter or digit.

    Raises:
        InvalidDocument: anything else.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidDocument(f"user name {name!r} is not valid; allowed: 1-64 characters from "
                              "A-Z a-z 0-9 . _ @ - starting with a letter or digit")
    return str.__str__(name)


def prepare_user(doc: Any) -> dict[str, Any]:
    """Validate a new user and fill defaults (``created_at`` now, ``revoked_at``/``rotated_at`` None).

    Raises:
        InvalidDocument: a missing, empty or wrong-typed field.
    """
    require_mapping(doc, "user")
    return {
        "user_id": check_id(doc.get("user_id"), "user_id"),
        "name": check_user_name(doc.get("name")),
        "role": require_str(doc.get("role"), "user role"),
        "token_hash": require_str(doc.get("token_hash"), "user token_hash"),
        "created_at": timestamp_or_now(doc.get("created_at"), "user created_at"),
        "revoked_at": None,
        "rotated_at": None,
    }
