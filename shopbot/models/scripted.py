"""The scripted model: replays fixed outputs, records every request, and fails loudly.

Like openai-agents' test model: it raises `ScriptError` when the script runs out, and
`assert_complete()` fails when outputs are left over. Replay tests and demos use it.
It streams too, a word at a time, so scripted runs take the same path through the loop as
the real backends and the interfaces show a reply being written.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from shopbot.errors import ScriptError
from shopbot.models.base import ModelRequest

Output = str | dict[str, Any] | Callable[[ModelRequest], str]
"""Raw text (possibly malformed on purpose), a step as a dict, or a function of the request."""

_WORDS = re.compile(r"\s*\S+|\s+")


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

    async def complete(self, request: ModelRequest) -> str:
        index = len(self.calls)
        self.calls.append(request)
        if index >= len(self.outputs):
            raise ScriptError(f"scripted model ran out of outputs after {index} calls")
        output = self.outputs[index]
        if callable(output):
            return output(request)
        return output if isinstance(output, str) else json.dumps(output)

    async def stream(self, request: ModelRequest) -> AsyncGenerator[str]:
        for piece in _WORDS.findall(await self.complete(request)):
            yield piece

    def assert_complete(self) -> None:
        if self.remaining:
            raise ScriptError(f"scripted model has {self.remaining} unused outputs")
