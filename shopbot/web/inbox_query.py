"""What the inbox's GET parameters may ask for: a search and filters, checked.

    q           an order number ("482913", "#W2611340": it has a digit), an email address
                (it has an @), or a customer's name (letters: part of the full name)
    escalated   1: only conversations waiting for a person
    denied      1: only conversations with a step the guard denied
    flagged     1: only conversations with a reply the grounding check flagged
    confirming  1: only conversations with a confirmation the customer has not answered yet

A filter is `1` (also `on`, `true`) or left out (`0`, `off`, `false`, empty: off). Anything
else, an unknown or repeated parameter included, is a `BadInboxQuery` that says what is
accepted; nothing is searched. The parameters are plain GET ones, so a search is a link
that can be bookmarked and shared among staff.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlencode

__all__ = ["FILTERS", "BadInboxQuery", "InboxQuery", "SearchKind"]

FILTERS = {
    "escalated": "Escalated",
    "denied": "Denied actions",
    "flagged": "Grounding flags",
    "confirming": "Open confirmation",
}
"""The filters, by parameter, with their labels on the page."""
MAX_SEARCH = 100
ON = frozenset({"1", "on", "true"})
OFF = frozenset({"", "0", "off", "false"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ORDER = re.compile(r"#?[A-Za-z0-9-]*[0-9][A-Za-z0-9-]*")
_NAME = re.compile(r"[^\W\d_]+(?:[ '.-][^\W\d_]+)*\.?")


class BadInboxQuery(ValueError):
    """The inbox's parameters say something it cannot search for; the message says why."""


class SearchKind(StrEnum):
    ORDER = "order"
    EMAIL = "email"
    NAME = "name"


@dataclass(frozen=True)
class InboxQuery:
    search: str = ""
    """The search as typed, trimmed; empty: no search."""
    kind: SearchKind | None = None
    escalated: bool = False
    denied: bool = False
    flagged: bool = False
    confirming: bool = False

    @classmethod
    def parse(cls, params: Iterable[tuple[str, str]]) -> InboxQuery:
        """The query the parameters ask for; `BadInboxQuery` when they make no sense."""
        given: dict[str, str] = {}
        for name, value in params:
            if name != "q" and name not in FILTERS:
                accepted = ", ".join(["q", *FILTERS])
                raise BadInboxQuery(
                    f"The inbox has no parameter {name[:40]!r}: it takes {accepted}."
                )
            if name in given:
                raise BadInboxQuery(f"The parameter {name!r} is given twice: give it once.")
            given[name] = value
        flags = {name: _switch(name, given.get(name, "")) for name in FILTERS}
        search = " ".join(given.get("q", "").split())
        return cls(search, _kind(search), **flags)

    @property
    def active(self) -> bool:
        """It narrows the inbox: a search or a filter."""
        return bool(self.search) or any(self.filters.values())

    @property
    def filters(self) -> dict[str, bool]:
        return {name: bool(getattr(self, name)) for name in FILTERS}

    def params(self) -> dict[str, str]:
        """The parameters that ask for this query again (none for the whole inbox)."""
        out = {"q": self.search} if self.search else {}
        return out | {name: "1" for name, on in self.filters.items() if on}

    def query_string(self) -> str:
        """`?...` for a link or a stream with the same query; empty for none."""
        params = self.params()
        return f"?{urlencode(params)}" if params else ""

    def describe(self) -> str:
        """The query in words, for the page: `order 482913, escalated`."""
        parts = [f"{self.kind} {self.search!r}"] if self.kind else []
        parts += [FILTERS[name].lower() for name, on in self.filters.items() if on]
        return ", ".join(parts)


def _switch(name: str, value: str) -> bool:
    if value.lower() in ON:
        return True
    if value.lower() in OFF:
        return False
    raise BadInboxQuery(
        f"The filter {name}={value[:20]!r} is neither on nor off: use {name}=1, or leave it out."
    )


def _kind(search: str) -> SearchKind | None:
    if not search:
        return None
    if len(search) > MAX_SEARCH:
        raise BadInboxQuery(f"The search is {len(search)} characters long: at most {MAX_SEARCH}.")
    if any(not ch.isprintable() for ch in search):
        raise BadInboxQuery("The search holds control characters: type plain text.")
    if "@" in search:
        if not _EMAIL.fullmatch(search):
            raise BadInboxQuery(
                f"{search!r} has an @ but is not an email address (name@example.com)."
            )
        return SearchKind.EMAIL
    if any(ch.isdigit() for ch in search):
        if not _ORDER.fullmatch(search):
            raise BadInboxQuery(
                f"{search!r} has digits but is not an order number: type the number alone "
                "(482913 or #W2611340)."
            )
        return SearchKind.ORDER
    if len(search) < 2 or not _NAME.fullmatch(search):
        raise BadInboxQuery(
            f"{search!r} is not an order number, an email address or a name: a name is two "
            "letters or more (Jane, Doe, Jane Doe)."
        )
    return SearchKind.NAME
