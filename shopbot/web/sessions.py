"""Signed-in staff: server-side session rows behind a signed cookie.

    cookie shopbot_staff = sign({"sid": <32 random bytes>}, key)    HttpOnly, SameSite=Strict,
                                                                     Path=/, Secure off loopback
    row    staff_sessions(id = sha256(sid), staff_id, csrf_token, last_seen_at, expires_at)

Server-side rows, not self-contained signed tokens, so a session can end before its time:
signing out deletes the row, and a changed password or a removed account deletes all of the
account's rows (`shopbot.web.accounts`). The table alone opens nothing (it holds the hash of
the id), and the signature (key derived from `SHOPBOT_WEB__STAFF_SESSION_SECRET`) turns a
forged or garbled cookie away before the database is asked. A session ends after
`staff_session_idle_minutes` unused (`last_seen_at`, refreshed at most once a minute) and
`staff_session_max_hours` after sign-in however active; ended rows are deleted when found,
and all of them at each sign-in.

The cookie is a browser's credential for the staff side only: customers' routes read their
bearer token and nothing else, so a staff cookie opens no conversation of theirs.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db import Staff, StaffSession
from shopbot.signing import sign, unsign

__all__ = ["COOKIE", "Expired", "SignedIn", "StaffSessions"]

COOKIE = "shopbot_staff"
PURPOSE = b"shopbot/staff-session/v1"
TOUCH_EVERY = timedelta(minutes=1)
"""How stale `last_seen_at` may get before a request refreshes it (a write per minute, not
one per request)."""


@dataclass(frozen=True)
class SignedIn:
    """A staff member's live session, as a request sees it."""

    session_id: str
    """The row's id (the hash of the cookie's id)."""
    staff_id: int
    name: str
    csrf_token: str


@dataclass(frozen=True)
class Expired:
    """The cookie named a session that has ended by time (not one signed out of)."""


def _row_id(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class StaffSessions:
    """Starts, finds and ends staff sessions."""

    def __init__(
        self,
        secret: str,
        sessions: async_sessionmaker[AsyncSession],
        reads: AsyncEngine,
        clock: Callable[[], datetime],
        *,
        idle: timedelta,
        lifetime: timedelta,
    ) -> None:
        self._key = hmac.new(secret.encode(), PURPOSE, hashlib.sha256).digest()
        self.sessions = sessions
        self.reads = reads
        """Lookups read here (on SQLite without taking the write lock)."""
        self.clock = clock
        self.idle = idle
        self.lifetime = lifetime

    async def start(self, staff_id: int, name: str) -> tuple[str, SignedIn]:
        """A new session for the account: the cookie's value, and the session."""
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        row = StaffSession(
            id=_row_id(sid),
            staff_id=staff_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + self.lifetime,
        )
        async with self.sessions() as session:
            await session.execute(delete(StaffSession).where(self._ended(now)))
            session.add(row)
            await session.commit()
        return sign({"sid": sid}, self._key), SignedIn(row.id, staff_id, name, row.csrf_token)

    async def find(self, cookie: str | None, *, touch: bool = True) -> SignedIn | Expired | None:
        """The session `cookie` opens; `Expired` if it has ended by time; None otherwise.
        `touch=False` checks without counting as use (an open stream is not a person)."""
        if not cookie:
            return None
        try:
            sid = str(unsign(cookie, self._key)["sid"])
        except (ValueError, KeyError, TypeError):
            return None
        query = (
            select(
                StaffSession.id,
                StaffSession.staff_id,
                StaffSession.csrf_token,
                StaffSession.last_seen_at,
                StaffSession.expires_at,
                Staff.name,
            )
            .join(Staff, Staff.id == StaffSession.staff_id)
            .where(StaffSession.id == _row_id(sid))
        )
        async with self.reads.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        now = self.clock()
        if row.expires_at <= now or row.last_seen_at + self.idle <= now:
            await self._delete(row.id)
            return Expired()
        if touch and now - row.last_seen_at >= TOUCH_EVERY:
            async with self.sessions() as session:
                await session.execute(
                    update(StaffSession).where(StaffSession.id == row.id).values(last_seen_at=now)
                )
                await session.commit()
        return SignedIn(row.id, row.staff_id, row.name, row.csrf_token)

    async def end(self, signed_in: SignedIn) -> None:
        """Sign out: the session's row goes, so its cookie opens nothing any more."""
        await self._delete(signed_in.session_id)

    async def _delete(self, session_id: str) -> None:
        async with self.sessions() as session:
            await session.execute(delete(StaffSession).where(StaffSession.id == session_id))
            await session.commit()

    def _ended(self, now: datetime) -> ColumnElement[bool]:
        return or_(StaffSession.expires_at <= now, StaffSession.last_seen_at <= now - self.idle)
