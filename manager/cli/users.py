"""``cohortlab users add|list|revoke|rotate``: users, roles and personal tokens.

Thin adapters over :mod:`manager.users`. Tokens are printed once (``add``, ``rotate``)
and stored only as argon2 hashes; ``list`` never shows a hash. Every change is an audit
event with the actor ``cli:<login>``. A bad role or an unknown user exits 2.
"""
from __future__ import annotations

import getpass
from typing import Optional

import typer
from rich.table import Table

from manager import users
from manager.cli.options import STORE, open_store_or_exit
from manager.cli.output import USER_ERRORS, err, fail, say

__all__ = ["users_add", "users_list", "users_revoke", "users_rotate"]

_ERRORS = (users.UserError, *USER_ERRORS)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # noqa: BLE001 - no login name (a container without a passwd entry)
        return "cli"


def _show_token(token: str) -> None:
    say(token, soft_wrap=True, highlight=False)
    err.print("[bold yellow]warning:[/] this token is shown once and cannot be recovered; keep it in a "
              "password manager. Lost it? 'cohortlab users rotate NAME' issues a new one.")


def users_add(
    name: str = typer.Argument(..., help="User name (A-Z a-z 0-9 . _ @ -, up to 64 characters)."),
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(users.ROLES)}."),
    store_url: Optional[str] = STORE,
) -> None:
    """Add a user with a role; prints the personal API token once."""
    with open_store_or_exit(store_url) as store:
        try:
            user, token = users.add_user(store, name, role, actor=_actor())
        except _ERRORS as exc:
            fail(exc)
    err.print(f"added user {user['name']} (role {user['role']}, id {user['user_id']})")
    _show_token(token)


def users_list(store_url: Optional[str] = STORE) -> None:
    """List users: name, role, id, created, rotated, revoked (never a token or hash)."""
    with open_store_or_exit(store_url) as store:
        try:
            rows = users.list_users(store)
        except _ERRORS as exc:
            fail(exc)
    if not rows:
        say("no users; add one with 'cohortlab users add NAME --role ops|risk|admin|viewer'")
        return
    table = Table("name", "role", "user_id", "created_at", "rotated_at", "revoked_at")
    for u in rows:
        table.add_row(u["name"], u["role"], u["user_id"], u["created_at"], u["rotated_at"] or "-",
                      u["revoked_at"] or "-")
    say(table)


def users_revoke(name: str = typer.Argument(..., help="The user to revoke."),
                 store_url: Optional[str] = STORE) -> None:
    """Revoke a user: its token is refused from now on."""
    with open_store_or_exit(store_url) as store:
        try:
            user = users.revoke_user(store, name, actor=_actor())
        except _ERRORS as exc:
            fail(exc)
    say(f"revoked user {user['name']} at {user['revoked_at']}")


def users_rotate(name: str = typer.Argument(..., help="The user whose token to replace."),
                 store_url: Optional[str] = STORE) -> None:
    """Issue a new token for a user (printed once); the old one stops working."""
    with open_store_or_exit(store_url) as store:
        try:
            token = users.rotate_token(store, name, actor=_actor())
        except _ERRORS as exc:
            fail(exc)
    err.print(f"new token for {name}; the old one no longer works")
    _show_token(token)
