"""Staff accounts: names, argon2id password hashes, and checking a sign-in.

Passwords are hashed with argon2id (argon2-cffi's `PasswordHasher`: RFC 9106's low-memory
profile, 64 MiB and 3 passes); a hash carries its own parameters and salt, so raising the
cost later re-hashes each account at its next sign-in. A name nobody has is checked against
a dummy hash of the same cost (made at the first such sign-in), so an unknown name and a
wrong password cost the same and read the same. Hashing runs in a worker thread, at most
`HASHING_AT_ONCE` at a time per process: each takes 64 MiB and a core for tens of
milliseconds, and the event loop keeps serving meanwhile.

Names are what staff type to sign in and what the staff pages show; they match ignoring
case (`Staff.login`).
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import Staff, StaffSession, utcnow
from shopbot.errors import StaffAccountError

__all__ = [
    "MIN_PASSWORD_CHARS",
    "StaffAccount",
    "StaffAccounts",
    "check_password",
    "clean_name",
]

MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
"""Longer input is refused before hashing: nobody types it, and it only costs CPU."""
HASHING_AT_ONCE = 2
_NAME = re.compile(r"[^\W_][\w .'-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True)
class StaffAccount:
    id: int
    name: str
    email: str | None
    created_at: datetime


def clean_name(name: str) -> tuple[str, str]:
    """The name to keep and the login it matches by; `StaffAccountError` if it cannot be one.

    Letters, digits, spaces, `.`, `'`, `-` and `_`, starting with a letter or digit, at most
    64 characters."""
    kept = unicodedata.normalize("NFKC", name).strip()
    if not _NAME.fullmatch(kept):
        raise StaffAccountError(
            "a staff name is 1-64 letters, digits, spaces or . ' - _, starting with a letter "
            "or digit"
        )
    return kept, kept.casefold()


def check_password(password: str) -> str:
    """`password` if it may be one; `StaffAccountError` saying why not."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise StaffAccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise StaffAccountError(f"a password has at most {MAX_PASSWORD_CHARS} characters")
    if not password.strip():
        raise StaffAccountError("a password needs more than spaces")
    return password


def _check_email(email: str | None) -> str | None:
    if email is None:
        return None
    email = email.strip()
    if len(email) > 320 or not _EMAIL.fullmatch(email):
        raise StaffAccountError(f"{email!r} is not an email address")
    return email


def _account(row: Staff) -> StaffAccount:
    return StaffAccount(row.id, row.name, row.email, row.created_at)


class StaffAccounts:
    """Adds, lists, changes and removes staff accounts; checks sign-ins."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], hasher: PasswordHasher | None = None
    ) -> None:
        self.sessions = sessions
        self.hasher = hasher or PasswordHasher()
        self._hashing = anyio.CapacityLimiter(HASHING_AT_ONCE)
        self._dummy: str | None = None

    async def add(self, name: str, password: str, email: str | None = None) -> StaffAccount:
        kept, login = clean_name(name)
        row = Staff(
            name=kept,
            login=login,
            email=_check_email(email),
            password_hash=await self._hash(check_password(password)),
        )
        async with self.sessions() as session:
            if await session.scalar(select(Staff.id).where(Staff.login == login)) is not None:
                raise StaffAccountError(f"a staff account named {kept!r} already exists")
            session.add(row)
            try:
                await session.commit()
            except IntegrityError:  # added by someone else meanwhile
                raise StaffAccountError(f"a staff account named {kept!r} already exists") from None
        return _account(row)

    async def all(self) -> list[StaffAccount]:
        async with self.sessions() as session:
            rows = await session.scalars(select(Staff).order_by(Staff.login))
            return [_account(row) for row in rows]

    async def set_password(self, name: str, password: str) -> int:
        """Change the password; every session of the account ends. Returns how many did."""
        hashed = await self._hash(check_password(password))
        async with self.sessions() as session:
            row = await self._find(session, name)
            row.password_hash = hashed
            row.password_changed_at = utcnow()
            ended = await self._end_sessions(session, row.id)
            await session.commit()
        return ended

    async def remove(self, name: str) -> int:
        """Delete the account and its sessions. Returns how many sessions ended."""
        async with self.sessions() as session:
            row = await self._find(session, name)
            ended = await self._end_sessions(session, row.id)
            await session.delete(row)
            await session.commit()
        return ended

    async def sessions_of(self) -> dict[int, int]:
        """Open sessions per account id (ended ones may count until they are swept)."""
        async with self.sessions() as session:
            rows = await session.execute(
                select(StaffSession.staff_id, func.count()).group_by(StaffSession.staff_id)
            )
            return {staff_id: int(n) for staff_id, n in rows}

    async def authenticate(self, name: str, password: str) -> StaffAccount | None:
        """The account if `password` is its password; None for a wrong password or an unknown
        name alike, after the same work."""
        try:
            login = clean_name(name)[1]
        except StaffAccountError:
            login = None
        row = None
        if login is not None and len(password) <= MAX_PASSWORD_CHARS:
            async with self.sessions() as session:
                row = await session.scalar(select(Staff).where(Staff.login == login))
        hashed = row.password_hash if row is not None else await self._dummy_hash()
        matches = await self._verify(hashed, password[:MAX_PASSWORD_CHARS])
        if row is None or not matches:
            return None
        if self.hasher.check_needs_rehash(hashed):
            await self._rehash(row.id, hashed, password)
        return _account(row)

    async def _rehash(self, staff_id: int, old: str, password: str) -> None:
        """Store the hash at today's parameters, unless the password changed meanwhile."""
        new = await self._hash(password)
        async with self.sessions() as session:
            row = await session.get(Staff, staff_id)
            if row is not None and row.password_hash == old:
                row.password_hash = new
                await session.commit()

    async def _find(self, session: AsyncSession, name: str) -> Staff:
        login = clean_name(name)[1]
        row = await session.scalar(select(Staff).where(Staff.login == login))
        if row is None:
            raise StaffAccountError(f"no staff account is named {name!r}")
        return row

    @staticmethod
    async def _end_sessions(session: AsyncSession, staff_id: int) -> int:
        ended = await session.execute(
            delete(StaffSession).where(StaffSession.staff_id == staff_id).returning(StaffSession.id)
        )
        return len(ended.all())

    async def _hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self.hasher.hash, password, limiter=self._hashing)

    async def _verify(self, hashed: str, password: str) -> bool:
        def verify() -> bool:
            try:
                return self.hasher.verify(hashed, password)
            except (VerificationError, InvalidHashError):
                return False

        return await anyio.to_thread.run_sync(verify, limiter=self._hashing)

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self._hash(secrets.token_urlsafe(16))
        return self._dummy
