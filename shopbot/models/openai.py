"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp's server) through
langchain-openai, with native tool calling.

Each step offers the model only the actions the guard could allow now, as strict tools, and
requires a call (`tool_choice="required"`); a lone allowed action is named outright, which
every server constrains. The call is the step (`ToolCall`: its name, its arguments, the
model's text as the thought); plain text is `RawText`, a parse failure the model reads.

`tool_choice="step"` is for servers that constrain only a named tool (llama-cpp-python's
server answers `"required"` with a 500): one tool, `step`, whose arguments are the whole step
schema restricted to the allowed actions, is offered and named, so the server's grammar
admits any allowed action and nothing else.

`stream` hands out the call's arguments as the server sends them (a reply's text read from
them as it grows), so a reply shows while it is written; the call comes last, its arguments
the text the server sent, for gate 1 to decode. Transport failures are one `ModelError`
line; `check()` probes the endpoint at start-up.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncGenerator
from typing import Any, Literal

import httpx
import openai
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.runnables import Runnable

from shopbot.errors import ConfigError, ModelError
from shopbot.models.base import (
    ModelRequest,
    ModelStep,
    RawText,
    StepDelta,
    ToolCall,
    action_args,
    only,
    read_step,
    step_of,
)
from shopbot.streaming import ReplyDraft

__all__ = ["STEP_TOOL", "OpenAIModel", "ToolChoice", "count_usage", "step_tool", "tools_for"]

ToolChoice = Literal["required", "step"]
STEP_TOOL = "step"
_DROPPED = ("maxLength", "title", "discriminator")


def _portable(node: Any) -> Any:
    # The parser checks patterns and lengths afterwards; llama.cpp's server cannot build a
    # grammar from patterns with escapes (`\s`) or from long length bounds (it dies), so those
    # go; OpenAI's strict mode wants `anyOf` where pydantic writes `oneOf`.
    if isinstance(node, list):
        return [_portable(v) for v in node]  # pyright: ignore[reportUnknownVariableType]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():  # pyright: ignore[reportUnknownVariableType]
        if key in _DROPPED or (key == "pattern" and "\\" in str(value)):
            continue
        out["anyOf" if key == "oneOf" else str(key)] = _portable(value)
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for value in node.values():  # pyright: ignore[reportUnknownVariableType]
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:  # pyright: ignore[reportUnknownVariableType]
            _refs(value, found)


