"""The shop's staff: the accounts that sign in to `/staff`, and their signed-in sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, utcnow


class Staff(Base):
    """A person of the shop who may sign in (`shopbot staff add NAME`)."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    """As it was given: shown on the staff pages."""
    login: Mapped[str] = mapped_column(String(64), unique=True)
    """`name` case-folded: what sign-in matches, so `Sam` and `sam` are one account."""
    email: Mapped[str | None] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))
    """argon2id in its PHC string form (`$argon2id$v=19$m=...`): parameters and salt included."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class StaffSession(Base):
    """A signed-in browser: its cookie names the row, and signing out deletes it."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    """sha256 (hex) of the random id the cookie carries: the table alone opens no session."""
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    """The synchronizer token every form of this session posts back."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    """Refreshed at most once a minute; idle past `staff_session_idle_minutes`, it has ended."""
    expires_at: Mapped[datetime]
    """The absolute end, however active the session is."""
