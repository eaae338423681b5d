from __future__ import annotations

import json

import pytest
from inline_snapshot import snapshot

from shopbot.actions import (
    Action,
    ActionSchema,
    LoopWatch,
    ParseFailure,
    ReplyArgs,
    repeated_phrase,
)
from shopbot.models.base import RawText, ToolCall, read_step
from shopbot.storable import storable
from tools import TOOLS

schema = ActionSchema(TOOLS)


def step(tool: str, **args: object) -> str:
    return json.dumps({"thought": "t", "action": {"tool": tool, "args": args}})


def test_parses_a_valid_action_and_normalises_the_order_number() -> None:
    action = schema.parse(read_step(step("lookup_order", order_id=" #482913 ")))
    assert isinstance(action, Action)
    assert (action.tool, action.arguments, action.thought) == (
        "lookup_order",
        {"order_id": "482913"},
        "t",
    )


def test_tolerates_code_fences_around_the_json() -> None:
    action = schema.parse(read_step("```json\n" + step("reply", message="hi") + "\n```"))
    assert isinstance(action, Action) and isinstance(action.args, ReplyArgs)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("Sure, let me check.", "Output must be one JSON object"),
        ('{"action": {"tool": "lookup_order", "args": {', "Output must be one JSON object"),
        ('{"action": {"tool": "lookup_order", "args": {"order_id": }}}', "Invalid JSON"),
        (step("drop_tables"), "Unknown tool 'drop_tables'"),
        (step("lookup_order", order="1"), "order_id: Field required"),
        (step("lookup_order", order_id="482913", extra=1), "extra: Extra inputs are not permitted"),
        (
            step("create_return", order_id="482913", lines=[], reason="x"),
            "lines: List should have at least 1 item",
        ),
        (
            step("verify_identity", order_id="482913", email="not-an-email"),
            "email: String should match pattern",
        ),
        (step("reply", message=""), "message: String should have at least 1 character"),
        (
            step("reply", message="Yes, yes, yes, yes, yes, yes, yes, yes"),
            "The reply repeats 'yes' over and over: say it once.",
        ),
        (
            step("reply", message="It fits. " + "You can't return it. " * 4),
            'The reply repeats "you can\'t return it" over and over',
        ),
        ('["reply"]', "Output must be one JSON object"),
    ],
)
def test_invalid_output_becomes_a_failure_the_model_can_read(raw: str, error: str) -> None:
    result = schema.parse(read_step(raw))
    assert isinstance(result, ParseFailure)
    assert error in result.error


def test_digest_binds_tool_and_exact_arguments() -> None:
    a = schema.parse(read_step(step("create_return", order_id="482913", lines=[1], reason="small")))
    b = schema.parse(
        read_step(step("create_return", order_id="#482913", lines=[1], reason="small"))
    )
    c = schema.parse(
        read_step(step("create_return", order_id="482913", lines=[1, 2], reason="small"))
    )
    assert isinstance(a, Action) and isinstance(b, Action) and isinstance(c, Action)
    assert a.digest == b.digest != c.digest


def test_json_schema_offers_only_the_allowed_tools() -> None:
    full = schema.json_schema()
    narrow = schema.json_schema(["reply", "verify_identity"])
    assert len(full["$defs"]) > len(narrow["$defs"])
    tools = sorted(
        d["properties"]["tool"]["const"] for n, d in narrow["$defs"].items() if n.endswith("Action")
    )
    assert tools == snapshot(["reply", "verify_identity"])


def test_catalogue_lists_every_tool_with_its_description() -> None:
    assert schema.names == snapshot(
        [
            "verify_identity",
            "lookup_order",
            "list_orders",
            "check_return_eligibility",
            "create_return",
            "send_return_label",
            "search_policy",
            "reply",
            "escalate",
        ]
    )
    assert all(schema.descriptions[n] for n in schema.names)


@pytest.mark.parametrize(
    "message",
    [
        "I see the Linen Shirt and the Slim Fit Jeans on order 482913. Which would you like?",
        "Order 482913: 1 x Shirt, 1 x Shirt, 1 x Shirt, shipped.",  # three is a list, not a loop
        "Done! Your return is registered and the label has been emailed to you.",
        "Shirt $29.00, Jeans $49.00, Socks $9.00, Belt $19.00.",
        "Returnable: yes\nFree label: yes\nRefund to card: yes\nExchange: yes",
        "Order 1: shipped. Order 2: shipped. Order 3: shipped. Order 4: shipped.",
        "Quantities on order 482913: 1, 1, 1, 1.",
        "Order 482913: 1 x Cotton Socks, 1 x Cotton Socks, 1 x Cotton Socks.",
        "Line 1: Shirt, qty 1\nLine 2: Jeans, qty 1\nLine 3: Belt, qty 1\nLine 4: Hat, qty 1",
        "See https://shop.example.com/a, https://shop.example.com/b, "
        "https://shop.example.com/c and https://shop.example.com/d.",
    ],
)
def test_a_reply_that_says_something_more_than_once_is_still_a_reply(message: str) -> None:
    assert isinstance(schema.parse(read_step(step("reply", message=message))), Action)


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("sorry " * 12, "sorry"),
        (
            "Hello. you can't return it you can't return it you can't return it you can't return it",
            "you can't return it",
        ),
        ("I'm sorry, I'm sorry, I'm sorry, I'm sorry", "i'm sorry"),
        (  # SmolLM2, cut by the grammar's 200 characters in the fourth time round
            "I'm sorry, I'm not able to help you with your order. I'm sorry, I'm not able to "
            "help you with your order. I'm sorry, I'm not able to help you with your order. "
            "I'm sorry, I'm not able to help you with.",
            "i'm sorry i'm not able to help you with your order",
        ),
        ("Thanks! 111111, 111111, 111111, 111111, 111111, 111111, 111111, 111111", "111111"),
    ],
)
def test_a_reply_looping_with_or_without_punctuation_is_found(text: str, phrase: str) -> None:
    assert repeated_phrase(text) == phrase


