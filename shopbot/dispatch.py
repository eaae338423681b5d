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
    spec: ToolSpec,
    data: dict[str, Any],
    error: bool,
) -> None:
    """Fold a tool's observation into the state for the rest of the turn, as the tool
    declares: an identity check's outcome, a search's citable hits, its report."""
    proof = spec.proves
    if proof is not None and (proved := proof.outcome(data, error)) is not None:
        if proved:
            state.customer_id, state.proven_by = conversation.customer_id, conversation.proven_by
        else:
            state.failed_verifications += 1
    if error:
        return
    state.observed.append((spec.name, data))
    if not spec.cites:
        # What a tool reported this turn backs a reply too ("your label was emailed").
        state.sources.append({"anchor": f"tool:{spec.name}", "text": json.dumps(data)})
        return
    for hit in data.get("hits", []):
        state.retrieved[hit["anchor"]] = Citation(
            anchor=hit["anchor"],
            document=hit.get("title", hit["document"]),
            section=hit["section"],
        )
        state.sources.append(hit)
