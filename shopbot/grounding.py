"""Does a reply state a policy fact, and is it backed by what the turn retrieved?

A reply that tells a customer "you have 45 days to return it" must have read that in a
policy document during the same turn; otherwise the model may be making it up. This module
finds the policy claims in a reply (amounts of money, days or minutes, and policy terms such
as "final sale" or "refund") and checks them against the turn's retrieved chunks. The
agent records the unsupported ones in the audit log; it does not block the reply.

The check is deliberately simple and errs towards flagging: a number is backed only when
a retrieved chunk states the same amount in the same unit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

_AMOUNT = re.compile(
    r"(?<![\w.$])(?:\$\s?\d+(?:\.\d{1,2})?|\d+(?:\s?(?:to|-|\u2013)\s?\d+)?"
    r"[ -](?:business |working |calendar )?(?:days?|minutes?|hours?|weeks?|months?))",
    re.IGNORECASE,
)
_TERMS = re.compile(
    r"\b(final sale|non-?returnable|return window|exchange window|refund(?:s|ed)?|"
    r"free (?:returns?|shipping|delivery)|return label|warranty|guarantee|"
    r"price adjustment|store credit|gift card)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class PolicyClaim:
    """A phrase in a reply that states something the shop's policy decides."""

    text: str
    numeric: bool


@dataclass(frozen=True)
class Grounding:
    """A reply's policy claims, split by whether the turn's sources back them."""

    claims: list[PolicyClaim]
    unsupported: list[PolicyClaim]

    @property
    def ok(self) -> bool:
        return not self.unsupported


def _normalise(amount: str) -> str:
    text = amount.lower().replace("\u2013", "-").replace("$ ", "$")
    text = re.sub(r"\s?(?:to|-)\s?", "-", text) if re.match(r"\d+\s?(?:to|-)", text) else text
    text = re.sub(r"-(?=[a-z])", " ", text)
    text = re.sub(r"\.00\b", "", text)
    return re.sub(r"(day|minute|hour|week|month)s\b", r"\1", text.replace("working", "business"))


def policy_claims(reply: str) -> list[PolicyClaim]:
    """The amounts and policy terms `reply` states, in order of appearance."""
    found = [
        (m.start(), PolicyClaim(" ".join(m[0].split()), True)) for m in _AMOUNT.finditer(reply)
    ]
    found += [(m.start(), PolicyClaim(m[0], False)) for m in _TERMS.finditer(reply)]
    return [claim for _, claim in sorted(found, key=lambda pair: pair[0])]


class Source(Protocol):
    @property
    def text(self) -> str: ...


def check_grounding(reply: str, sources: Sequence[Source]) -> Grounding:
    """Which of `reply`'s policy claims no chunk retrieved in this turn supports.

    With no sources every claim is unsupported. A term ("final sale") is supported by any
    source; an amount ("30 days", "$50") only by a source that states the same amount.
    """
    return check_texts(reply, [source.text for source in sources])


def check_texts(reply: str, texts: Sequence[str]) -> Grounding:
    """`check_grounding` over plain source texts (policy sections, tool observations)."""
    claims = policy_claims(reply)
    stated = {_normalise(m[0]) for text in texts for m in _AMOUNT.finditer(text)}
    unsupported = [
        claim
        for claim in claims
        if not texts or (claim.numeric and _normalise(claim.text) not in stated)
    ]
    return Grounding(claims, unsupported)
