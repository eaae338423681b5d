"""Short, human renderings of what the agent did: arguments, observations, times, sources."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from shopbot.events import Citation

_NAMED = ("name", "title", "section", "order_id", "id")


_PHRASES = {"reply": "writing the reply", "escalate": "handing over to a colleague"}


def tool_phrase(tool: str) -> str:
    """`lookup_order` -> `lookup order`: how the chat names a step while it runs."""
    return _PHRASES.get(tool, tool.replace("_", " "))


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def arguments(args: dict[str, Any], *, limit: int = 60) -> str:
    """`order_id=482913 lines=[1]`: an action's arguments on one line, long values cut."""
    return " ".join(f"{key}={shorten(_scalar(value), limit)}" for key, value in args.items())


def observation(data: dict[str, Any], *, limit: int = 240) -> str:
    """A tool's result in one line: scalars as they are, lists counted and named."""
    parts: list[str] = []
    for key, value in data.items():
        if isinstance(value, list) and any(isinstance(item, dict) for item in value):
            items: list[Any] = value
            names = ", ".join(n for n in (_name(item) for item in items) if n)
            parts.append(f"{key}: {len(items)}" + (f" ({names})" if names else ""))
        elif isinstance(value, dict):
            parts.append(f"{key}: {{{', '.join(str(k) for k in value)}}}")
        else:
            parts.append(f"{key}={_scalar(value)}")
    return shorten(" · ".join(parts), limit)


def duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def when(moment: datetime, now: datetime) -> str:
    """`today 14:05`, `yesterday 09:30`, `3 Jun 14:05`, `3 Jun 2024`: local time."""
    local, today = moment.astimezone(), now.astimezone().date()
    clock = local.strftime("%H:%M")
    if local.date() == today:
        return f"today {clock}"
    if local.date() == today - timedelta(days=1):
        return f"yesterday {clock}"
    if local.year == today.year:
        return f"{local.day} {local:%b} {clock}"
    return f"{local.day} {local:%b %Y}"


def clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M")


def source(citation: Citation) -> str:
    """`Gift cards > Refunds to a gift card`: a policy citation as its footnote reads."""
    return f"{citation.document} > {citation.section}" if citation.section else citation.document


def _name(item: Any) -> str:
    if isinstance(item, dict):
        return next((str(item[key]) for key in _NAMED if key in item), "")
    return _scalar(item)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else json.dumps(value)
    return json.dumps(value, default=str)