def test_while_a_reply_is_written_its_last_word_may_still_grow() -> None:
    # "... 1, 1, 1, 1" being written may become "... 1, 1, 1, 12".
    assert repeated_phrase("Sizes: 1 1 1 1 1 1 1 1", finished=False) is None
    assert repeated_phrase("Sizes: 1 1 1 1 1 1 1 1", finished=True) == "1"


def test_a_loop_is_found_at_the_end_of_a_long_reply_as_it_is_written() -> None:
    written = " ".join(f"item {i} is on its way," for i in range(300)) + " sorry," * 12
    watch, found = LoopWatch(), []
    for end in range(3, len(written) + 1, 3):
        if looped := watch.check(written[:end]):
            found.append((end, looped))
            break
    assert found and found[0][1] == "sorry" and found[0][0] > len(written) - 7 * 12


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ('{"action": null}', "action"),
        ('{"action": "reply"}', "action"),
        ('{"action": []}', "action"),
        ('{"thought": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"action": {"tool": "reply", "args": {"message": ' + "9" * 5000 + "}}}", "too long"),
        (step("escalate", reason="help\x00me"), "NUL"),
        (step("reply", message="a\ud800b"), "surrogate"),
        ('{"thought": "\\u0000", "action": {"tool": "reply", "args": {"message": "x"}}}', "NUL"),
        ('{"action": {"tool": "reply", "args": {"message": "x"}, "\\ud800": 1}}', "NUL"),
        (step("send_return_label", return_id=2**31), "less than or equal"),
    ],
)
def test_output_that_broke_the_parser_or_the_database_is_a_parse_failure(
    raw: str, error: str
) -> None:
    """Each of these raised out of `parse`, or parsed into what no database stores (a NUL
    or a lone surrogate; a return id past the integer column overflowed the guard's query)."""
    failed = schema.parse(read_step(raw))
    assert isinstance(failed, ParseFailure), failed
    assert error in failed.error
    assert storable(failed.error)


def test_the_largest_return_id_the_column_holds_parses() -> None:
    assert isinstance(
        schema.parse(read_step(step("send_return_label", return_id=2**31 - 1))), Action
    )


def _hostile_texts() -> list[str]:
    """Every kind of broken or odd output the hostile model writes."""
    import random
    from typing import Any, cast

    from shopbot.hostile.model import HostileModel

    model = HostileModel(random.Random(7), cast(Any, None))
    return sorted({f() for f in (model._broken, model._odd_step) for _ in range(200)})  # pyright: ignore[reportPrivateUsage]


READ_AS_TEXT = [
    step("reply", message="hi"),
    '{"action": {"tool": "reply", "args": {"message": "hi"}}}',
    '{"action": {"args": {"message": "hi"}, "tool": "reply"}, "thought": "t"}',
    "Sure:\n```json\n" + step("lookup_order", order_id="482913") + "\n```",
    '{"action": {"tool": "reply"}}',
    '{"action": {"tool": "reply", "args": {"message": "hi"}, "extra": 1}}',
    '{"thought": 3, "action": {"tool": "reply", "args": {"message": "hi"}}}',
    '{"extra": 1, "action": {"tool": "reply", "args": {"message": "hi"}}}',
    '{"action": {"tool": "reply", "args": ["hi"]}}',
    '{"action": {"tool": 7, "args": {}}}',
    step("drop_tables"),
    step("reply", message="It fits. " + "You can't return it. " * 4),
    *_hostile_texts(),
]


@pytest.mark.parametrize("raw", READ_AS_TEXT)
def test_text_read_as_a_step_parses_as_the_text_does(raw: str) -> None:
    """Backends that write JSON text map it to a step (`read_step`) without checking it;
    gate 1 reads `RawText` as it has always read text. Both give the same action, or the
    same failure word for word, and keep the text as the raw output."""
    assert schema.parse(read_step(raw)) == schema.parse(RawText(raw))
    assert read_step(raw).raw == raw


def test_a_call_with_arguments_as_text_is_decoded_by_gate_1() -> None:
    """An API's streamed call carries its arguments as the JSON text the server sent."""
    call = ToolCall("lookup_order", '{"order_id": "#482913"}', "look it up")
    action = schema.parse(call)
    assert isinstance(action, Action)
    assert (action.arguments, action.thought) == ({"order_id": "482913"}, "look it up")
    assert call.raw == (
        '{"thought": "look it up", "action": {"tool": "lookup_order", "args": '
        '{"order_id": "#482913"}}}'
    )
    broken = schema.parse(ToolCall("lookup_order", '{"order_id": '))
    assert isinstance(broken, ParseFailure)
    assert broken.error == "Invalid JSON: Expecting value at position 13."
    unknown = schema.parse(ToolCall("drop_tables", {}))
    assert isinstance(unknown, ParseFailure) and unknown.error.startswith("Unknown tool")
