"""search_policy: what the shop's own policy documents say, with where it says it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Protocol

from pydantic import Field

from shopbot.errors import ToolFailure
from tools.base import Observation, ToolContext, tool

Query = Annotated[
    str, Field(min_length=2, max_length=300, description="The question, in plain words.")
]
SOURCE_CHARS = 700
"""How much of each section the model reads; sections are short, this keeps the prompt so."""


class Hit(Protocol):
    document: str
    title: str
    section: str
    anchor: str
    text: str
    score: float


class PolicySearch(Protocol):
    """What the tool needs of the policy index (`shopbot.policy.PolicyIndex`)."""

    def search(self, query: str, k: int = 3) -> Sequence[Hit]: ...


class PolicySource(Observation):
    anchor: str
    """Cite this in the reply."""
    document: str
    title: str
    section: str
    text: str
    score: float


class PolicyResults(Observation):
    hits: list[PolicySource]


@tool(doing="Checking our policies…", cites=True)
async def search_policy(ctx: ToolContext, query: Query) -> PolicyResults:
    """Search the shop's policy documents (returns, refunds, exchanges, shipping, warranty,
    payments, privacy...). Answer policy questions only from these results and cite the
    anchors of the sections you used."""
    index = ctx.services.policy
    if index is None:
        raise ToolFailure("The policy documents are not available right now.", code="no_index")
    # Embedding and search are CPU-bound (~10 ms): keep the event loop free meanwhile.
    hits = await asyncio.to_thread(index.search, query, 3)
    return PolicyResults(
        hits=[
            PolicySource(
                anchor=h.anchor,
                document=h.document,
                title=h.title,
                section=h.section,
                text=h.text[:SOURCE_CHARS],
                score=round(h.score, 4),
            )
            for h in hits
        ]
    )
