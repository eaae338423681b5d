"""Assembling ShopBot at the edge: settings -> database, model, tools -> an `Agent`.

Interfaces (cli, tui, web) and tests call these; the loop itself never chooses a backend.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db import Conversation, Customer
from db.engine import create_engine, session_factory
from shopbot.actions import ActionSchema
from shopbot.config import Settings
from shopbot.errors import ConfigError
from shopbot.guard import Guard
from shopbot.identity import InvalidIdentity, verify_customer
from shopbot.loop import Agent
from shopbot.models.base import ChatModel
from tools import REGISTRY, TOOLS


def build_agent(
    settings: Settings,
    model: ChatModel,
    sessions: async_sessionmaker[AsyncSession],
    services: dict[str, Any] | None = None,
) -> Agent:
    return Agent(
        sessions=sessions,
        model=model,
        schema=ActionSchema(TOOLS),
        guard=Guard(REGISTRY, settings.policy),
        settings=settings,
        services=services or {},
    )


def open_database(settings: Settings) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.db_url)
    return engine, session_factory(engine)


def build_model(settings: Settings, *, script: list[Any] | None = None) -> ChatModel:
    """The chat model named by settings; failures are one `ConfigError` line."""
    if settings.model == "scripted":
        from shopbot.models.scripted import ScriptedModel

        return ScriptedModel(script or [])
    if settings.model == "local":
        from shopbot.models.local import LocalModel

        return LocalModel(settings.model_path, generation=settings.generation)
    raise ConfigError(
        f"model {settings.model!r} is not available yet in this build; "
        "use --model scripted with --script PATH"
    )


async def start_conversation(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    channel: str = "cli",
    customer_token: str | None = None,
) -> str:
    """A new conversation; a token signed by the shop's site proves the customer up front."""
    conversation = Conversation(id=str(uuid.uuid4()), channel=channel)
    async with sessions() as session:
        if customer_token is not None:
            customer_id = verify_customer(
                customer_token, settings.identity_secret.get_secret_value()
            )
            if await session.get(Customer, customer_id) is None:
                raise InvalidIdentity("The signed customer does not exist.")
            conversation.customer_id, conversation.proven_by = customer_id, "token"
        session.add(conversation)
        await session.commit()
    return conversation.id
