"""Greedy-first grammar sampling writes exactly what full masking writes, token by token."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from shopbot.actions import ActionSchema
from shopbot.models.base import ModelRequest
from shopbot.models.local import LocalModel
from shopbot.models.sampling import GreedyFirstGrammar
from tests.plugin import known_for
from tools import TOOLS

SCHEMA = ActionSchema(TOOLS)
PROMPTS = [
    ("Customer: hi! where is order 482914? jane.doe@example.com", {"verify_identity", "reply"}),
    ("Customer: can I return a swimsuit?", {"search_policy", "reply", "escalate"}),
    ("Customer: tell me a joke", {"reply", "escalate"}),
]


def request(text: str, allowed: set[str]) -> ModelRequest:
    per_step = f"State: customer NOT verified (failed attempts: 0).\n\nConversation:\n{text}"
    hints = {"order_id": ["482914"], "email": ["jane.doe@example.com"]} if "482914" in text else {}
    return ModelRequest(
        messages=[SystemMessage("You are ShopBot."), HumanMessage(per_step)],
        allowed=frozenset(allowed),
        schema=SCHEMA.json_schema(frozenset(allowed)),
        hints=hints,
        known=known_for(allowed, text),
        conversation_id=text,
    )


@pytest.mark.slow
async def test_greedy_first_writes_what_full_masking_writes() -> None:
    plain = LocalModel(greedy_first=False)
    fast = LocalModel(greedy_first=True)
    chains: list[Any] = []
    original = fast.llm._init_sampler

    def spy(**kwargs: Any) -> Any:
        chain = original(**kwargs)
        chains.append(chain)
        return chain

    fast.llm._init_sampler = spy
    for text, allowed in PROMPTS:
        want = await plain.complete(request(text, allowed))
        assert await fast.complete(request(text, allowed)) == want
    firsts = [s for c in chains for _, s in c.custom_samplers if isinstance(s, GreedyFirstGrammar)]
    assert firsts, "the greedy-first sampler was used"
    assert sum(f.checked for f in firsts) > 0
    assert sum(f.masked for f in firsts) > 0, "the prompts include tokens the grammar refused"
