"""The hostile model: a chat model that proposes whatever it likes.

At each step it writes a random step: any tool (one the guard offers now, any of the desk's,
or one that does not exist) with any arguments (drawn from every customer and order of the
shop, or of the wrong type, huge, nested, with NUL characters or lone surrogates), or output
that is not an action at all (prose, broken or truncated JSON, `"action": null`, nesting
deeper than the JSON decoder allows, an integer too long for `int()`). It records every
request, so the property can check what the model was shown.
"""

from __future__ import annotations

import json
import random
from typing import Any

from pydantic import BaseModel

from shopbot.actions import ESCALATE, REPLY
from shopbot.hostile.draws import NUL, SURROGATE, Pools
from shopbot.models.base import ModelRequest, ModelStep, read_step

UNKNOWN_TOOLS = ["delete_everything", "refund", "lookup_customer", "", "REPLY", "create_return "]


class HostileModel:
    """A `ChatModel` that proposes random, hostile steps; never runs out."""

    def __init__(
        self,
        rng: random.Random,
        pools: Pools,
        args_models: dict[str, type[BaseModel]] | None = None,
    ) -> None:
        self.rng = rng
        self.pools = pools
        self.args_models = args_models or {}
        """The desk's tools and their arguments (the agent's `schema.args_models`)."""
        self.requests: list[ModelRequest] = []
        self.proposed: dict[str, list[dict[str, Any]]] = {}
        """The steps it proposed, by conversation: it proposes them again, as they were or
        changed, after a confirmation or in another turn."""

    @property
    def name(self) -> str:
        return "hostile"

    async def complete(self, request: ModelRequest) -> ModelStep:
        """Its output written as text, read as the local model's is (`read_step`)."""
        return read_step(self._write(request))

    def _write(self, request: ModelRequest) -> str:
        self.requests.append(request)
        roll = self.rng.random()
        if roll < 0.85:
            step = self._step(request)
            self.proposed.setdefault(request.conversation_id, []).append(step)
            return json.dumps(step, ensure_ascii=self.rng.random() < 0.5)
        if roll < 0.93:
            return self._broken()
        return self._odd_step()

    def _step(self, request: ModelRequest) -> dict[str, Any]:
        rng = self.rng
        earlier = self.proposed.get(request.conversation_id, [])
        if earlier and rng.random() < 0.35:
            # Most often what it last proposed of a tool now offered: what was just confirmed.
            offered = [s for s in earlier if s["action"]["tool"] in request.allowed - {REPLY}]
            pick = offered[-1] if offered and rng.random() < 0.6 else rng.choice(earlier)
            step = json.loads(json.dumps(pick))
            args = step["action"]["args"]
            if args and rng.random() < 0.3:  # the same action with one argument changed
                name = rng.choice(sorted(args))
                args[name] = self._value(name, request.hints, step["action"]["tool"])
            return step
        roll = rng.random()
        tools = sorted(request.allowed - {REPLY, ESCALATE})
        if roll < 0.6 and tools:  # a tool offered now: the way deeper into the desk
            tool = rng.choice(tools)
        elif roll < 0.7:
            tool = rng.choice([REPLY, ESCALATE])
        elif roll < 0.93:
            tool = rng.choice(sorted(self.args_models))
        else:
            tool = rng.choice(UNKNOWN_TOOLS)
        step: dict[str, Any] = {"action": {"tool": tool, "args": self._args(tool, request)}}
        if rng.random() < 0.5:
            step["thought"] = self.pools.text(rng)
        return step

    def _args(self, tool: str, request: ModelRequest) -> dict[str, Any]:
        rng, hints = self.rng, request.hints
        model = self.args_models.get(tool)
        names = list(model.model_fields) if model else ["order_id", "message"]
        args: dict[str, Any] = {}
        for name in names:
            if rng.random() < 0.03:
                continue  # a required argument left out
            args[name] = (
                self.pools.odd(rng) if rng.random() < 0.04 else self._value(name, hints, tool)
            )
        if rng.random() < 0.04:
            args[rng.choice(["junk", "customer_id", "confirmed", "order_id"])] = self.pools.odd(rng)
        return args

    def _value(self, name: str, hints: dict[str, list[str]], tool: str) -> Any:
        rng, pools = self.rng, self.pools
        match name:
            case "order_id":
                return pools.order_id(rng, hints.get("order_id", []))
            case "email":
                return pools.email(rng, hints.get("email", []))
            case "lines":
                return pools.lines(rng, hints.get("lines", []))
            case "return_id":
                return pools.return_id(rng)
            case "citations":
                known = [*hints.get("citation", []), "returns#window", "made-up#anchor"]
                return [rng.choice(known) for _ in range(rng.randint(0, 2))]
            case "first_name" | "last_name" | "zip":
                person = rng.choice(pools.shop.people)
                return str(getattr(person, name))
            case _:
                longest = 600 if tool in (REPLY, ESCALATE) else 80
                return pools.text(rng, longest)

    def _broken(self) -> str:
        """Output that is not one JSON action."""
        rng = self.rng
        whole = json.dumps({"action": {"tool": "reply", "args": {"message": "hi"}}})
        return rng.choice(
            [
                "I'll look that up for you!",
                whole[: rng.randint(1, len(whole) - 1)],
                f"```json\n{whole}\n```",
                whole.replace('"', "'"),
                "{" * 3 + "}" * 2,
                f"{whole}{whole}",
                "",
                NUL,
                SURROGATE + whole,
            ]
        )

    def _odd_step(self) -> str:
        """JSON shaped to break a parser or a database rather than to fail validation."""
        rng = self.rng
        deep = rng.choice([50, 5000, 100_000])
        return rng.choice(
            [
                '{"action": null}',
                '{"action": "reply"}',
                '{"action": []}',
                '{"action": {"tool": null, "args": null}}',
                '{"action": {"tool": "reply", "args": {"message": "' + "9" * 5000 + '"}}}',
                '{"action": {"tool": "send_return_label", "args": {"return_id": '
                + "9" * rng.choice([12, 30, 5000])
                + "}}}",
                '{"thought": ' + "[" * deep + "]" * deep + ', "action": {"tool": "reply"}}',
                '{"action": {"tool": "escalate", "args": {"reason": "help\\u0000me"}}}',
                '{"action": {"tool": "reply", "args": {"message": "\\ud800 hi"}}}',
                '{"thought": "\\u0000", "action": {"tool": "reply", "args": {"message": "x"}}}',
                '{"action": {"tool": "create_return", "args": {"order_id": "48\\u00002913", '
                '"lines": [1], "reason": "r"}}}',
                '{"action": {"tool": "reply", "args": {"message": "a"}, "\\ud800": 1}}',
            ]
        )
