"""The staff pages of `shopbot serve`: `/staff`, for signed-in staff only.

    GET /staff                  the live conversations (`inbox.py`), narrowed by a search and
                                filters given as GET parameters (`inbox_query.py`)
    GET /staff/inbox/events     the same list as it changes (`inbox_stream.py`), for the
                                page's script; a staff session or the staff token
    GET /staff/numbers          the owner's numbers per day, as charts (`numbers.py`)
    GET /staff/static/...       the pages' stylesheet and the inbox's script

Sign-in and sign-out are in `shopbot.web.signin`. Each page takes its staff member from
`StaffMember` and renders a template of `templates/staff/` through `shopbot.web.pages.page`;
each form posts its session's CSRF token (`StaffForm` checks it).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse
from sse_starlette import EventSourceResponse

from shopbot.web.backend import BackendDep
from shopbot.web.charts import charts_of
from shopbot.web.errors import ApiError
from shopbot.web.inbox_query import FILTERS, BadInboxQuery, InboxQuery
from shopbot.web.inbox_stream import inbox_context, inbox_stream
from shopbot.web.numbers import PERIODS, BadPeriod, parse_period, read_numbers
from shopbot.web.pages import page
from shopbot.web.sessions import COOKIE, SignedIn
from shopbot.web.signin import StaffMember
from shopbot.web.staff import staff_only
from shopbot.web.widget import static_file

router = APIRouter(prefix="/staff", include_in_schema=False)
STATIC_FILES = {
    "staff.css": "text/css",
    "inbox.js": "text/javascript; charset=utf-8",
    "conversation.js": "text/javascript; charset=utf-8",
}


@router.get("")
async def inbox_page(request: Request, staff: StaffMember, backend: BackendDep) -> HTMLResponse:
    context: dict[str, object] = {"title": "Inbox", "staff": staff, "filters": FILTERS}
    try:
        query = InboxQuery.parse(request.query_params.multi_items())
    except BadInboxQuery as bad:
        # The form shows what was asked, as far as it parsed; the list is not read.
        shown = InboxQuery(search=request.query_params.get("q", "")[:100])
        return page(
            request, "inbox.html", context | {"query": shown, "error": str(bad)}, status=400
        )
    context |= await inbox_context(backend, query)
    return page(request, "inbox.html", context | {"error": None})


@router.get("/inbox/events", dependencies=[Depends(staff_only)])
async def inbox_events(request: Request, backend: BackendDep) -> EventSourceResponse:
    try:
        query = InboxQuery.parse(request.query_params.multi_items())
    except BadInboxQuery as bad:
        raise ApiError(422, "validation_error", str(bad)) from None
    cookie = request.cookies.get(COOKIE)
    by_session = isinstance(await backend.staff_sessions.find(cookie, touch=False), SignedIn)

    async def allowed() -> bool:
        if not by_session:
            return True  # the staff token, checked by `staff_only`: fixed configuration
        return isinstance(await backend.staff_sessions.find(cookie, touch=False), SignedIn)

    return inbox_stream(backend, query, allowed)


@router.get("/static/{name}")
async def staff_static(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise ApiError(404, "not_found", "Not found.")
    return static_file(name, media_type)


@router.get("/numbers")
async def numbers_page(request: Request, staff: StaffMember, backend: BackendDep) -> HTMLResponse:
    context: dict[str, object] = {"title": "Numbers", "staff": staff, "periods": PERIODS}
    try:
        period = parse_period(request.query_params.multi_items())
    except BadPeriod as bad:
        return page(
            request,
            "numbers.html",
            context | {"period": None, "error": str(bad)},
            status=400,
        )
    zone = backend.settings.policy.zone
    numbers = await read_numbers(backend.store.engine, period, zone, backend.clock())
    context |= {"period": period, "numbers": numbers, "charts": charts_of(numbers), "error": None}
    return page(request, "numbers.html", context)
