"""ReplyDraft: a reply's text comes out whole and in order, however the step is cut."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shopbot.streaming import ReplyDraft


def _feed(raw: str, cuts: list[int]) -> tuple[ReplyDraft, list[str]]:
    draft = ReplyDraft()
    bounds = [0, *sorted({c % (len(raw) + 1) for c in cuts}), len(raw)]
    pieces = [draft.feed(raw[a:b]) for a, b in itertools.pairwise(bounds)]
    return draft, pieces


@given(
    message=st.text(min_size=1),
    thought=st.text(),
    ascii_only=st.booleans(),
    tool_first=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_a_reply_comes_out_exactly_as_the_step_says(
    message: str, thought: str, ascii_only: bool, tool_first: bool, cuts: list[int]
) -> None:
    args: dict[str, Any] = {"message": message, "citations": ["returns#window"]}
    action: dict[str, Any] = (
        {"tool": "reply", "args": args} if tool_first else {"args": args, "tool": "reply"}
    )
    raw = json.dumps({"thought": thought, "action": action}, ensure_ascii=ascii_only)
    draft, pieces = _feed(raw, cuts)
    assert "".join(pieces) == message == draft.shown
    assert draft.raw == raw


@given(
    text=st.text(min_size=1), cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30)
)
def test_other_tools_show_nothing(text: str, cuts: list[int]) -> None:
    step = {"thought": text, "action": {"tool": "escalate", "args": {"message": text}}}
    _, pieces = _feed(json.dumps(step), cuts)
    assert pieces == [""] * len(pieces)


def test_pieces_arrive_as_the_text_grows() -> None:
    raw = json.dumps(
        {"action": {"tool": "reply", "args": {"message": "Your label is on its way."}}}
    )
    draft = ReplyDraft()
    shown = [draft.feed(raw[i : i + 8]) for i in range(0, len(raw), 8)]
    assert len([s for s in shown if s]) > 2
    assert "".join(shown) == "Your label is on its way."


def test_a_message_nested_elsewhere_is_not_the_reply() -> None:
    raw = json.dumps(
        {"thought": {"message": "no"}, "action": {"tool": "reply", "args": {"message": "yes"}}}
    )
    assert "".join(_feed(raw, [3, 17, 30])[1]) == "yes"
