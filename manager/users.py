"""Users, roles, personal tokens and the permission matrix (issue 13).

The one place that decides who may do what. The CLI (``cohortlab users ...``), the
API's dependencies (:mod:`api.deps`) and the dashboard's sign-in (:mod:`web.pages.signin`)
are thin adapters over these functions.

Roles (:data:`ROLES`): ``viewer`` reads only; ``ops`` launches cohorts, proposes
promotions and signs the ops step; ``risk`` signs the risk step and uses the kill
switch; ``admin`` manages users (and may launch and use the kill switch). What each
action needs is :data:`PERMISSIONS`; ask :func:`can` or :func:`require`.

Tokens. A personal token is ``clab_<user_id>_<secret>`` (``secret`` from
:func:`secrets.token_urlsafe`, 256 bits). It is shown once (``users add``,
``users rotate``) and stored only as an argon2id hash (argon2-cffi's
``PasswordHasher``): :func:`authenticate` parses the user id out of the token, looks
the user up and verifies the hash; a revoked user is refused. The bootstrap token
``COHORTLAB_API_TOKEN`` (compared in constant time) is the bootstrap admin
:data:`BOOTSTRAP_NAME` (``admin:bootstrap``): it exists so that the first admin can
act before any user does, and stays an admin credential.

Audit. Every user change is an audit event (kinds ``user.add``, ``user.revoke``,
``user.rotate``; details name the user and role, never a token or a hash), and
:func:`record_request` is what the API's audit middleware records for every
successful state-changing request (kind ``http.request``).
"""
from __future__ import annotations

import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from manager.store import NotFound, Store
from manager.store.documents import check_user_name
from manager.store.errors import InvalidDocument

__all__ = [
    "BOOTSTRAP", "BOOTSTRAP_NAME", "PERMISSIONS", "ROLES", "TOKEN_PREFIX", "PermissionDenied", "Principal",
    "UserError", "add_user", "authenticate", "can", "has_users", "hash_token", "list_users", "new_token",
    "parse_token", "principal_of_session", "public_user", "record_request", "require", "revoke_user",
    "roles_for", "rotate_token", "session_stamp", "verify_token",
]

log = logging.getLogger("cohortlab.users")

ROLES: tuple[str, ...] = ("viewer", "ops", "risk", "admin")
"""The roles a user may hold (one each)."""

PERMISSIONS: dict[str, frozenset[str]] = {
    "launch": frozenset({"ops", "admin"}),
    "propose": frozenset({"ops", "admin"}),
    "approve:ops": frozenset({"ops"}),
    "approve:risk": frozenset({"risk"}),
    "reject": frozenset({"ops", "risk", "admin"}),
    "kill_switch": frozenset({"risk", "admin"}),
    "manage_users": frozenset({"admin"}),
    "rollback": frozenset({"ops", "risk", "admin"}),
    "extend": frozenset({"risk", "admin"}),
    "pause": frozenset({"ops", "risk", "admin"}),
}
"""The permission matrix: action -> the roles allowed to do it. Reading needs no
permission (every role, ``viewer`` included, sees everything). The only copy: the
API's routes, the dashboard and the docs derive from it."""

BOOTSTRAP_NAME = "admin:bootstrap"
"""The principal of the bootstrap token ``COHORTLAB_API_TOKEN``."""

TOKEN_PREFIX = "clab_"
"""Personal tokens are ``clab_<user_id>_<secret>``."""

_TOKEN_RE = re.compile(r"clab_([0-9a-f]{12})_([A-Za-z0-9_-]{20,})")


class UserError(ValueError):
    """A user command that cannot be done: an unknown user, a bad role, a revoked user."""


class PermissionDenied(UserError):
    """The principal lacks the role an action needs; the message names the user, the
    role held and the roles allowed."""


@dataclass(frozen=True)
class Principal:
    """Who acts.

    Attributes:
        name: the user's name, or :data:`BOOTSTRAP_NAME` for the bootstrap token.
        role: one of :data:`ROLES`.
    """

    name: str
    role: str

    @property
    def roles(self) -> frozenset[str]:
        """``{role}`` (compatibility with code that asks for a set of roles)."""
        return frozenset({self.role})

    @property
    def is_bootstrap(self) -> bool:
        """True for the bootstrap admin (``COHORTLAB_API_TOKEN``)."""
        return self.name == BOOTSTRAP_NAME

    @property
    def actor(self) -> str:
        """The ``actor`` of this principal's audit events: ``user:<name>`` or ``admin:bootstrap``."""
        return BOOTSTRAP_NAME if self.is_bootstrap else f"user:{self.name}"


