"""Label idempotency keys are unique per return, across reseeds, restored backups and shops.

Issue #18: after `shopbot db seed --reset` a new return got the previous return's label (the
same tracking number emailed again): the key `shopbot-return-<id>-label-1` repeated when
return ids restarted. Keys now carry the return's random `uid`; the reset also clears the
embedded carrier's labels and leaves no conversation proven for a customer who is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from db import (
    Base,
    Confirmation,
    ConfirmationStatus,
    Conversation,
    Return,
    ShippingLabel,
    utcnow,
)
from db.engine import create_engine, session_factory, sync_engine
from db.seed import clear_shop, load_demo_shop
from shopbot.app import open_services
from shopbot.cli import app as cli
from shopbot.config import Settings
from tests.plugin import settings_for
from tools import ToolContext
from tools.carrier import create_sandbox_app, idempotency_key_for_return, sandbox_state
from tools.carrier.store import LabelStore
from tools.create_return import ReturnCreated, create_return
from tools.send_return_label import LabelSent, send_return_label


@dataclass(frozen=True)
class Sent:
    return_id: int
    key: str
    tracking: str


async def return_with_label(settings: Settings, carrier: FastAPI | None = None) -> Sent:
    """Jane returns the jeans of order 482913 and gets her label, through the tools.

    `carrier` None: the embedded sandbox, opened from its files as a new process would."""
    engine = create_engine(settings.db_url)
    sessions = session_factory(engine)
    try:
        async with (
            open_services(settings, sessions, policy=object(), carrier_app=carrier) as services,
            sessions() as session,
        ):
            ctx = ToolContext(session, "conv-1", "cust_jane", settings, utcnow(), services)
            args = {"order_id": "482913", "lines": [1], "reason": "too small"}
            created = await create_return(ctx, create_return.args_model(**args))
            assert isinstance(created, ReturnCreated)
            await session.commit()
            sent = await send_return_label(
                ctx, send_return_label.args_model(return_id=created.return_id)
            )
            assert isinstance(sent, LabelSent)
            label = await session.scalar(
                select(ShippingLabel).where(ShippingLabel.return_id == created.return_id)
            )
            assert label is not None
            await session.commit()
            return Sent(created.return_id, label.idempotency_key, sent.tracking_number)
    finally:
        await engine.dispose()


def reseed(url: str) -> None:
    """What `shopbot db seed --reset` does to the database, and nothing else."""
    engine = sync_engine(url)
    with Session(engine) as session:
        clear_shop(session)
        load_demo_shop(session)
        session.commit()
    engine.dispose()


async def test_a_reused_return_id_never_gets_the_old_label(db_url: str, tmp_path: Path) -> None:
    # The carrier remembers every key, as a real one (or a running ShopBot's sandbox) does.
    carrier = create_sandbox_app()
    settings = settings_for(db_url, tmp_path)

    first = await return_with_label(settings, carrier)
    reseed(db_url)
    second = await return_with_label(settings, carrier)

    if db_url.startswith("sqlite"):  # SQLite reuses the ids of deleted rows
        assert second.return_id == first.return_id
    assert second.key != first.key
    assert second.tracking != first.tracking
    assert len(sandbox_state(carrier).labels) == 2


async def test_seed_reset_clears_the_sandbox_labels_and_unproves_conversations(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(db_url, tmp_path)
    first = await return_with_label(settings)  # the embedded sandbox, labels on disk
    labels = settings.sandbox_carrier_dir / LabelStore.FILENAME
    assert first.tracking in labels.read_text()
    engine = sync_engine(db_url)
    with Session(engine) as session:
        session.add(
            Conversation(
                id="conv-1", customer_id="cust_jane", proven_by="email", proven_order_id="482913"
            )
        )
        session.flush()
        session.add(
            Confirmation(
                id="confirm-1",
                conversation_id="conv-1",
                tool="send_return_label",
                args={"return_id": first.return_id},
                digest="0" * 64,
                summary="Email the label",
                expires_at=utcnow() + timedelta(minutes=15),
            )
        )
        session.commit()

    monkeypatch.setenv("SHOPBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env
    result = CliRunner().invoke(cli, ["db", "seed", "--reset"])
    assert result.exit_code == 0, result.output
    assert "cleared the sandbox carrier's labels" in result.output

    assert json.loads(labels.read_text()) == {"labels": {}, "keys": {}}
    with Session(engine) as session:
        conversation = session.get_one(Conversation, "conv-1")
        proven = (conversation.customer_id, conversation.proven_by, conversation.proven_order_id)
        assert proven == (None, None, None)
        confirmation = session.get_one(Confirmation, "confirm-1")
        assert confirmation.status is ConfirmationStatus.EXPIRED
    engine.dispose()

    second = await return_with_label(settings)
    assert second.tracking != first.tracking
    assert second.key != first.key


def test_two_shops_get_different_keys_for_return_1() -> None:
    keys: list[str] = []
    for _shop in ("north", "south"):
        engine = sa.create_engine("sqlite://")  # foreign keys off: a return alone will do
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add(Return(order_id="1"))
            session.commit()
            first = session.get_one(Return, 1)
            keys.append(idempotency_key_for_return(first.id, first.uid))
        engine.dispose()
    north, south = keys
    assert north.startswith("shopbot-return-1-") and south.startswith("shopbot-return-1-")
    assert north != south


def test_every_return_gets_its_own_uid(db_url: str) -> None:
    engine = sync_engine(db_url)
    with Session(engine) as session:
        uids: list[Any] = list(session.scalars(select(Return.uid)))
    engine.dispose()
    assert uids and len(set(uids)) == len(uids)
    assert all(len(uid) == 32 for uid in uids)
