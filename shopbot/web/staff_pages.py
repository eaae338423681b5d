"""The staff pages of `shopbot serve`: `/staff`, for signed-in staff only.

    GET /staff                  who is signed in, and the live conversations (`inbox.py`)
    GET /staff/static/staff.css the pages' stylesheet

Sign-in and sign-out are in `shopbot.web.signin`. Each page takes its staff member from
`StaffMember` and renders a template of `templates/staff/` through `shopbot.web.pages.page`;
each form posts its session's CSRF token (`StaffForm` checks it).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from shopbot.web.backend import BackendDep
from shopbot.web.inbox import Inbox
from shopbot.web.pages import page
from shopbot.web.signin import StaffMember
from shopbot.web.widget import static_file

router = APIRouter(prefix="/staff", include_in_schema=False)
INBOX_LIMIT = 100


@router.get("")
async def inbox_page(request: Request, staff: StaffMember, backend: BackendDep) -> HTMLResponse:
    conversations, total = await Inbox(backend.store.engine).live(INBOX_LIMIT)
    context = {
        "title": "Inbox",
        "staff": staff,
        "conversations": conversations,
        "total": total,
        "now": backend.clock(),
    }
    return page(request, "inbox.html", context)


@router.get("/static/staff.css")
async def staff_css() -> FileResponse:
    return static_file("staff.css", "text/css")
