"""The prompt: a stable part first (role, rules, the whole tool catalogue, format), then the
per-step part (state summary, recent conversation, this turn's steps, the actions allowed now),
and the `Situation` that part tells, typed, for backends that condense it.

The stable part never changes within a deployment, so a local model reuses its evaluated
prefix from step to step and turn to turn. The per-step part is bounded by a character budget:
the oldest conversation lines go first, then old observations are shortened, so a long
conversation degrades gracefully and never overflows the context window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from shopbot.actions import ActionSchema
from shopbot.exemplars import TURN_SO_FAR
from shopbot.models.base import Said, Situation, StepShown
from shopbot.state import ConversationState, LiveConfirmation
from tools.base import Hint

FORMAT = """Answer with exactly one JSON object and nothing else:
{"thought": "<one short sentence>", "action": {"tool": "<tool name>", "args": {...}}}
Use "reply" to talk to the customer; it ends your turn."""


def _catalogue(schema: ActionSchema) -> str:
    lines = ["Tools:"]
    for name in schema.names:
        props: dict[str, Any] = schema.args_models[name].model_json_schema().get("properties", {})
        args = ", ".join(f"{arg}: {_type(spec)}" for arg, spec in props.items())
        description = " ".join(schema.descriptions[name].split())
        lines.append(f"- {name}({args}): {description}")
    return "\n".join(lines)


def _type(spec: dict[str, Any]) -> str:
    if "anyOf" in spec:
        return " | ".join(_type(s) for s in spec["anyOf"])
    if spec.get("type") == "array":
        return f"list[{_type(spec.get('items', {}))}]"
    return str(spec.get("type", "any"))


@dataclass(frozen=True)
class Step:
    """One step of the current turn as the model will see it again."""

    action: str
    outcome: str
    tool: str | None = None
    """The action's tool; None for output that was no action."""


@dataclass(frozen=True)
class Prompt:
    """A step's prompt, and where the conversation stands as it tells it."""

    messages: list[BaseMessage]
    situation: Situation


STEP_CHARS = 200
"""An old step is cut to this many characters when this turn's steps outgrow their budget."""
SHORTENED = " ...(shortened)"


class PromptBuilder:
    def __init__(
        self, schema: ActionSchema, *, instructions: str, budget_chars: int = 12_000
    ) -> None:
        """`instructions`: the desk's role and rules, the prompt's head."""
        self.system = SystemMessage("\n\n".join([instructions.strip(), _catalogue(schema), FORMAT]))
        self.budget_chars = budget_chars
        self.hints: list[Hint] = [t.hint for t in schema.tools.values() if t.hint is not None]
        """The tools' next-step hints, in the desk's order."""

    def build(self, state: ConversationState, steps: list[Step], allowed: frozenset[str]) -> Prompt:
        text, situation = self._per_step(state, steps, allowed)
        return Prompt([self.system, HumanMessage(text)], situation)

    def per_step(self, state: ConversationState, steps: list[Step], allowed: frozenset[str]) -> str:
        return self._per_step(state, steps, allowed)[0]

    def _per_step(
        self, state: ConversationState, steps: list[Step], allowed: frozenset[str]
    ) -> tuple[str, Situation]:
        hint = _next_hint(state, self.hints)
        summary = _summary(state, hint)
        tail = [
            "Allowed now: " + ", ".join(sorted(allowed)),
            "Your next step, as one JSON object:",
        ]
        step_lines = [f"{i}. {s.action}\n   -> {s.outcome}" for i, s in enumerate(steps, 1)]
        budget = self.budget_chars - sum(map(len, [summary, *tail]))
        # Recent steps matter most: shorten older observations before dropping conversation.
        while step_lines and sum(map(len, step_lines)) > budget // 2:
            longest = max(range(len(step_lines)), key=lambda i: len(step_lines[i]))
            if len(step_lines[longest]) <= STEP_CHARS:
                break
            step_lines[longest] = step_lines[longest][:STEP_CHARS] + SHORTENED
        budget -= sum(map(len, step_lines))
        convo: list[str] = []
        said: list[Said] = []
        for line in reversed(state.history):
            text = f"{line.role.value.capitalize()}: {line.text}"
            if budget - len(text) < 0:
                convo.append("(earlier messages omitted)")
                break
            convo.append(text)
            said.append(Said(line.role.value, line.text))
            budget -= len(text)
        parts = [summary, "Conversation:\n" + "\n".join(reversed(convo))]
        if step_lines:
            parts.append(TURN_SO_FAR + "\n" + "\n".join(step_lines))
        shown = [
            _shown(i, s, line) for i, (s, line) in enumerate(zip(steps, step_lines, strict=True), 1)
        ]
        return "\n\n".join([*parts, *tail]), _situation(state, hint, said[::-1], shown)


def _shown(number: int, step: Step, line: str) -> StepShown:
    """A step as its line shows it: what follows the arrow, if a cut left the arrow."""
    head = f"{number}. {step.action}\n   ->"
    return StepShown(step.tool, line[len(head) :].strip() if line.startswith(head) else None)


def _situation(
    state: ConversationState, hint: str | None, said: list[Said], steps: list[StepShown]
) -> Situation:
    conf = state.confirmation
    return Situation(
        verified=state.proven,
        failed_checks=state.failed_verifications,
        approved=_action(conf) if conf is not None and conf.status == "approved" else None,
        hint=hint,
        conversation=tuple(said),
        steps=tuple(steps),
    )


def _action(conf: LiveConfirmation) -> str:
    return json.dumps({"tool": conf.tool, "args": conf.arguments})


def _summary(state: ConversationState, hint: str | None) -> str:
    if state.proven:
        who = f"verified ({state.customer_name or 'customer'}, by {state.proven_by})"
    else:
        who = f"NOT verified (failed attempts: {state.failed_verifications})"
    lines = [f"State: customer {who}."]
    if state.mentioned_order_ids:
        lines.append("Order numbers the customer wrote: " + ", ".join(state.mentioned_order_ids))
    if state.mentioned_emails:
        lines.append("Emails the customer wrote: " + ", ".join(state.mentioned_emails))
    for order_id, numbers in state.named_items().items():
        order = state.own_orders[order_id]
        named = ", ".join(f"line {n} ({order.lines[n].name})" for n in numbers)
        lines.append(f"Items the customer named in order {order_id}: {named}")
    conf = state.confirmation
    if conf is not None:
        lines.append(f"Confirmation {conf.status}: {conf.summary} = {_action(conf)}")
    if hint is not None:
        lines.append(f"Hint: {hint}")
    return "\n".join(lines)


def _next_hint(state: ConversationState, hints: list[Hint]) -> str | None:
    """What the state says is missing; small models follow a hint better than the rules."""
    conf = state.confirmation
    if conf is not None and conf.status == "approved":
        return f"the customer approved: call {conf.tool} with exactly these args now."
    if conf is not None:  # pending: the customer's answer comes first
        return None
    # A tool's hint is its own step (an identity check before anyone is proven, what its
    # report says next after it): at most one speaks at a time.
    return next((said for hint in hints if (said := hint(state)) is not None), None)
