"""ReplyDraft: a reply's text comes out whole and in order, however the step is cut."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shopbot.models.base import StepDelta, ToolCall, read_stream
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


@given(
    message=st.text(min_size=1),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_a_calls_arguments_show_its_reply(message: str, cuts: list[int]) -> None:
    """An API streams a named call's arguments alone; the tool is known from its name."""
    args = json.dumps({"citations": ["returns#window"], "message": message})
    bounds = [0, *sorted({c % (len(args) + 1) for c in cuts}), len(args)]
    draft, other = ReplyDraft.of_call("reply"), ReplyDraft.of_call("escalate")
    pieces = [args[a:b] for a, b in itertools.pairwise(bounds)]
    assert "".join(draft.feed(p) for p in pieces) == message
    assert "".join(other.feed(p) for p in pieces) == ""


async def test_a_step_streamed_as_text_is_read_once_whole() -> None:
    raw = json.dumps({"action": {"tool": "reply", "args": {"message": "On its way."}}})
    closed: list[bool] = []

    async def pieces() -> AsyncGenerator[str]:
        try:
            for i in range(0, len(raw), 5):
                yield raw[i : i + 5]
        finally:
            closed.append(True)

    items = [item async for item in read_stream(pieces())]
    *deltas, last = items
    assert all(isinstance(d, StepDelta) for d in deltas)
    assert "".join(d.raw for d in deltas if isinstance(d, StepDelta)) == raw
    assert "".join(d.reply for d in deltas if isinstance(d, StepDelta)) == "On its way."
    assert last == ToolCall("reply", {"message": "On its way."}, "", raw)
    # Closed early (the loop cut a looping reply off), it closes what it reads.
    async with aclosing(read_stream(pieces())) as stream:
        await anext(stream)
    assert closed == [True, True]