def _with_defs(root: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """`root` plus the definitions it reaches, so nested `$ref`s still resolve."""
    needed: set[str] = set()
    _refs(root, needed)
    seen: set[str] = set()
    while needed - seen:
        name = (needed - seen).pop()
        seen.add(name)
        _refs(defs.get(name, {}), needed)
    if seen:
        root = root | {"$defs": {n: defs[n] for n in sorted(seen) if n in defs}}
    return root


def _schema(request: ModelRequest) -> dict[str, Any]:
    """The step schema, portable, with the arguments the guard allows only known values for
    (an identity check's: what the customer typed) restricted to them, as the local backend
    does; the guard insists on them anyway. Other known values only guide a small model."""
    schema: dict[str, Any] = _portable(copy.deepcopy(request.schema))
    members = action_args(schema)
    for tool, known in request.known.items():
        if known.binding and tool in members:
            args = members[tool][1]
            for field, values in known.values.items():
                if values:
                    args["properties"][field] = only(args["properties"][field], values)
    return schema


def tools_for(request: ModelRequest) -> list[dict[str, Any]]:
    """One OpenAI function per allowed action; its parameters are the action's arguments."""
    schema = _schema(request)
    defs: dict[str, Any] = schema.get("$defs", {})
    tools: list[dict[str, Any]] = []
    for member in defs.values():
        props = member.get("properties", {})
        name = props.get("tool", {}).get("const")
        if name not in request.allowed or "args" not in props:
            continue
        args = props["args"]
        target = defs.get(str(args.get("$ref", "")).rsplit("/", 1)[-1], args)
        parameters = {k: v for k, v in target.items() if k != "description"}
        function = {
            "name": name,
            "description": target.get("description", f"Propose the `{name}` action."),
            "parameters": _with_defs(parameters, defs),
        }
        tools.append({"type": "function", "function": function})
    return sorted(tools, key=lambda t: t["function"]["name"])


def step_tool(request: ModelRequest) -> dict[str, Any]:
    """The single `step` function: its arguments are the whole step restricted to `allowed`."""
    function = {
        "name": STEP_TOOL,
        "description": "Propose your next step: one of the actions allowed now.",
        "parameters": _schema(request),
    }
    return {"type": "function", "function": function}


def _text(message: AIMessage) -> str:
    return message.text if isinstance(message.content, list) else str(message.content)


def _opening(name: str | None) -> str:
    """The start of a named call written as step JSON, for the audit log's raw output."""
    return f'{{"action": {{"tool": {json.dumps(name)}, "args": '


def to_step(message: AIMessage) -> ModelStep:
    """The step: the model's first tool call (its text the thought), or its text, no step."""
    text = _text(message)
    if message.tool_calls:
        call = message.tool_calls[0]
        if call["name"] == STEP_TOOL:  # its arguments are the whole step
            return step_of(call["args"], json.dumps(call["args"]))
        return ToolCall(call["name"], call["args"], text.strip())
    if message.invalid_tool_calls:
        bad = message.invalid_tool_calls[0]
        name, args = bad.get("name"), bad.get("args") or ""
        if name == STEP_TOOL:
            return read_step(args)
        raw = _opening(name) + args + "}}"
        # Arguments that are not JSON: gate 1 says where, and the model sees it.
        return ToolCall(name, args, raw=raw) if name is not None else RawText(raw)
    return RawText(text)


def count_usage(request: ModelRequest, message: AIMessage) -> None:
    """The server's token counts into `request.usage`, when it reported them."""
    usage = message.usage_metadata
    if usage is not None:
        request.usage.input_tokens = usage["input_tokens"]
        request.usage.output_tokens = usage["output_tokens"]


class OpenAIModel:
    """A chat model behind an OpenAI-compatible `/v1` endpoint."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str,
        model: str,
        *,
        tool_choice: ToolChoice = "required",
        temperature: float | None = 0.0,
        max_tokens: int | None = 1024,
        timeout: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        try:
            from langchain_openai import ChatOpenAI
        except ImportError as exc:
            raise ConfigError(
                "langchain-openai is not installed: pip install -e '.[openai]'"
            ) from exc

        self.base_url = base_url or "https://api.openai.com/v1"
        self.model = model
        self.tool_choice: ToolChoice = tool_choice
        # Own clients rather than langchain-openai's process-wide cached ones, whose pooled
        # connections outlive the event loop that opened them.
        self._http = httpx.Client(timeout=timeout)
        self._ahttp = httpx.AsyncClient(timeout=timeout)
        self.llm = ChatOpenAI(
            base_url=self.base_url,
            http_client=self._http,
            http_async_client=self._ahttp,
            api_key=api_key,  # type: ignore[arg-type]  # pydantic coerces to SecretStr
            model=model,
            temperature=temperature,
            max_completion_tokens=max_tokens,
            timeout=timeout,
            max_retries=max_retries,
            stream_usage=True,  # a streamed step's token counts, for the traces
            # Servers that only constrain a named tool (llama.cpp's) predate
            # `max_completion_tokens` and ignore it; they read `max_tokens`.
            extra_body={"max_tokens": max_tokens} if tool_choice == "step" else None,
        )

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    async def complete(self, request: ModelRequest) -> ModelStep:
        bound, choice = self._bind(request)
        try:
            message = await bound.ainvoke(request.messages)
        except openai.OpenAIError as exc:
            raise self._failed(exc, choice) from exc
        count_usage(request, message)
        return to_step(message)

    async def stream(self, request: ModelRequest) -> AsyncGenerator[StepDelta | ModelStep]:
        """The step as the server streams it: the tool call's arguments as they arrive, then
        the call. The `step` tool's arguments are a whole step; a named tool's are read for a
        reply's `message` (`ReplyDraft.of_call`). The audit's raw output of a named call is
        `{"action": {"tool": NAME, "args": ...}, "thought": ...}` as it was sent."""
        bound, choice = self._bind(request)
        whole: AIMessageChunk | None = None
        name: str | None = None
        draft, written, args = ReplyDraft(), list[str](), list[str]()
        try:
            async for chunk in bound.astream(request.messages):
                if not isinstance(chunk, AIMessageChunk):
                    continue
                whole = chunk if whole is None else whole + chunk
                for call in chunk.tool_call_chunks:
                    if call.get("index") not in (None, 0):
                        continue  # one action per step: the first call is the step
                    if name is None and (named := call.get("name")):
                        name = named
                        if name != STEP_TOOL:
                            draft = ReplyDraft.of_call(name)
                            written.append(_opening(name))
                            yield StepDelta(written[-1])
                    if name is not None and (piece := call.get("args")):
                        written.append(piece)
                        args.append(piece)
                        yield StepDelta(piece, draft.feed(piece))
        except openai.OpenAIError as exc:
            raise self._failed(exc, choice) from exc
        if whole is None:
            raise ModelError(f"the model at {self.base_url} sent an empty stream")
        count_usage(request, whole)
        if name is None:
            yield to_step(whole)
        elif name == STEP_TOOL:
            yield read_step("".join(args))
        else:
            thought = _text(whole).strip()
            ending = f'{"" if args else "{}"}}}, "thought": {json.dumps(thought)}}}'
            yield ToolCall(name, "".join(args) or "{}", thought, "".join(written) + ending)

    def _bind(self, request: ModelRequest) -> tuple[Runnable[Any, AIMessage], Any]:
        if len(request.allowed) == 1 or self.tool_choice == "required":
            tools = tools_for(request)
            only = [t["function"]["name"] for t in tools]
            choice: Any = only[0] if len(only) == 1 else "required"
        else:
            tools, choice = [step_tool(request)], STEP_TOOL
        return self.llm.bind_tools(tools, tool_choice=choice, strict=True), choice

    def _failed(self, exc: openai.OpenAIError, choice: Any) -> ModelError:
        mapped = self._mapped(exc)
        if isinstance(exc, openai.InternalServerError) and choice == "required":
            hint = " (a server that cannot require a tool call needs tool_choice='step')"
            return ModelError(str(mapped) + hint)
        return mapped

    def check(self) -> None:
        """Probe `GET /models`: an unreachable endpoint or a rejected key is one clear line."""
        try:
            self.llm.root_client.with_options(max_retries=0, timeout=10.0).models.list()
        except openai.OpenAIError as exc:
            raise self._mapped(exc) from exc

    async def acheck(self) -> None:
        """`check()` without blocking the event loop."""
        try:
            client = self.llm.root_async_client.with_options(max_retries=0, timeout=10.0)
            await client.models.list()
        except openai.OpenAIError as exc:
            raise self._mapped(exc) from exc

    async def aclose(self) -> None:
        """Close the HTTP connections (the model is unusable afterwards)."""
        self._http.close()
        await self._ahttp.aclose()

    def _mapped(self, exc: openai.OpenAIError) -> ModelError:
        url = self.base_url
        if isinstance(exc, openai.APITimeoutError):
            return ModelError(f"the model at {url} did not answer in time")
        if isinstance(exc, openai.APIConnectionError):
            return ModelError(f"cannot reach the model at {url}")
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return ModelError(f"the model endpoint at {url} rejected the API key")
        if isinstance(exc, openai.NotFoundError):
            return ModelError(f"no such model or path at {url} (model {self.model!r})")
        if isinstance(exc, openai.RateLimitError):
            return ModelError(f"the model endpoint at {url} is rate limiting us")
        if isinstance(exc, openai.APIStatusError):
            return ModelError(
                f"the model endpoint at {url} answered {exc.status_code}: {_first_line(exc)}"
            )
        return ModelError(f"bad response from the model at {url}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__
