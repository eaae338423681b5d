"""`shopbot staff add|list|remove|password`: the accounts that sign in to `/staff`.

Passwords are typed at a prompt, twice, and never shown or taken as an argument (which
would leave them in the shell's history and the process list).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from argon2 import PasswordHasher
from rich.console import Console
from rich.table import Table
from sqlalchemy import inspect

from shopbot.config import Settings
from shopbot.errors import StaffAccountError
from shopbot.web.accounts import StaffAccount, StaffAccounts, check_password, clean_name

__all__ = ["staff_app"]

staff_app = typer.Typer(
    no_args_is_help=True, help="Staff accounts: who may sign in to /staff of `shopbot serve`."
)
console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")
ATTEMPTS = 3
Name = Annotated[str, typer.Argument(help="The name to sign in with (any case).")]


def password_hasher() -> PasswordHasher:
    """argon2-cffi's default parameters, the ones the server hashes with."""
    return PasswordHasher()


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(2)


def _ask_password() -> str:
    """A new password, typed twice without echo; `ATTEMPTS` tries to get both right."""
    for _ in range(ATTEMPTS):
        password = typer.prompt("Password", hide_input=True)
        try:
            check_password(password)
        except StaffAccountError as exc:
            console.print(f"[red]{exc}[/red]")
            continue
        if typer.prompt("Repeat the password", hide_input=True) == password:
            return password
        console.print("[red]the two passwords differ[/red]")
    raise _fail("no password was set")


def _run(work: Callable[[StaffAccounts], Awaitable[T]]) -> T:
    """Run `work(accounts)` on the configured database; one line for any account error."""
    from shopbot.app import open_database

    settings = Settings()

    async def run() -> T:
        engine, sessions = open_database(settings)
        try:
            async with engine.connect() as conn:
                ready = await conn.run_sync(lambda sync: inspect(sync).has_table("staff"))
            if not ready:
                raise _fail("the database has no staff accounts table: run `shopbot db upgrade`")
            return await work(StaffAccounts(sessions, password_hasher()))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except StaffAccountError as exc:
        raise _fail(str(exc)) from None


@staff_app.command("add")
def add(
    name: Name,
    email: Annotated[str | None, typer.Option(help="Their email address (optional).")] = None,
) -> None:
    """Add a staff account; its password is asked for twice, never shown."""
    try:
        clean_name(name)
    except StaffAccountError as exc:
        raise _fail(str(exc)) from None
    password = _ask_password()
    account = _run(lambda accounts: accounts.add(name, password, email))
    console.print(f"added staff account {account.name!r}: sign in at /staff/login")


@staff_app.command("list")
def list_accounts() -> None:
    """The staff accounts, with their open sessions."""

    async def both(accounts: StaffAccounts) -> tuple[list[StaffAccount], dict[int, int]]:
        return await accounts.all(), await accounts.sessions_of()

    found, sessions = _run(both)
    if not found:
        console.print("no staff accounts yet: add one with `shopbot staff add NAME`")
        return
    table = Table("name", "email", "added", "sessions")
    for account in found:
        table.add_row(
            account.name,
            account.email or "",
            account.created_at.date().isoformat(),
            str(sessions.get(account.id, 0)),
        )
    Console().print(table)


@staff_app.command("remove")
def remove(name: Name) -> None:
    """Remove a staff account; its sessions end at once."""
    ended = _run(lambda accounts: accounts.remove(name))
    console.print(f"removed staff account {name!r} ({_sessions(ended)} signed out)")


@staff_app.command("password")
def password(name: Name) -> None:
    """Set a new password for a staff account; its sessions end at once."""
    new = _ask_password()
    ended = _run(lambda accounts: accounts.set_password(name, new))
    console.print(f"changed the password of {name!r} ({_sessions(ended)} signed out)")


def _sessions(n: int) -> str:
    return f"{n} session" if n == 1 else f"{n} sessions"
