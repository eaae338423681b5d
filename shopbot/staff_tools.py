"""Staff actions through the agent's own tools: a person who holds a conversation creates a
return or sends its label from the conversation's page.

The action goes through the same gates as the model's: parsed by the action schema, checked
by the guard against the conversation's state (the shop's rules: identity, the order's
owner, the return window, final sale, what was returned already), and run by `dispatch`.
The person's click stands in for the customer's confirmation, so a `confirm` verdict runs.
A `deny` runs only as an explicit override with a reason, and the audit row says so
(verdict `override`, the person's name, their reason and the rule overridden). Either way
the step is an audit row of the conversation's current turn and a `staff_tool` event (for
staff: the customer's stream leaves it out), and the staff member's name is on both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from db import Conversation
from shopbot.actions import ParseFailure
from shopbot.dispatch import dispatch
from shopbot.errors import HandoffRefused
from shopbot.events import StaffToolRan
from shopbot.handoff import Handoff, StaffMember
from shopbot.loop import Agent
from shopbot.models.base import ToolCall
from shopbot.state import load_state, load_step_facts
from tools import ToolContext

__all__ = ["RuleRefused", "StaffToolResult", "run_tool", "staff_tools"]

log = logging.getLogger(__name__)

STAFF_STEP = 0
"""The audit rows of staff actions are step 0 of the turn they happen in (model steps count
from 1)."""


class RuleRefused(HandoffRefused):
    """The guard denied the staff member's action and no override reason was given."""


@dataclass(frozen=True)
class StaffToolResult:
    decision: str
    """`allow`, or `override` when a rule was overridden."""
    reason: str
    data: dict[str, Any]
    error: bool


def staff_tools(agent: Agent) -> tuple[str, ...]:
    """The desk's tools a staff member may run by hand (`ToolSpec.staff`): what the
    conversation page offers."""
    return tuple(name for name, spec in agent.guard.tools.items() if spec.staff)


async def run_tool(
    handoff: Handoff,
    conversation_id: str,
    who: StaffMember,
    tool: str,
    args: dict[str, Any],
    override: str = "",
) -> StaffToolResult:
    """Run `tool` with `args` in a conversation `who` holds; `override`: the reason to run it
    although the guard denies it. Refused (nothing changed): `RuleRefused`, `NotHolder`...;
    `ValueError` for a tool not offered or arguments that do not parse."""
    agent, override = handoff.agent, override.strip()
    offered = staff_tools(agent)
    if tool not in offered:
        raise ValueError(f"Staff can run {', '.join(offered)}, not {tool!r}.")
    step = ToolCall(tool, args, f"Run by {who.name} (staff)")
    action = agent.schema.parse(step)
    if isinstance(action, ParseFailure):
        raise ValueError(f"The arguments do not fit {tool}: {action.error}")
    spec = agent.guard.tools[tool]
    async with handoff.writing(conversation_id, who, taking=False) as writing:
        rec, now = writing.rec, agent.clock()
        session = rec.session
        conversation = await session.get_one(Conversation, conversation_id)
        state = await load_state(session, conversation, now)
        await load_step_facts(session, state, action.args, spec)
        verdict = agent.guard.check(action, state)
        if verdict.decision == "deny" and not override:
            raise RuleRefused(
                f"The shop's rules refuse this: {verdict.reason} Nothing was done. To do it "
                "anyway, give a reason for overriding the rule."
            )
        if verdict.decision == "deny":
            decision = "override"
            reason = f"{who.name} overrode the rule ({verdict.reason}): {override}"
        elif verdict.decision == "confirm":  # the person's click is the confirmation
            decision, reason = "allow", f"run and confirmed by {who.name}"
        else:
            decision, reason = "allow", f"run by {who.name}"
        ctx = ToolContext(
            session, conversation_id, state.customer_id, agent.settings, now, agent.services
        )
        data, error = await dispatch(ctx, spec, action, conversation)
        rec.log(
            STAFF_STEP,
            step.raw,
            thought=action.thought,
            tool=tool,
            args=action.arguments,
            verdict=decision,
            reason=reason,
            observation=data,
        )
        rec.emit(
            StaffToolRan(
                name=who.name,
                staff_id=who.id,
                tool=tool,
                args=action.arguments,
                decision=decision,
                reason=reason,
                data=data,
                error=error,
            )
        )
        writing.change({"updated_at": now})
    log.info("staff %s ran %s in %s (%s)", who.name, tool, conversation_id, decision)
    outbox = agent.services.outbox
    if outbox is not None and not error:
        try:  # the label's email leaves now; if not, the dispatcher's next round sends it
            await outbox.deliver_due()
        except Exception:
            log.exception("outbox delivery after a staff action failed; the emails stay queued")
    return StaffToolResult(decision, reason, data, error)
