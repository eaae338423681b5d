"""Text a database can store: no NUL character, no unpaired surrogate.

PostgreSQL refuses a NUL in text and JSON, and no driver encodes a lone surrogate (half of a
UTF-16 pair, which JSON's `\\ud800` escapes and Python strings allow) as UTF-8. Input that
carries one is refused where it comes in (a customer's message, a model's action); what must
be kept as it came (a model's raw output, for the audit) is stored with U+FFFD in its place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["UNSTORABLE_MESSAGE", "scrub", "storable", "storable_data"]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "The message contains a character that cannot be stored."


def storable(text: str) -> bool:
    """True when `text` has no NUL and no unpaired surrogate."""
    return _UNSTORABLE.search(text) is None


def scrub(text: str) -> str:
    """`text` with each NUL and unpaired surrogate replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)


def storable_data(data: object) -> bool:
    """True when every string in decoded JSON (keys too) is `storable`; walked without
    recursion, so nesting as deep as the decoder allows costs no stack."""
    return all(storable(text) for text in _strings(data))


def _strings(data: object) -> Iterator[str]:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for key, value in item.items():  # pyright: ignore[reportUnknownVariableType]
                stack.append(key)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)  # pyright: ignore[reportUnknownArgumentType]
