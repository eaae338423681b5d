"""The widget backend's settings: `SHOPBOT_WEB__*` (nested in `Settings.web`).

Every default suits the demo on one machine; a shop sets `cors_origins` to its own site, and
past one machine a `conversation_secret` shared by every machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from shopbot.config import Settings


class WebConfig(BaseModel):
    """Limits, CORS and streaming of `shopbot serve`."""

    cors_origins: list[str] = Field(default_factory=list[str])
    """Origins whose pages may call the API (the shop's site), e.g. `["https://shop.example"]`.
    Empty: same origin only (the demo page)."""
    conversation_secret: SecretStr | None = None
    """Signs conversation tokens, 32 bytes or more. Unset: generated once into
    `<data_dir>/secrets/conversation.secret` (`shopbot.signing_keys`), never derived from the
    identity secret the shop's site holds."""
    staff_token: SecretStr | None = Field(default=None, min_length=16)
    """The machine credential for the staff API (`/v1/staff/...`: every event, the audit log),
    as `Authorization: Bearer <staff_token>`. A signed-in staff member's session opens the
    same routes; with neither, they answer 404 as if absent."""
    staff_session_secret: SecretStr | None = None
    """Signs the staff session cookie and the sign-in form's CSRF cookie, 32 bytes or more.
    Unset: generated once into `<data_dir>/secrets/staff_session.secret`."""
    staff_session_idle_minutes: int = Field(default=12 * 60, ge=5)
    """A staff session left unused this long has ended: sign in again."""
    staff_session_max_hours: int = Field(default=7 * 24, ge=1)
    """A staff session ends this long after sign-in, however active."""
    staff_signin_failures: int = Field(default=5, ge=1)
    """Failed sign-ins allowed per account and per client address in one window; past them
    sign-in answers 429 with Retry-After until the window ends."""
    staff_signin_window_seconds: int = Field(default=15 * 60, ge=60)
    """The window `staff_signin_failures` are counted in."""
    conversation_token_ttl_seconds: int = Field(default=12 * 3600, ge=60)
    """How long a conversation token opens its conversation."""
    conversations_per_ip_per_minute: int = Field(default=10, ge=1)
    """New conversations one client address may start per minute."""
    messages_per_conversation_per_minute: int = Field(default=20, ge=1)
    """Customer messages and confirmation answers one conversation may send per minute."""
    rate_limit_store: Literal["memory", "database"] = "memory"
    """Where per-address counters live: this worker's memory, or the `rate_limits` table
    (shared by every worker; needs its migration)."""
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    """Largest request body accepted; message length is limited by `max_message_chars`."""
    sse_poll_seconds: float = Field(default=5.0, gt=0)
    """A stream re-reads its conversation at least this often, even without a wake-up: the
    bound on the delay when a wake-up is lost (a NOTIFY that failed to send). Every open
    stream reads once per period, so a short one costs a database read per stream."""
    sse_ping_seconds: float = Field(default=15.0, gt=0)
    """Heartbeat comments keep proxies from closing an idle stream."""
    sse_max_seconds: float = Field(default=600.0, gt=0)
    """A stream ends after this long; the client resumes it with Last-Event-ID."""
    sse_retry_ms: int = Field(default=1000, ge=100)
    """The reconnection delay a stream tells the browser to use."""
    tail_seconds: float = Field(default=0.05, gt=0)
    """SQLite: how often a worker looks for events other workers wrote."""
    pool_size: int = Field(default=20, ge=1)
    """Database connections per worker (PostgreSQL): a running turn holds one, a stream
    borrows one per read; requests wait for a free one (workers x pool_size must stay under
    the server's max_connections)."""
    max_running_turns: int | None = Field(default=None, ge=1)
    """Turns one worker runs at once; more queue in the worker, in order. Default 8 on
    PostgreSQL (keep it under `pool_size`, so streams always find a connection) and 4 on
    SQLite, whose single writer only slows down when more turns wait for its lock."""
    forwarded_allow_ips: str = "127.0.0.1"
    """Proxies trusted to set X-Forwarded-For (the client address the limits count)."""
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    """On shutdown, running turns get this long to finish before they are cancelled."""
    demo: bool = True
    """Serve the demo shop page at /demo."""


class _WebEnvironment(BaseSettings):
    """Reads `SHOPBOT_WEB__*` exactly as `Settings` will once `web` is nested there."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPBOT_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )
    web: WebConfig = WebConfig()


def web_config(settings: Settings) -> WebConfig:
    """`settings.web` once it is nested there; until then `SHOPBOT_WEB__*` read directly."""
    nested = getattr(settings, "web", None)
    if isinstance(nested, WebConfig):
        return nested
    return _WebEnvironment().web