BOOTSTRAP = Principal(BOOTSTRAP_NAME, "admin")
"""The bootstrap admin (``COHORTLAB_API_TOKEN``)."""


# -- permissions ------------------------------------------------------------------------------


def roles_for(action: str) -> frozenset[str]:
    """The roles allowed to do ``action``.

    Raises:
        KeyError: an action that is not in :data:`PERMISSIONS` (a programming error).
    """
    try:
        return PERMISSIONS[action]
    except KeyError:
        raise KeyError(f"unknown action {action!r}; known: {', '.join(PERMISSIONS)}") from None


def can(principal: Principal | None, action: str) -> bool:
    """Whether ``principal`` may do ``action`` (False for None: nobody signed in).

    Raises:
        KeyError: an unknown action.
    """
    allowed = roles_for(action)
    return principal is not None and principal.role in allowed


def require(principal: Principal | None, action: str) -> Principal:
    """``principal`` when it may do ``action``.

    Raises:
        PermissionDenied: it may not (or is None); the message names the user, the role and
            the roles allowed, e.g. ``user 'vera' (role viewer) may not launch; needs one of: admin, ops``.
        KeyError: an unknown action.
    """
    if can(principal, action):
        return principal  # type: ignore[return-value]
    allowed = ", ".join(sorted(roles_for(action)))
    who = "nobody signed in" if principal is None else f"user {principal.name!r} (role {principal.role})"
    raise PermissionDenied(f"{who} may not {action}; needs one of: {allowed}")


# -- tokens -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _hasher():  # noqa: ANN202 - argon2.PasswordHasher
    from argon2 import PasswordHasher

    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("clab_000000000000_not-a-token-" + secrets.token_urlsafe(8))


def hash_token(token: str) -> str:
    """The argon2id hash of ``token`` (what the store keeps; a new salt every call)."""
    return _hasher().hash(token)


def verify_token(token_hash: str, token: str) -> bool:
    """Whether ``token`` matches ``token_hash`` (argon2 verification; False for any mismatch
    or a malformed hash, never an exception)."""
    from argon2.exceptions import Argon2Error, InvalidHashError

    try:
        return bool(_hasher().verify(token_hash, token))
    except (Argon2Error, InvalidHashError, ValueError):
        return False


def new_token(user_id: str) -> str:
    """A fresh personal token ``clab_<user_id>_<secret>`` (secret: 32 random bytes, urlsafe)."""
    return f"{TOKEN_PREFIX}{user_id}_{secrets.token_urlsafe(32)}"


def parse_token(token: str) -> str | None:
    """The user id of a personal token, or None when ``token`` is not shaped like one."""
    match = _TOKEN_RE.fullmatch(token or "")
    return match.group(1) if match else None


def _new_user_id() -> str:
    return secrets.token_hex(6)


# -- use cases --------------------------------------------------------------------------------


def public_user(user: dict[str, Any]) -> dict[str, Any]:
    """A stored user without its token hash (what listings show)."""
    return {k: v for k, v in user.items() if k != "token_hash"}


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role {role!r} is not allowed; allowed: {', '.join(ROLES)}")
    return role


def _find(store: Store, name: str) -> dict[str, Any]:
    try:
        return store.get_user_by_name(name)
    except (NotFound, InvalidDocument):
        raise UserError(f"no user named {name!r}; see 'cohortlab users list'") from None


def _audit(store: Store, kind: str, actor: str, user: dict[str, Any]) -> None:
    store.record_audit({"kind": kind, "actor": actor,
                        "details": {"user": user["name"], "user_id": user["user_id"], "role": user["role"]}})


def add_user(store: Store, name: str, role: str, *, actor: str = "system") -> tuple[dict[str, Any], str]:
    """Create a user with a new personal token (audit event ``user.add``).

    Args:
        name: unique, 1-64 characters from ``A-Z a-z 0-9 . _ @ -``.
        role: one of :data:`ROLES`.
        actor: who adds (``cli:<login>``, ``user:<name>``).

    Returns:
        ``(user without its hash, token)``: the token is not stored and cannot be shown again.

    Raises:
        UserError: a role not in :data:`ROLES`, a bad name, or the name is taken.
    """
    _check_role(role)
    if name == BOOTSTRAP_NAME:
        raise UserError(f"{BOOTSTRAP_NAME!r} is the bootstrap admin's name; choose another")
    try:
        check_user_name(name)
    except InvalidDocument as exc:
        raise UserError(str(exc)) from None
    try:
        store.get_user_by_name(name)
    except NotFound:
        pass
    else:
        raise UserError(f"a user named {name!r} exists; rotate its token with 'cohortlab users rotate {name}'")
    user_id = _new_user_id()
    token = new_token(user_id)
    user = store.create_user({"user_id": user_id, "name": name, "role": role, "token_hash": hash_token(token)})
    _audit(store, "user.add", actor, user)
    return public_user(user), token


