"""A conversation's staff page: its audit trail, and taking it over from ShopBot.

    GET  /staff/conversations/{id}            the messages and every step (`trail.py`),
                                              live from the staff stream (conversation.js)
    POST /staff/conversations/{id}/take       take it over: ShopBot stops answering
    POST /staff/conversations/{id}/reply      text: a message to the customer, as the holder
    POST /staff/conversations/{id}/hand-back  give it back to ShopBot
    POST /staff/conversations/{id}/tool       tool, args (JSON)[, override]: run one of the
                                              agent's tools as the holder (`staff_tools`)
    GET  /staff/static/conversation.js        the page's script (no inline code: CSP), served
                                              with the staff pages' files (`staff_pages`)

Every POST carries the session's CSRF token (`StaffForm`), answers 303 back to the page,
and a refused one (someone else holds it, it is closed, you do not hold it) answers 409
with a page that says why; nothing changes then (`shopbot.handoff`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from shopbot.errors import ConversationBusy, ConversationNotFound, HandoffRefused
from shopbot.handoff import StaffMember as Acting
from shopbot.staff_tools import run_tool, staff_tools
from shopbot.web.backend import BackendDep
from shopbot.web.pages import PAGE_HEADERS, PageRefused, page
from shopbot.web.schemas import NO_NUL
from shopbot.web.signin import StaffForm, StaffMember
from shopbot.web.trail import read_trail

router = APIRouter(prefix="/staff", include_in_schema=False)

PageId = Annotated[str, Path(min_length=1, max_length=64, pattern=NO_NUL)]
LIVE_HEADERS = {
    "Content-Security-Policy": PAGE_HEADERS["Content-Security-Policy"]
    + "; script-src 'self'; connect-src 'self'"
}
"""This page's script (a file of this server) and its stream, nothing else."""


def _missing() -> PageRefused:
    return PageRefused(404, "No such conversation", "There is no conversation with that id.")


@router.get("/conversations/{conversation_id}")
async def conversation_page(
    request: Request, conversation_id: PageId, staff: StaffMember, backend: BackendDep
) -> HTMLResponse:
    trail = await read_trail(backend.store.engine, conversation_id)
    if trail is None:
        raise _missing()
    context = {
        "title": trail.title or "Conversation",
        "staff": staff,
        "shop": backend.settings.shop_name,
        "trail": trail,
        "mine": trail.holder_id == staff.staff_id,
        "tools": staff_tools(backend.handoff.agent),
    }
    return page(request, "conversation.html", context, headers=LIVE_HEADERS)


def _arguments(text: str) -> dict[str, Any]:
    """The tool's arguments as the form gave them: one JSON object."""
    try:
        found = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"The arguments are not JSON ({exc.msg}).") from None
    if not isinstance(found, dict):
        raise ValueError('The arguments must be one JSON object, like {"return_id": 7}.')
    return cast(dict[str, Any], found)


@router.post("/conversations/{conversation_id}/{action}")
async def act(
    conversation_id: PageId,
    action: Literal["take", "reply", "hand-back", "tool"],
    posted: StaffForm,
    backend: BackendDep,
) -> RedirectResponse:
    """Take over, write, or hand back; a refusal is a page that says why."""
    who = Acting(posted.staff.staff_id, posted.staff.name)
    handoff = backend.handoff
    try:
        match action:
            case "take":
                await handoff.take(conversation_id, who)
            case "reply":
                await handoff.say(conversation_id, who, posted.fields.get("text", ""))
            case "hand-back":
                await handoff.hand_back(conversation_id, who)
            case "tool":
                fields = posted.fields
                await run_tool(
                    handoff,
                    conversation_id,
                    who,
                    fields.get("tool", ""),
                    _arguments(fields.get("args", "")),
                    fields.get("override", ""),
                )
    except ConversationNotFound:
        raise _missing() from None
    except (HandoffRefused, ConversationBusy) as exc:
        raise PageRefused(409, "Not done", str(exc)) from None
    except ValueError as exc:
        raise PageRefused(422, "Not done", f"{exc} Nothing was sent or changed.") from None
    return RedirectResponse(
        f"/staff/conversations/{conversation_id}",
        status_code=303,
        headers={"Cache-Control": "no-store"},
    )
