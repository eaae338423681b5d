"""No default secret: generated once into the data dir, weak ones refused off loopback."""

from __future__ import annotations

import logging
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from web_support import TEST_WEB, ShopModel, create_conversation, services_for_tests

from shopbot.config import Settings
from shopbot.errors import ConfigError
from shopbot.identity import sign_customer
from shopbot.signing_keys import (
    CONVERSATION,
    IDENTITY,
    check_secret,
    identity_secret,
    is_loopback,
    stored_secret,
)
from shopbot.web import create_app
from shopbot.web import server as web_server
from shopbot.web.app import SETTINGS_ENV
from shopbot.web.tokens import ConversationTokens
from tests.plugin import settings_for

STRONG = "k" * 32


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_missing_secret_is_generated_once_for_its_owner_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shopbot.signing_keys")
    first = stored_secret(tmp_path, IDENTITY)
    path = tmp_path / "secrets" / "identity.secret"
    assert len(first.encode()) >= 32
    assert path.read_text().strip() == first
    assert mode_of(path) == 0o600
    assert mode_of(path.parent) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["identity.secret"], "no temporary left"
    (said,) = [r.getMessage() for r in caplog.records]
    assert "SHOPBOT_IDENTITY_SECRET" in said
    assert str(path) in said
    assert first not in said
    assert stored_secret(tmp_path, IDENTITY) == first
    assert len(caplog.records) == 1, "later runs reuse it quietly"


def test_an_existing_secret_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "conversation.secret"
    path.parent.mkdir()
    path.write_text(STRONG + "\n")
    path.chmod(0o600)
    assert stored_secret(tmp_path, CONVERSATION) == STRONG
    assert path.read_text() == STRONG + "\n"


def test_workers_starting_together_agree_on_one_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shopbot.signing_keys")

    def start(_worker: int) -> str:
        return stored_secret(tmp_path, IDENTITY)

    with ThreadPoolExecutor(8) as pool:
        found = set(pool.map(start, range(16)))
    assert len(found) == 1
    assert len(caplog.records) == 1


def test_an_emptied_secret_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "identity.secret").write_text("\n")
    with pytest.raises(ConfigError, match=r"identity\.secret is empty"):
        stored_secret(tmp_path, IDENTITY)


async def test_with_no_configuration_the_app_uses_two_generated_secrets(
    settings: Settings,
) -> None:
    assert settings.identity_secret is None
    assert TEST_WEB.conversation_secret is None
    app = create_app(settings, model=ShopModel(), services=services_for_tests, web=TEST_WEB)
    stored = settings.data_dir / "secrets"
    identity = (stored / "identity.secret").read_text().strip()
    conversation = (stored / "conversation.secret").read_text().strip()
    assert identity != conversation
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as client,
    ):
        assert identity_secret(app.state.backend.settings) == identity  # assembled at start-up
        signed_in = {"customer_token": sign_customer("cust_jane", identity)}
        assert (await client.post("/v1/conversations", json=signed_in)).status_code == 201
        cid, _ = await create_conversation(client)
        # Whoever holds the identity secret (the shop's site) cannot open conversations.
        forged = ConversationTokens(identity, 3600).issue(cid).token
        opened = await client.get(
            f"/v1/conversations/{cid}", headers={"Authorization": f"Bearer {forged}"}
        )
        assert opened.status_code == 401
        placeholder = {"customer_token": sign_customer("cust_jane", "change-me-in-production")}
        assert (await client.post("/v1/conversations", json=placeholder)).status_code == 401


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("change-me-in-production", "is a placeholder"),
        ("change-me-" + "x" * 40, "is a placeholder"),
        ("s3cret", "is shorter than 32 bytes"),
        ("", "is shorter than 32 bytes"),
        ("k" * 31, "is shorter than 32 bytes"),
    ],
)
def test_a_weak_secret_is_refused_off_loopback(value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_secret(IDENTITY, value, host="0.0.0.0")
    message = str(refused.value)
    assert message.startswith(f"SHOPBOT_IDENTITY_SECRET {problem}")
    assert "\n" not in message
    if value:
        assert value not in message


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "[::1]", "127.0.0.2"])
def test_a_weak_secret_is_only_warned_about_on_loopback(
    host: str, caplog: pytest.LogCaptureFixture
) -> None:
    check_secret(CONVERSATION, "s3cret", host=host)
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert "SHOPBOT_WEB__CONVERSATION_SECRET is shorter than 32 bytes" in warning.getMessage()
    assert "s3cret" not in warning.getMessage()


def test_a_strong_secret_passes_anywhere(caplog: pytest.LogCaptureFixture) -> None:
    check_secret(IDENTITY, STRONG, host="0.0.0.0")
    check_secret(IDENTITY, STRONG, host="127.0.0.1")
    assert caplog.records == []


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "shop.example", "10.1.2.3"])
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.fixture
def uvicorn_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`serve` up to the point where uvicorn would start: what it was asked to run."""
    ran: list[dict[str, Any]] = []

    def run(_app: str, **options: Any) -> None:
        ran.append(options)

    monkeypatch.setattr(web_server.uvicorn, "run", run)
    monkeypatch.setenv(SETTINGS_ENV, "")  # restored afterwards: serve sets it
    monkeypatch.delenv("SHOPBOT_WEB__CONVERSATION_SECRET", raising=False)
    return ran


@pytest.fixture
def plain_settings(tmp_path: Path) -> Settings:
    """Settings as `shopbot serve` reads them with nothing set (serve opens no database)."""
    return settings_for(f"sqlite:///{tmp_path / 'shop.db'}", tmp_path)


def test_serve_refuses_a_weak_secret_off_loopback(
    plain_settings: Settings, uvicorn_runs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = plain_settings
    weak = settings.model_copy(update={"identity_secret": SecretStr("change-me-in-production")})
    with pytest.raises(ConfigError, match="SHOPBOT_IDENTITY_SECRET is a placeholder"):
        web_server.serve(weak, host="0.0.0.0")
    monkeypatch.setenv("SHOPBOT_WEB__CONVERSATION_SECRET", "short")
    with pytest.raises(ConfigError, match="SHOPBOT_WEB__CONVERSATION_SECRET is shorter"):
        web_server.serve(settings, host="0.0.0.0")
    assert uvicorn_runs == []
    web_server.serve(weak, host="127.0.0.1")
    assert len(uvicorn_runs) == 1


def test_serve_with_no_configuration_starts_and_redacts_its_access_log(
    plain_settings: Settings, uvicorn_runs: list[dict[str, Any]]
) -> None:
    web_server.serve(plain_settings, host="0.0.0.0")
    (ran,) = uvicorn_runs
    access = ran["log_config"]["loggers"]["uvicorn.access"]
    assert access["filters"] == ["redact_query_tokens"]
    assert os.environ[SETTINGS_ENV]