def list_users(store: Store) -> list[dict[str, Any]]:
    """Every user (revoked ones too), oldest first, without token hashes."""
    return [public_user(u) for u in store.list_users()]


def revoke_user(store: Store, name: str, *, actor: str = "system") -> dict[str, Any]:
    """Revoke a user: its token is refused from now on (audit event ``user.revoke``).
    Revoking again changes nothing but is audited too.

    Returns:
        The user without its hash (``revoked_at`` set).

    Raises:
        UserError: no user of that name.
    """
    user = _find(store, name)
    user = store.revoke_user(user["user_id"])
    _audit(store, "user.revoke", actor, user)
    return public_user(user)


def rotate_token(store: Store, name: str, *, actor: str = "system") -> str:
    """Give a user a new personal token; the old one is refused from now on, and the
    user's dashboard sessions end (audit event ``user.rotate``).

    Returns:
        The new token (shown once; not stored).

    Raises:
        UserError: no user of that name, or the user is revoked.
    """
    user = _find(store, name)
    if user["revoked_at"]:
        raise UserError(f"user {name!r} was revoked at {user['revoked_at']}; add a new user instead")
    token = new_token(user["user_id"])
    user = store.update_user_token(user["user_id"], hash_token(token))
    _audit(store, "user.rotate", actor, user)
    return token


def has_users(store: Store) -> bool:
    """Whether any user was ever added."""
    return bool(store.list_users())


def authenticate(store: Store, token: str | None, bootstrap_token: str | None) -> Principal | None:
    """The principal a bearer token stands for, or None when it stands for nobody.

    Args:
        token: what the caller sent (``Authorization: Bearer <token>``, or the sign-in form).
        bootstrap_token: ``COHORTLAB_API_TOKEN`` (None when unset).

    Returns:
        :data:`BOOTSTRAP` for the bootstrap token (constant-time comparison); the user's
        principal for a valid personal token of a user who is not revoked; None otherwise
        (unknown shape, unknown user, wrong secret, revoked user). Never raises for bad input.

    Raises:
        StoreError: the store cannot be read.
    """
    if not token:
        return None
    if bootstrap_token and hmac.compare_digest(token.encode(), bootstrap_token.encode()):
        return BOOTSTRAP
    user_id = parse_token(token)
    if user_id is None:
        return None
    try:
        user = store.get_user(user_id)
    except (NotFound, InvalidDocument):
        verify_token(_dummy_hash(), token)  # the same work whether or not the user exists
        return None
    if not verify_token(user["token_hash"], token) or user["revoked_at"]:
        return None
    return Principal(user["name"], user["role"])


def session_stamp(store: Store, principal: Principal) -> str:
    """What a dashboard session records of its user's credentials: the time of its last
    token (``rotated_at`` or ``created_at``); ``""`` for the bootstrap admin. A session whose
    stamp no longer matches (the token was rotated) has ended.

    Raises:
        UserError: no such user.
    """
    if principal.is_bootstrap:
        return ""
    user = _find(store, principal.name)
    return user["rotated_at"] or user["created_at"]


def principal_of_session(store: Store, name: str | None, stamp: str | None,
                         bootstrap_token: str | None) -> Principal | None:
    """The principal of a dashboard session holding ``name`` and ``stamp``, re-checked now:
    None when the user is unknown, revoked or its token was rotated since sign-in, or when
    the session is the bootstrap admin's and no bootstrap token is configured any more.

    Raises:
        StoreError: the store cannot be read.
    """
    if not name:
        return None
    if name == BOOTSTRAP_NAME:
        return BOOTSTRAP if bootstrap_token else None
    try:
        user = store.get_user_by_name(name)
    except (NotFound, InvalidDocument):
        return None
    if user["revoked_at"] or (user["rotated_at"] or user["created_at"]) != stamp:
        return None
    return Principal(user["name"], user["role"])


def record_request(store: Store, principal: Principal | None, method: str, route: str, status: int) -> None:
    """Record a successful state-changing HTTP request (kind ``http.request``, the
    principal's :attr:`~Principal.actor` or ``anonymous``, details ``method``, ``route``
    (the route template, never the raw path) and ``status``).

    Raises:
        StoreError: the event cannot be written.
    """
    store.record_audit({"kind": "http.request", "actor": principal.actor if principal else "anonymous",
                        "details": {"method": method, "route": route, "status": int(status)}})
