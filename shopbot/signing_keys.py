"""ShopBot's secrets: configured, or generated on first use and kept in the data dir.

ShopBot ships no default secret: one everybody knows would let anybody sign a customer's
identity, open any conversation or tell which address a stored hash stands for. What each
secret keys:

- `SHOPBOT_IDENTITY_SECRET`: customer identities, signed by the shop's backend
  (`shopbot.identity`); the shop's site and ShopBot share it.
- `SHOPBOT_WEB__CONVERSATION_SECRET`: conversation tokens (`shopbot.web.tokens`), ShopBot's
  alone. It is a secret of its own, not one derived from the identity secret, so whoever
  holds the identity secret (the shop's site) still cannot forge conversation tokens.
- `SHOPBOT_WEB__STAFF_SESSION_SECRET`: the staff session cookie and the sign-in form's CSRF
  cookie (`shopbot.web.sessions`, `shopbot.web.csrf`), ShopBot's alone too.
- `SHOPBOT_PII_SECRET`: the keyed hashes of the email addresses customers typed, kept in the
  audit log instead of the addresses (`shopbot.pii`), ShopBot's alone. Without it, nobody
  holding only the database can tell which address a hash stands for.

Unset, a secret is generated once (`secrets.token_urlsafe`, 32 bytes) into
`<data_dir>/secrets/<name>.secret`: created atomically with mode 0600 (a hard link of a
finished temporary file, so a reader never sees half a secret and an existing file is never
overwritten), announced by one log line that names the file and never the secret, and read
again by later runs and by every worker sharing the data dir. Machines that do not share a
data dir must be given the same secrets explicitly.

A secret given explicitly that is a placeholder or shorter than 32 bytes is refused when
serving off loopback and only warned about on loopback (`check_secret`, called by
`shopbot serve`).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from shopbot.config import Settings
from shopbot.errors import ConfigError

__all__ = [
    "CONVERSATION",
    "IDENTITY",
    "MIN_SECRET_BYTES",
    "PII",
    "STAFF_SESSION",
    "SecretSetting",
    "check_secret",
    "identity_secret",
    "is_loopback",
    "pii_secret",
    "secret_value",
    "stored_secret",
    "with_identity_secret",
]

log = logging.getLogger(__name__)

MIN_SECRET_BYTES = 32
"""Shortest secret accepted off loopback: HMAC-SHA256 keys shorter than its output are weak."""
GENERATED_BYTES = 32
SECRETS_DIR = "secrets"
PLACEHOLDERS = ("change-me", "changeme", "change_me", "replace-me", "your-secret")
"""Fragments that mark a value copied from an example rather than chosen."""


@dataclass(frozen=True)
class SecretSetting:
    """One signing secret: the variable that sets it and the file that keeps a generated one."""

    env: str
    filename: str


IDENTITY = SecretSetting("SHOPBOT_IDENTITY_SECRET", "identity.secret")
CONVERSATION = SecretSetting("SHOPBOT_WEB__CONVERSATION_SECRET", "conversation.secret")
STAFF_SESSION = SecretSetting("SHOPBOT_WEB__STAFF_SESSION_SECRET", "staff_session.secret")
PII = SecretSetting("SHOPBOT_PII_SECRET", "pii.secret")


def secret_value(configured: SecretStr | None, data_dir: Path, setting: SecretSetting) -> str:
    """The configured secret, else the one stored in `data_dir` (generated on first use)."""
    if configured is not None:
        return configured.get_secret_value()
    return stored_secret(data_dir, setting)


def identity_secret(settings: Settings) -> str:
    """The secret customer identities are signed with."""
    return secret_value(settings.identity_secret, settings.data_dir, IDENTITY)


def pii_secret(settings: Settings) -> str:
    """The key of the stored email hashes (`shopbot.pii`)."""
    return secret_value(settings.pii_secret, settings.data_dir, PII)


def with_identity_secret(settings: Settings) -> Settings:
    """`settings` with the identity secret set: resolved once, not read from disk per request."""
    if settings.identity_secret is not None:
        return settings
    value = SecretStr(stored_secret(settings.data_dir, IDENTITY))
    return settings.model_copy(update={"identity_secret": value})


def stored_secret(data_dir: Path, setting: SecretSetting) -> str:
    """The secret kept in `data_dir/secrets/`, generated and stored on first use."""
    path = data_dir / SECRETS_DIR / setting.filename
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        value = secrets.token_urlsafe(GENERATED_BYTES)
        if _create_exclusively(path, value):
            log.info(
                "%s is not set: generated one into %s (owner-only); later runs reuse it",
                setting.env,
                path,
            )
            return value
        # Another process (a worker starting beside this one) created it first: use theirs.
    return _read(path, setting)


def _create_exclusively(path: Path, value: str) -> bool:
    """Write `value` to `path` unless it exists; False when it did. Never a partial file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(value + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def _read(path: Path, setting: SecretSetting) -> str:
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by others: chmod 600 it (it holds %s)", path, setting.env)
    value = path.read_text(encoding="ascii").strip()
    if not value:
        raise ConfigError(f"{path} is empty: delete it to generate {setting.env} anew, or set it")
    return value


def check_secret(setting: SecretSetting, value: str, *, host: str) -> None:
    """Refuse a weak or placeholder secret when serving on `host` off loopback; warn on it."""
    lowered = value.lower()
    if any(fragment in lowered for fragment in PLACEHOLDERS):
        problem = "is a placeholder"
    elif len(value.encode()) < MIN_SECRET_BYTES:
        problem = f"is shorter than {MIN_SECRET_BYTES} bytes"
    else:
        return
    advice = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if is_loopback(host):
        log.warning("%s %s: refused off loopback; make one with %s", setting.env, problem, advice)
        return
    raise ConfigError(
        f"{setting.env} {problem}: refused when serving on {host}; make one with {advice}"
    )


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (`127.0.0.1`, `::1`)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
