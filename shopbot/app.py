"""Assembling ShopBot at the edge: settings -> database, model, tools -> an `Agent`.

Interfaces (cli, tui, web) and tests call these; the loop itself never chooses a backend.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from db import Conversation, Customer, utcnow
from db.engine import create_engine, session_factory
from shopbot.actions import ActionSchema
from shopbot.config import Settings
from shopbot.errors import ConfigError, ModelError
from shopbot.grounding import check_texts
from shopbot.guard import Guard
from shopbot.identity import InvalidIdentity, spend_identity, verify_customer
from shopbot.loop import Agent
from shopbot.models.base import ChatModel
from shopbot.pii import Minimiser
from shopbot.record import Announcer, StoredListener
from shopbot.signing_keys import identity_secret
from shopbot.tracing import Tracing
from shopbot.turns import MessageRate
from tools import Services
from tools.desk import Desk
from tools.desks import load_desk
from tools.mailer import Dispatcher


def build_agent(
    settings: Settings,
    model: ChatModel,
    sessions: async_sessionmaker[AsyncSession],
    services: Services | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
    message_rate: MessageRate | None = None,
    on_stored: StoredListener | None = None,
    announce: Announcer | None = None,
) -> Agent:
    """The agent of the configured desk (`SHOPBOT_DESK`), whole: the interface's parts are
    passed in here (the web backend's clock, message rate and stream listeners), never set on
    it later."""
    desk = load_desk(settings.desk)
    return Agent(
        instructions=desk.instructions_for(settings),
        sessions=sessions,
        model=model,
        schema=ActionSchema(desk.tools),
        guard=Guard(desk.registry, settings.policy),
        settings=settings,
        pii=Minimiser.of(settings),
        services=services or Services(),
        clock=clock,
        message_rate=message_rate,
        on_stored=on_stored,
        announce=announce,
        check_reply=ungrounded_claims,
        tracing=Tracing.of(settings),
    )


def ungrounded_claims(reply: str, sources: list[dict[str, Any]]) -> list[str]:
    """Audit flags for the policy claims in `reply` that no source of the turn states."""
    grounding = check_texts(reply, [source["text"] for source in sources])
    return [f"ungrounded: {claim.text}" for claim in grounding.unsupported]


@asynccontextmanager
async def open_services(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    *,
    policy: Any = None,
    carrier_app: Any = None,
    carrier_options: dict[str, Any] | None = None,
    outbox: Dispatcher | None = None,
) -> AsyncGenerator[Services]:
    """The outside world the tools reach (`tools.base.Services`): the policy index, the
    carrier's label client, the returns centre, and the outbox dispatcher that the
    interfaces run after each turn. Closed on exit."""
    from tools.carrier import Address, LabelClient, carrier_http_client, create_sandbox_app

    if carrier_app is None and settings.carrier_url is None:
        # The embedded carrier keeps its labels on disk, so a retry after a restart finds them.
        carrier_app = create_sandbox_app(data_dir=settings.sandbox_carrier_dir)
    async with carrier_http_client(settings.carrier_url, sandbox=carrier_app) as http:
        yield Services(
            policy=policy if policy is not None else open_policy_index(settings),
            carrier=LabelClient(http, api_key=settings.carrier_api_key, **(carrier_options or {})),
            returns_address=Address(**settings.returns_centre.model_dump()),
            outbox=outbox or Dispatcher.from_settings(settings, sessions),
        )


def forget_sandbox_labels(settings: Settings) -> bool:
    """Clear the embedded carrier sandbox's labels and keys, when it is the carrier: with the
    shop's returns gone (`shopbot db seed --reset`), so are the labels bought for them. A
    real carrier's labels (`carrier_url` set) are never touched. A process that embeds the
    sandbox holds its own copy: restart it after a reset. True when labels were cleared."""
    from tools.carrier.store import LabelStore

    directory = settings.sandbox_carrier_dir
    if settings.carrier_url is not None or not (directory / LabelStore.FILENAME).exists():
        return False
    LabelStore(directory).clear()
    return True


def open_policy_index(settings: Settings) -> Any:
    """The policy index in the data dir, or on the Chroma server at SHOPBOT_CHROMA_URL."""
    from shopbot.policy import PolicyIndex

    return PolicyIndex.open(settings.data_dir, settings.chroma_url)


def open_database(settings: Settings) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    engine = create_engine(settings.db_url)
    return engine, session_factory(engine)


def build_model(settings: Settings, *, script: list[Any] | None = None) -> ChatModel:
    """The chat model named by settings, for the configured desk; failures (an unknown desk
    too) are one `ConfigError` line."""
    desk = load_desk(settings.desk)
    if settings.model == "scripted":
        from shopbot.models.scripted import ScriptedModel

        return ScriptedModel(script or [])
    if settings.model == "local":
        from shopbot.exemplars import ExemplarLibrary
        from shopbot.models.local import LocalModel

        adapter = adapter_for(settings, desk)
        # The trained student learned its examples; the bare base model needs them shown.
        shown = desk_file(settings.exemplars, desk.exemplars, "SHOPBOT_EXEMPLARS", "exemplars")
        exemplars = ExemplarLibrary.load(shown) if shown and adapter is None else None
        local = LocalModel(
            settings.model_path,
            generation=settings.generation,
            exemplars=exemplars,
            adapter=adapter,
            n_threads=settings.generation.threads,
            merge_dir=settings.merged_models_dir if settings.model_merge else None,
        )
        return with_intents(local, settings)
    from shopbot.models.openai import OpenAIModel

    if not settings.llm_base_url:
        raise ConfigError("SHOPBOT_LLM_BASE_URL is not set: the OpenAI-compatible endpoint to use")
    model = OpenAIModel(
        settings.llm_base_url,
        settings.llm_api_key.get_secret_value(),
        settings.llm_model,
        tool_choice=settings.llm_tool_choice,
    )
    try:
        model.check()
    except ModelError as exc:
        raise ConfigError(str(exc)) from exc
    return model


def prepare_model(settings: Settings) -> Path | None:
    """Make now what the configured model would make on first use: the local student merged
    into its base (`shopbot.models.merge`, cached). The merged file, or None."""
    if settings.model != "local" or not settings.model_merge:
        return None
    adapter = adapter_for(settings, load_desk(settings.desk))
    if adapter is None:
        return None
    from shopbot.models.local import packaged_model_path
    from shopbot.models.merge import merged

    base = settings.model_path or packaged_model_path()
    return merged(base, adapter, settings.merged_models_dir)


def adapter_for(settings: Settings, desk: Desk) -> Path | None:
    """The LoRA adapter over the local model: `SHOPBOT_MODEL_ADAPTER`, else the one trained
    for the desk, only over the packaged base it was trained on."""
    trained = desk.adapter if settings.model_path is None else None
    return desk_file(settings.model_adapter, trained, "SHOPBOT_MODEL_ADAPTER", "adapter")


def desk_file(setting: str | None, own: Path | None, variable: str, what: str) -> Path | None:
    """The file a setting names: unset means the desk's `own` (when it is there), `none`
    means none, else a path that must exist."""
    if setting is None:
        return own if own is not None and own.is_file() else None
    if setting.strip().casefold() == "none":
        return None
    path = Path(setting).expanduser()
    if not path.is_file():
        raise ConfigError(f"{variable}: no {what} file at {path} (a path, or none)")
    return path


def with_intents(model: ChatModel, settings: Settings) -> ChatModel:
    """`model` behind the desk's intents, when it has any (`shopbot.models.rails`)."""
    from shopbot.models.rails import IntentRouter, Rails
    from shopbot.policy.embeddings import MiniLMEmbedding

    own = load_desk(settings.desk).intents
    path = desk_file(settings.intents, own, "SHOPBOT_INTENTS", "intents")
    if path is None:
        return model
    return Rails(model, IntentRouter.load(path, MiniLMEmbedding().embed_batch))


async def start_conversation(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    channel: str = "cli",
    customer_token: str | None = None,
) -> str:
    """A new conversation; a token signed by the shop's site proves the customer up front.

    The token is spent in the transaction that creates the conversation: used once, or
    refused (`shopbot.identity`), and nothing is created."""
    conversation = Conversation(id=str(uuid.uuid4()), channel=channel)
    async with sessions() as session:
        if customer_token is not None:
            identity = verify_customer(customer_token, identity_secret(settings))
            if await session.get(Customer, identity.customer_id) is None:
                raise InvalidIdentity("The signed customer does not exist.")
            await spend_identity(session, identity)
            conversation.customer_id, conversation.proven_by = identity.customer_id, "token"
        session.add(conversation)
        await session.commit()
    return conversation.id
