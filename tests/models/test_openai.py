"""The OpenAI-compatible backend, against a real llama.cpp server on loopback (no mocks)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from shopbot.actions import Action, ActionSchema, ParseFailure
from shopbot.errors import ModelError
from shopbot.models.base import ModelRequest, RawText, StepDelta, ToolCall, Usage
from shopbot.models.local import packaged_model_path
from shopbot.models.openai import STEP_TOOL, OpenAIModel, ToolChoice, to_step, tools_for
from tests.plugin import known_for
from tools import TOOLS

schema = ActionSchema(TOOLS)
KEY = "test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(allowed: set[str]) -> ModelRequest:
    return ModelRequest(
        messages=[
            SystemMessage("You are ShopBot. Answer with one JSON action."),
            HumanMessage("Where is my order 482913? jane.doe@example.com"),
        ],
        allowed=frozenset(allowed),
        schema=schema.json_schema(allowed),
        hints={"order_id": ["482913"], "email": ["jane.doe@example.com"]},
        known=known_for(allowed, "Where is my order 482913? jane.doe@example.com"),
        conversation_id="c1",
    )


@pytest.fixture
async def models() -> AsyncIterator[Callable[..., OpenAIModel]]:
    """Builds models; closes their connections after the test."""
    built: list[OpenAIModel] = []

    def make(url: str, key: str = KEY, tool_choice: ToolChoice = "required") -> OpenAIModel:
        built.append(OpenAIModel(url, key, "smollm2", tool_choice=tool_choice, max_retries=0))
        return built[-1]

    yield make
    for m in built:
        await m.aclose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server with the packaged GGUF, on a free port."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_model_path()),
        "--chat_format", "chatml-function-calling", "--host", "127.0.0.1",
        "--port", str(port), "--n_ctx", "4096", "--api_key", KEY,
    ]  # fmt: skip
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    log = log_path.open("wb")  # a pipe would fill up with llama.cpp's logs and stall it
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama_cpp.server exited: {tail}")
            try:
                headers = {"Authorization": f"Bearer {KEY}"}
                if httpx.get(f"{url}/models", headers=headers, timeout=2).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not answer /v1/models within 120 s")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_each_allowed_action_becomes_one_tool_with_its_arguments() -> None:
    tools = tools_for(request({"verify_identity", "reply"}))
    assert [t["function"]["name"] for t in tools] == ["reply", "verify_identity"]
    verify = tools[1]["function"]["parameters"]
    assert verify["properties"]["email"] == {"type": "string", "enum": ["jane.doe@example.com"]}
    assert "pattern" not in json.dumps(tools)


def test_a_tool_call_becomes_the_step_the_parser_accepts() -> None:
    call = {"name": "reply", "args": {"message": "Hello!"}, "id": "1", "type": "tool_call"}
    step = to_step(AIMessage("Greet them.", tool_calls=[call]))  # type: ignore[list-item]
    assert step == ToolCall("reply", {"message": "Hello!"}, "Greet them.")
    action = schema.parse(step)
    assert isinstance(action, Action)
    assert (action.tool, action.thought) == ("reply", "Greet them.")
    assert to_step(AIMessage("just prose")) == RawText("just prose")


def test_a_call_the_client_could_not_decode_is_a_failure_the_model_reads() -> None:
    bad = {"name": "lookup_order", "args": '{"order_id": 48', "id": "1", "error": None}
    step = to_step(AIMessage("", invalid_tool_calls=[bad]))  # type: ignore[list-item]
    assert step == ToolCall("lookup_order", '{"order_id": 48', raw=step.raw)
    assert step.raw == '{"action": {"tool": "lookup_order", "args": {"order_id": 48}}'
    failed = schema.parse(step)
    assert isinstance(failed, ParseFailure) and failed.error.startswith("Invalid JSON")
    whole = {"name": STEP_TOOL, "args": '{"action": {"tool": "reply"', "id": "2", "error": None}
    step = to_step(AIMessage("", invalid_tool_calls=[whole]))  # type: ignore[list-item]
    assert step == RawText('{"action": {"tool": "reply"')


async def test_an_unreachable_endpoint_is_one_clear_error(
    models: Callable[..., OpenAIModel],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelError, match=f"^cannot reach the model at {re.escape(url)}$"):
        models(url).check()
    with pytest.raises(ModelError, match=r"^cannot reach the model at"):
        await models(url).complete(request({"reply", "escalate"}))


@pytest.mark.slow
async def test_a_rejected_key_is_one_clear_error(
    server: str, models: Callable[..., OpenAIModel]
) -> None:
    with pytest.raises(ModelError, match=r"rejected the API key$"):
        models(server, key="wrong").check()
    with pytest.raises(ModelError, match=r"rejected the API key$"):
        await models(server, key="wrong").acheck()
    models(server).check()


@pytest.mark.slow
async def test_a_lone_allowed_action_is_named_and_constrained(
    server: str, models: Callable[..., OpenAIModel]
) -> None:
    step = await models(server).complete(request({"verify_identity"}))
    action = schema.parse(step)
    assert isinstance(action, Action), step
    assert action.arguments == {"order_id": "482913", "email": "jane.doe@example.com"}


@pytest.mark.slow
async def test_the_servers_token_counts_are_the_calls_usage(
    server: str, models: Callable[..., OpenAIModel]
) -> None:
    model = models(server)
    asked, streamed = request({"verify_identity"}), request({"verify_identity"})
    await model.complete(asked)
    assert asked.usage.input_tokens is not None and asked.usage.input_tokens > 20
    assert asked.usage.output_tokens is not None and asked.usage.output_tokens > 5
    # The stream asks for usage (`stream_options`; OpenAI, vLLM and Ollama send it), which
    # llama-cpp-python's server accepts and leaves out: uncounted then, never zero.
    assert [piece async for piece in model.stream(streamed)]
    assert streamed.usage == Usage()


@pytest.mark.slow
async def test_step_mode_always_names_an_allowed_action(
    server: str, models: Callable[..., OpenAIModel]
) -> None:
    allowed = {"verify_identity", "reply"}
    step = await models(server, tool_choice="step").complete(request(allowed))
    action = schema.parse(step)
    assert isinstance(action, Action), step
    assert action.tool in allowed


@pytest.mark.slow
async def test_a_server_that_cannot_require_a_tool_call_says_so(
    server: str, models: Callable[..., OpenAIModel]
) -> None:
    with pytest.raises(ModelError, match=r"answered 500.*tool_choice='step'"):
        await models(server).complete(request({"verify_identity", "reply"}))


@pytest.mark.slow
@pytest.mark.parametrize("tool_choice", ["required", "step"])
async def test_a_streamed_step_is_the_step_and_a_reply_shows_while_written(
    server: str, models: Callable[..., OpenAIModel], tool_choice: ToolChoice
) -> None:
    """Only `reply` allowed: the server names it (or `step`), and its message streams."""
    model = models(server, tool_choice=tool_choice)
    ask = request({"reply"})
    *deltas, step = [piece async for piece in model.stream(ask)]
    assert not isinstance(step, StepDelta)
    action = schema.parse(step)
    assert isinstance(action, Action), step
    assert action.tool == "reply"
    shown = [d.reply for d in deltas if isinstance(d, StepDelta) and d.reply]
    assert "".join(shown) == action.arguments["message"]
    assert len(shown) > 1, "the reply arrived in one piece: nothing was streamed"
    assert step.raw.startswith("".join(d.raw for d in deltas if isinstance(d, StepDelta)))
