"""Gate 3 and what follows it: run a guarded action's tool, and fold what it reported into the
conversation state for the rest of the turn.

A tool's typed failure (`ToolError`) and any other exception become an observation the model
reads, never an exception the customer sees; either way the tool's writes are rolled back.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from db import Conversation
from shopbot.actions import Action
from shopbot.errors import ToolError
from shopbot.events import Citation
from shopbot.guard import LOOKUPS
from shopbot.state import ConversationState
from tools import ToolContext, ToolSpec

log = logging.getLogger(__name__)

__all__ = ["dispatch", "observe"]


async def dispatch(
    ctx: ToolContext, spec: ToolSpec, action: Action, conversation: Conversation
) -> tuple[dict[str, Any], bool]:
    """The tool's observation as JSON, and whether it is an error."""
    session = ctx.session
    # The step's audit rows and events wait in the Recorder, not in the session: rolling
    # back a failing tool's transaction discards its writes and nothing else.
    try:
        observation = await spec(ctx, action.args)
    except ToolError as exc:
        await session.rollback()
        await session.refresh(conversation)
        return {"error": exc.code, "message": str(exc), "retry": exc.retryable}, True
    except Exception:
        log.exception("tool %s failed in %s", spec.name, conversation.id)
        await session.rollback()
        await session.refresh(conversation)
        return {
            "error": "internal_error",
            "message": "The tool failed. Apologise and escalate.",
        }, True
    return observation.model_dump(mode="json"), False


def observe(
    state: ConversationState,
    conversation: Conversation,
    action: Action,
    data: dict[str, Any],
    error: bool,
) -> None:
    """Fold an observation into the state for the rest of the turn."""
    if action.tool == "verify_identity" and not error:
        if data.get("verified"):
            state.customer_id, state.proven_by = conversation.customer_id, conversation.proven_by
        else:
            state.failed_verifications += 1
    if action.tool in LOOKUPS:  # the retail desk: a user found proves the customer
        if error:
            state.failed_verifications += 1
        else:
            state.customer_id, state.proven_by = conversation.customer_id, conversation.proven_by
    if action.tool == "check_return_eligibility" and not error:
        state.eligibility = data
    for hit in data.get("hits", []) if not error else []:
        state.retrieved[hit["anchor"]] = Citation(
            anchor=hit["anchor"],
            document=hit.get("title", hit["document"]),
            section=hit["section"],
        )
        state.sources.append(hit)
    if not error and action.tool != "search_policy":
        # What a tool reported this turn backs a reply too ("your label was emailed").
        state.sources.append({"anchor": f"tool:{action.tool}", "text": json.dumps(data)})
