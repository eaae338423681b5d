"""The embedded llama.cpp model: loads from its PyPI package, always emits a valid, allowed action."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from shopbot.actions import Action, ActionSchema
from shopbot.errors import ConfigError
from shopbot.models.base import KnownArgs, ModelRequest, ModelStep, StepDelta, StreamingChatModel
from shopbot.models.local import MAX_GRAMMAR_STRING, MAX_REPLY, LocalModel, constrain
from tests.plugin import known_for
from tools import TOOLS

schema = ActionSchema(TOOLS)


def test_constrain_restricts_identity_arguments_to_what_the_customer_typed() -> None:
    full = schema.json_schema()
    narrowed = constrain(full, {}, known_for(schema.names, "order 482913, a@b.co"))
    args = narrowed["$defs"]["VerifyIdentityArgs"]["properties"]
    assert args["order_id"]["enum"] == ["482913"]
    assert args["email"]["enum"] == ["a@b.co"]
    assert "thought" not in narrowed["properties"]
    assert narrowed["$defs"]["ReplyArgs"]["properties"]["citations"]["maxItems"] == 0
    cited = constrain(full, {"citation": ["returns#window"]}, {})
    citations = cited["$defs"]["ReplyArgs"]["properties"]["citations"]
    assert citations["items"]["enum"] == ["returns#window"]
    reply = narrowed["$defs"]["ReplyArgs"]["properties"]["message"]
    assert reply["maxLength"] == MAX_REPLY  # a cited answer quotes up to two sentences
    escalation = narrowed["$defs"]["EscalateArgs"]["properties"]["reason"]
    assert escalation["maxLength"] == MAX_GRAMMAR_STRING
    assert "pattern" not in json.dumps(narrowed)
    assert "enum" not in json.dumps(full)  # the original is untouched
    anonymous = constrain(full, {}, known_for(schema.names, "order 482913"))
    anonymous = anonymous["properties"]["action"]["oneOf"]
    assert {"$ref": "#/$defs/VerifyIdentityAction"} not in anonymous
    assert {"$ref": "#/$defs/VerifyIdentityAction"} in narrowed["properties"]["action"]["oneOf"]
    created = constrain(full, {}, {"send_return_label": KnownArgs({"return_id": ["38"]})})
    created = created["$defs"]["SendReturnLabelArgs"]
    assert created["properties"]["return_id"] == {"type": "integer", "enum": [38]}


def test_a_missing_model_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no model file"):
        LocalModel(model_path=tmp_path / "missing.gguf")


@pytest.fixture(scope="module")
def model() -> LocalModel:
    return LocalModel(n_ctx=4096)


def request(text: str, allowed: set[str], cid: str = "c1") -> ModelRequest:
    return ModelRequest(
        messages=[
            SystemMessage("You are ShopBot. Answer with one JSON action."),
            HumanMessage(text),
        ],
        allowed=frozenset(allowed),
        schema=schema.json_schema(allowed),
        hints={"order_id": ["482913"], "email": ["jane.doe@example.com"]},
        known=known_for(allowed, "Where is my order 482913? jane.doe@example.com"),
        conversation_id=cid,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "allowed",
    [{"reply", "escalate"}, {"verify_identity", "reply", "escalate"}, {"lookup_order", "reply"}],
)
async def test_output_always_parses_and_names_an_allowed_tool(
    model: LocalModel, allowed: set[str]
) -> None:
    step = await model.complete(request("Where is my order 482913? jane.doe@example.com", allowed))
    action = schema.parse(step)
    assert isinstance(action, Action), step
    assert action.tool in allowed


@pytest.mark.slow
async def test_a_call_counts_its_whole_prompt_and_each_sampled_token(model: LocalModel) -> None:
    asked = request("Where is my order 482913?", {"reply"}, "usage")
    await model.complete(asked)
    read, written = asked.usage.input_tokens, asked.usage.output_tokens
    assert read is not None and written is not None and read > 10
    # The context holds the prompt and every sampled token but the last, never evaluated.
    assert read + written - 1 == model.llm.n_tokens


@pytest.mark.slow
async def test_interleaved_conversations_keep_their_own_state(model: LocalModel) -> None:
    a1 = await model.complete(request("Hi, order 482913 please", {"reply"}, "a"))
    await model.complete(request("Something else entirely", {"reply"}, "b"))
    a2 = await model.complete(request("Hi, order 482913 please", {"reply"}, "a"))
    assert a1 == a2  # greedy decoding from a restored state gives the same answer


@pytest.mark.slow
async def test_stream_hands_out_pieces_while_decoding_that_join_to_the_step(
    model: LocalModel,
) -> None:
    streaming: StreamingChatModel = model
    assert isinstance(streaming, StreamingChatModel)
    asked = request("Where is my order 482913? jane.doe@example.com", {"verify_identity"}, "s1")
    pieces: list[StepDelta] = []
    decoding: list[bool] = []
    step: ModelStep | None = None
    async for piece in model.stream(asked):
        if not isinstance(piece, StepDelta):
            step = piece  # the whole step, last
            continue
        pieces.append(piece)
        decoding.append(model._busy.locked())
    assert len(pieces) > 1
    assert decoding[0], "the first piece came only after the whole step was decoded"
    assert not model._busy.locked()
    assert step is not None and step.raw == "".join(p.raw for p in pieces)
    action = schema.parse(step)
    assert isinstance(action, Action), pieces
    assert action.arguments == {"order_id": "482913", "email": "jane.doe@example.com"}
    assert await model.complete(asked) == step


@pytest.mark.slow
async def test_a_stream_closed_early_stops_decoding_and_leaves_the_model_usable(
    model: LocalModel,
) -> None:
    talk = request("Hi, I want to return my jeans", {"reply"}, "e1")
    full = await model.complete(talk)
    decoded_in_full = model.llm.n_tokens

    stream = model.stream(replace(talk, conversation_id="e2"))
    await anext(stream)
    await stream.aclose()
    assert not model._busy.locked() and not model._lock.locked()
    assert model.llm.n_tokens < decoded_in_full - 5  # it stopped, it did not finish quietly

    async def consume() -> None:
        async for _ in model.stream(replace(talk, conversation_id="e3")):
            started.set()

    started = asyncio.Event()
    task = asyncio.create_task(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not model._busy.locked()

    # Every conversation left mid-step answers as one that never was interrupted.
    for cid in ("e2", "e3", "e1"):
        assert await model.complete(replace(talk, conversation_id=cid)) == full
