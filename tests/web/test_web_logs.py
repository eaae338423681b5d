"""Nothing secret reaches a log: tokens, secrets and customers' emails, over a whole return."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from uvicorn.logging import AccessFormatter
from web_support import (
    JANE_RETURN,
    LABEL_EMAILED,
    TEST_WEB,
    ShopModel,
    Sse,
    services_for_tests,
    serving,
    sse_events,
)

from shopbot.config import Settings
from shopbot.identity import sign_customer
from shopbot.redact import mask_emails, redact_query_tokens
from shopbot.signing_keys import CONVERSATION, identity_secret, stored_secret
from shopbot.web import create_app
from shopbot.web.logs import PAYLOAD_LOGGERS, RedactQueryTokens, log_config, quiet_payload_loggers

EMAIL = "jane.doe@example.com"


def configured_filter() -> logging.Filter:
    """The access logger's filter exactly as `log_config` names it for uvicorn's workers."""
    config = log_config()
    (name,) = config["loggers"]["uvicorn.access"]["filters"]
    module, _, attribute = config["filters"][name]["()"].rpartition(".")
    made: logging.Filter = getattr(importlib.import_module(module), attribute)()
    return made


def access_line(path: str) -> str:
    """One access log line as `shopbot serve` writes it: uvicorn's call, our config."""
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.7:51234", "GET", path, "1.1", 200),
        None,
    )
    assert configured_filter().filter(record)
    formatter = log_config()["formatters"]["access"]
    return AccessFormatter(formatter["fmt"], use_colors=False).format(record)


def test_the_access_log_redacts_query_tokens() -> None:
    line = access_line("/v1/conversations/c1/events?after=3&access_token=eyJjbnYi.MAC-_x&x=1")
    assert "eyJjbnYi" not in line
    assert "/v1/conversations/c1/events?after=3&access_token=[redacted]&x=1" in line
    assert 'GET /v1/conversations/c1/events?access_token=[redacted] HTTP/1.1" 200' in access_line(
        "/v1/conversations/c1/events?access_token=abc.def"
    )


def test_masking_keeps_the_domain() -> None:
    assert (
        mask_emails(f"550 refused <{EMAIL}>, cc a@b.co")
        == "550 refused <j***@example.com>, cc a***@b.co"
    )
    assert (
        redact_query_tokens("/x?token=1&customer_token=2")
        == "/x?token=[redacted]&customer_token=[redacted]"
    )


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """uvicorn's access records, filtered as `log_config` says, into `caplog` (uvicorn's own
    logging configuration is left out: it would replace the test run's handlers)."""
    logger = logging.getLogger("uvicorn.access")
    saved = (logger.level, logger.propagate, logger.handlers[:], logger.filters[:])
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.handlers = [caplog.handler]
    logger.filters = [configured_filter()]
    try:
        yield
    finally:
        logger.level, logger.propagate, logger.handlers, logger.filters = saved


async def follow(client: httpx.AsyncClient, cid: str, token: str, after: int) -> list[Sse]:
    """The stream as an `EventSource` reads it (the token in the query) until the turn ends."""
    got: list[Sse] = []
    query = {"access_token": token, "after": after}
    async with client.stream("GET", f"/v1/conversations/{cid}/events", params=query) as r:
        assert r.status_code == 200
        async for event in sse_events(r):
            got.append(event)
            if event.event == "turn_ended":
                break
    return got


@pytest.mark.usefixtures("access_log")
async def test_a_whole_conversation_logs_no_token_secret_or_email(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_app(settings, model=ShopModel(), services=services_for_tests, web=TEST_WEB)
    secrets = {
        "identity secret": identity_secret(settings),
        "conversation secret": stored_secret(settings.data_dir, CONVERSATION),
    }
    identity = sign_customer("cust_jane", secrets["identity secret"])
    with serving(app, log_config=None, log_level=None) as (url, _server):
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            created = await client.post("/v1/conversations", json={"customer_token": identity})
            assert created.status_code == 201, created.text
            cid, token = created.json()["conversation_id"], created.json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            sent = await client.post(
                f"/v1/conversations/{cid}/messages", json={"text": JANE_RETURN}, headers=auth
            )
            assert sent.status_code == 202
            first = await follow(client, cid, token, after=0)
            view = (await client.get(f"/v1/conversations/{cid}", headers=auth)).json()
            pending = view["pending_confirmation"]
            assert pending["tool"] == "create_return"
            approved = await client.post(
                f"/v1/conversations/{cid}/confirmations/{pending['confirmation_id']}",
                json={"approve": True},
                headers=auth,
            )
            assert approved.status_code == 202
            second = await follow(client, cid, token, after=int(first[-1].id or 0))
            replay = await client.post("/v1/conversations", json={"customer_token": identity})
            assert replay.status_code == 401
    assert any(LABEL_EMAILED in e.data for e in second)
    assert EMAIL in JANE_RETURN
    assert list((Path(settings.data_dir) / "maildir" / "new").iterdir()), "the label email"

    lines = [
        caplog.handler.format(record)
        for record in caplog.records
        # The test's own client logs the URLs it asks for: the browser's side, not ShopBot's.
        if not (record.name == "httpx" and url in record.getMessage())
    ]
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("/events?access_token=[redacted]" in line for line in access), access
    assert any(r.name.startswith(("shopbot", "tools")) for r in caplog.records), "logs were seen"
    looked_for = {"email": EMAIL, "conversation token": token, "identity token": identity}
    for what, value in (looked_for | secrets).items():
        leaked = [line for line in lines if value in line]
        assert not leaked, f"the {what} is in the log: {leaked[:3]}"


def test_payload_loggers_stay_quiet_under_a_debug_root(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    quiet_payload_loggers()  # what `create_app` does
    for name, level in PAYLOAD_LOGGERS.items():
        assert logging.getLogger(name).getEffectiveLevel() >= level, name
    assert isinstance(configured_filter(), RedactQueryTokens)
