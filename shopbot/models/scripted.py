"""The scripted model: replays fixed outputs, records every request, and fails loudly.

Like openai-agents' test model: it raises `ScriptError` when the script runs out, and
`assert_complete()` fails when outputs are left over. Replay tests and demos use it. Its
outputs are step JSON (or deliberately not), read as the local model's are (`read_step`).
It streams too, a word at a time, so scripted runs take the same path through the loop as
the real backends and the interfaces show a reply being written. Having no tokenizer, it
reports an estimate of the tokens each call would cost (`estimated_tokens`, about four
characters a token) in `request.usage`, so traces of scripted runs carry plausible counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from shopbot.errors import ScriptError
from shopbot.models.base import ModelRequest, ModelStep, StepDelta, read_step, read_stream

Output = str | dict[str, Any] | Callable[[ModelRequest], str]
"""Raw text (possibly malformed on purpose), a step as a dict, or a function of the request."""

_WORDS = re.compile(r"\s*\S+|\s+")


def estimated_tokens(text: str) -> int:
    """About four characters a token, rounded up (English in a BPE vocabulary)."""
    return (len(text) + 3) // 4


class ScriptedModel:
    def __init__(self, outputs: Iterable[Output] = ()) -> None:
        self.outputs: list[Output] = list(outputs)
        self.calls: list[ModelRequest] = []

    @property
    def name(self) -> str:
        return "scripted"

    def extend(self, outputs: Iterable[Output]) -> None:
        self.outputs.extend(outputs)

    @property
    def remaining(self) -> int:
        return len(self.outputs) - len(self.calls)

    async def complete(self, request: ModelRequest) -> ModelStep:
        index = len(self.calls)
        self.calls.append(request)
        if index >= len(self.outputs):
            raise ScriptError(f"scripted model ran out of outputs after {index} calls")
        output = self.outputs[index]
        if callable(output):
            text = output(request)
        else:
            text = output if isinstance(output, str) else json.dumps(output)
        request.usage.input_tokens = sum(estimated_tokens(str(m.content)) for m in request.messages)
        request.usage.output_tokens = estimated_tokens(text)
        return read_step(text)

    def stream(self, request: ModelRequest) -> AsyncGenerator[StepDelta | ModelStep]:
        return read_stream(self._words(request))

    async def _words(self, request: ModelRequest) -> AsyncGenerator[str]:
        # From `complete`, so a test's model that overrides it streams what it returns.
        for piece in _WORDS.findall((await self.complete(request)).raw):
            yield piece

    def assert_complete(self) -> None:
        if self.remaining:
            raise ScriptError(f"scripted model has {self.remaining} unused outputs")
