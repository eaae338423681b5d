"""The training data: from the real loop, a fair test kept fair, what the student is shown."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shopbot.actions import Action, ActionSchema
from shopbot.distil import phrasing as P
from shopbot.distil.generate import customer_lines, fixture_lines, generate, read
from shopbot.distil.heldout import unseen
from shopbot.distil.scenarios import (
    STORY_CUSTOMERS,
    Item,
    ShopOrder,
    draw,
    load_shop,
    refer,
    split_of,
)
from shopbot.distil.teacher import answer_from
from shopbot.eval.oracle import DECLINE
from shopbot.models.base import read_step
from shopbot.models.local import MAX_GRAMMAR_STRING, MAX_REPLY
from shopbot.models.student import (
    HIT_CHARS,
    STUDENT_SYSTEM,
    action_text,
    grammar_order,
    student_view,
    untable,
)
from tools import TOOLS

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "distil" / "steps.jsonl.gz"
SCHEMA = ActionSchema(TOOLS)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return read(DATA)


def test_the_committed_data_is_big_enough_and_covers_every_tool(rows: list[dict[str, Any]]) -> None:
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) >= 3000
    desk = {
        "verify_identity",
        "lookup_order",
        "check_return_eligibility",
        "create_return",
        "send_return_label",
        "search_policy",
        "reply",
        "escalate",
    }
    assert desk <= {r["tool"] for r in train}
    assert {r["split"] for r in rows} == {"train", "dev", "test"}


def test_the_student_reads_in_production_what_it_was_trained_on(
    rows: list[dict[str, Any]],
) -> None:
    kept = [r for r in rows if "per_step" in r]  # held-out rows keep the loop's prompt
    assert len(kept) > 1000
    for row in kept:
        assert student_view(row["per_step"]) == row["prompt"]


def test_every_target_parses_and_was_allowed_at_its_step(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        parsed = SCHEMA.parse(read_step(row["target"]))
        assert isinstance(parsed, Action), row["target"]
        assert parsed.tool in row["allowed"]
        assert row["system"] == STUDENT_SYSTEM


def test_no_line_of_the_suites_is_in_the_training_data(rows: list[dict[str, Any]]) -> None:
    suites = fixture_lines()
    assert len(suites) > 50
    train_lines = {
        " ".join(x.split()).casefold()
        for x in customer_lines([r for r in rows if r["split"] == "train"])
    }
    assert train_lines & suites == set()
    texts = "\n".join(r["prompt"] for r in rows if r["split"] == "train").casefold()
    for line in suites:
        if len(line) > 25:  # a whole line of a suite, anywhere in what the student reads
            assert line not in texts, line


def test_held_out_phrasings_and_customers_never_reach_training(rows: list[dict[str, Any]]) -> None:
    customers, _ = load_shop()
    story_emails = {customers[c]["email"].casefold() for c in STORY_CUSTOMERS}
    for row in rows:
        if row["split"] != "train":
            continue
        assert all(split_of(f) == "train" for f in row["families"]), row["families"]
        assert not any(e in row["prompt"].casefold() for e in story_emails)
    families = Counter(f for r in rows for f in r["families"])
    held_out = {f for f in families if split_of(f) == "test"}
    assert held_out, "some phrasing families are held out for test"


def test_a_phrasing_has_one_family_whatever_its_role() -> None:
    texts = [text for bank in P.BANKS.values() for text in bank]
    assert len(texts) == len(set(texts)), "a template in two banks would get two families"
    keys = {P.family(bank, i) for bank in P.BANKS.values() for i in range(len(bank))}
    assert len(keys) == len(texts)


def test_unseen_leaves_out_held_out_steps_whose_words_were_trained_on() -> None:
    def row(split: str, said: str) -> dict[str, Any]:
        return {
            "split": split,
            "prompt": f"Conversation:\nCustomer: {said}\nCustomer: Yes, please.",
        }

    rows = [
        row("train", "can I talk to a human"),
        row("test", "Can I talk to a  human"),
        row("test", "is there a person around"),
    ]
    assert unseen(rows) == [rows[2]]


def test_every_target_fits_the_grammar(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        action = json.loads(row["target"])["action"]
        for name, value in action["args"].items():
            if isinstance(value, str):
                bound = (
                    MAX_REPLY
                    if (action["tool"], name) == ("reply", "message")
                    else MAX_GRAMMAR_STRING
                )
                assert len(value) <= bound, (action["tool"], name, len(value))


def test_draws_are_reproducible_and_story_customers_are_test() -> None:
    first, second = draw(60, seed=3), draw(60, seed=3)
    assert [d.scenario.model_dump() for d in first] == [d.scenario.model_dump() for d in second]
    for d in first:
        if d.scenario.persona.emails[-1] in {"jane.doe@example.com", "tom.becker@example.org"}:
            assert d.split == "test"


async def test_generated_steps_come_from_the_real_loop(eval_policy: Any) -> None:
    rows, counts = await generate(6, seed=11, policy_index=eval_policy)
    assert counts["conversations"] + counts["conversations dropped"] == 6
    assert counts["conversations dropped"] == 0, "the teacher is never denied"
    assert rows
    for row in rows:
        assert row["prompt"] == student_view(row["per_step"])
        assert isinstance(SCHEMA.parse(read_step(row["target"])), Action)
    # A step after a tool shows that tool's observation, as the loop recorded it.
    later = [r for r in rows if "This turn:" in r["prompt"]]
    assert later and all("   -> " in r["prompt"] for r in later)


def test_the_view_puts_what_grows_first_and_what_changes_last() -> None:
    per_step = "\n".join(
        [
            "State: customer verified (Ann, by email).",
            "Order numbers the customer wrote: 111111",
            "Hint: something",
            "",
            "Conversation:",
            *(f"Customer: message {i}" for i in range(11)),
            "",
            "This turn so far:",
            '1. {"tool": "lookup_order", "args": {"order_id": "111111"}}',
            '   -> {"order_id": "111111", "status": "delivered", "price": 9, "lines": [{"line": 1, "name": "Hat"}]}',
            "",
            "Allowed now: lookup_order, reply",
            "Your next step, as one JSON object:",
        ]
    )
    view = student_view(per_step)
    conversation, steps, state = view.split("\n\n")
    # 11 lines > 8: dropped in blocks of 4 so the start stays put for several turns.
    assert conversation.splitlines()[1:] == [f"Customer: message {i}" for i in range(4, 11)]
    assert (
        steps.splitlines()[2] == "   -> order_id 111111, status delivered, lines [line 1, name Hat]"
    )
    assert state.splitlines() == [
        "State: customer verified (Ann, by email).",
        "Hint: something",
        "Allowed now: lookup_order, reply",
    ]


def test_policy_hits_show_enough_of_the_best_one_to_quote() -> None:
    hit = {"anchor": "a#b", "section": "S", "title": "T", "text": "x" * 500, "score": 1}
    per_step = "\n".join(
        [
            "State: customer NOT verified (failed attempts: 0).",
            "Conversation:",
            "Customer: q?",
            "This turn so far:",
            '1. {"tool": "search_policy", "args": {"query": "q?"}}',
            "   -> " + json.dumps({"hits": [hit, hit]}),
            "Allowed now: reply",
        ]
    )
    line = student_view(per_step).split("\n\n")[1].splitlines()[2]
    assert line.startswith("   -> hits [a#b] S: " + "x" * 400)
    assert " | [a#b] S: " in line


def test_actions_are_written_in_the_grammars_order() -> None:
    create = SCHEMA.args_models["create_return"].model_json_schema()
    assert grammar_order(create) == ["order_id", "lines", "reason"]
    text = action_text(
        "create_return", {"reason": "r", "lines": [1], "order_id": "1"}, grammar_order(create)
    )
    assert (
        text
        == '{"action": {"tool": "create_return", "args": {"order_id": "1", "lines": [1], "reason": "r"}}}'
    )
    reply = SCHEMA.args_models["reply"].model_json_schema()
    assert action_text("reply", {"message": "hé", "citations": []}, grammar_order(reply)) == (
        '{"action": {"tool": "reply", "args": {"message": "hé"}}}'
    )


def test_named_lines_take_the_teacher_straight_to_the_eligibility_check(
    rows: list[dict[str, Any]],
) -> None:
    """Where the prompt names the lines, the eligibility check follows the identity check
    with those lines; where it does not ("I'd like to send something back"), the order is
    looked up first."""
    checks = [r for r in rows if r["tool"] == "check_return_eligibility"]
    first_turn = [r for r in checks if '"tool": "verify_identity"' in r["prompt"]]
    direct = [r for r in first_turn if '"tool": "lookup_order"' not in r["prompt"]]
    assert direct and len(direct) < len(first_turn)
    for row in direct:
        named = next(x for x in row["prompt"].splitlines() if x.startswith("Items the"))
        lines = json.loads(row["target"])["action"]["args"]["lines"]
        assert [int(n) for n in re.findall(r"line (\d+)", named)] == lines, named


def test_some_requests_come_after_a_turn_that_needed_no_tool() -> None:
    # A request after small talk or a refused ask is still a request: the generator opens a
    # fifth of the returns and status asks with such a turn, and the request comes second.
    drawn = [d for d in draw(400, 11) if d.scenario.goal.kind in ("return", "status")]
    after = [d for d in drawn if d.scenario.persona.opening.intent != "goal"]
    assert 0.1 < len(after) / len(drawn) < 0.3
    intents = {d.scenario.persona.opening.intent for d in after}
    assert {"off_topic", "refuse_discount", "question"} <= intents
    assert all(d.scenario.persona.then[0].intent == "goal" for d in after)


REFUND_TIMING = (
    "We check every return when it arrives at our warehouse, normally on the day it is "
    "delivered to us. Once it has been checked, your refund is issued: - to your original "
    "payment method (card, PayPal, Apple Pay or Google Pay) within 7 business days; - to a "
    "Harbor & Pine gift card within 1 business day. You choose which when you start the return."
)


def test_a_policy_answer_quotes_the_sentence_that_answers_the_question() -> None:
    # The section's first sentence is about the warehouse; the fact asked for is later.
    answer = answer_from(REFUND_TIMING, "How long does a refund to a gift card take?")
    assert answer.startswith("Once it has been checked")
    assert "1 business day" in answer
    # A question the first sentence answers as well as any other keeps the first.
    assert answer_from(REFUND_TIMING, "what about my parcel?").startswith("We check every")


def test_a_policy_answer_reads_a_table_out_and_never_quotes_what_the_view_cuts_off() -> None:
    text = "\n".join(
        [
            "| Service | Delivery time | Price |",
            "|---|---|---|",
            "| Standard | 2 to 5 business days | $6.95 |",
            "| Express | 1 to 2 business days | $14.95 |",
            "All prices are in US dollars. " + "Prices change with the seasons. " * 20,
        ]
    )
    assert untable(text).splitlines()[:2] == [
        "Standard: 2 to 5 business days; $6.95.",
        "Express: 1 to 2 business days; $14.95.",
    ]
    # A cell's own full stop is not doubled; a separator without outer pipes is one.
    status = "| Status | What it means |\n---|---\n| Placed | We have it. |"
    assert untable(status) == "Placed: We have it."
    answer = answer_from(text, "how much is express delivery?")
    assert answer.startswith("Express: 1 to 2 business days; $14.95.")
    assert "|" not in answer
    # The view shows the first HIT_CHARS[0] characters: a sentence it cuts is not quoted.
    shown = " ".join(untable(text).split())[: HIT_CHARS[0]]
    assert answer in shown and answer.endswith(".")
    # The sentence that matches best ends where the view has cut it off: not quoted.
    filler = "Our team reads every message. " * 13  # 390 characters
    cut_text = filler + "Express parcels cost $14.95 each and arrive fast."
    assert len(filler) < HIT_CHARS[0] < len(cut_text)
    assert "Express" not in answer_from(cut_text, "how much does express cost?")


def test_every_no_to_an_offer_reads_as_no_and_every_yes_as_yes() -> None:
    noes = [*P.OFFER_NO, "No, thanks.", "not really", "thanks, but no", "don\u2019t bother"]
    yeses = [*P.OFFER_YES, "Yes, please.", "no problem, go ahead", "don't mind, go ahead"]
    assert all(DECLINE.match(t.casefold()) for t in noes)
    assert not any(DECLINE.match(t.casefold()) for t in yeses)


def test_some_customers_give_several_emails_and_returns_of_three_items_are_drawn() -> None:
    drawn = draw(600, 5)
    many = [d for d in drawn if len(d.scenario.persona.emails) > 2]
    assert many
    customers, _ = load_shop()
    for d in many:  # every guess is wrong: the desk tries them all, then hands over
        emails = d.scenario.persona.emails
        assert len(set(emails)) == len(emails)
        name = d.scenario.persona.name
        owners = {
            c["email"] for c in customers.values() if f"{c['first_name']} {c['last_name']}" == name
        }
        assert owners and not owners & set(emails), emails
    assert any(len(d.scenario.goal.lines) == 3 for d in drawn)


def test_refusals_say_send_back_only_under_a_negation_and_returns_say_it_too() -> None:
    # The seventh run learnt "sending it back" from refund refusals and refused a return; the
    # eighth, taught refusals without those words, read "I'm not sending them back" as a
    # return. Both sides carry the words; only the negation marks the refusal.
    send_back = re.compile(r"\b(send|sending|sent)\b.*\bback\b", re.IGNORECASE)
    negated = re.compile(r"(n't|\bnot\b|\bwithout\b)[^.?!]*\b(send|sending)\b", re.IGNORECASE)
    refusals = [*P.REFUND, *P.DISCOUNT, *P.INJECTION, *P.DISCLOSE, *P.EXCEPTION]
    said = [line for line in refusals if send_back.search(line)]
    assert len(said) >= 4
    assert [line for line in said if not negated.search(line)] == []
    # "keep" is how a customer declines a return ("I'll keep them").
    assert [line for line in refusals if re.search(r"\bkeep", line, re.IGNORECASE)] == []
    returns = [*P.RETURN_UPFRONT, *P.RETURN_VAGUE, *P.RETURN_WITH_ITEM, *P.RETURN_WITH_ORDER]
    assert len([line for line in returns if send_back.search(line)]) >= 6


def test_a_third_of_status_asks_name_an_item_and_no_order_number() -> None:
    drawn = [d for d in draw(800, 11) if d.scenario.goal.kind == "status"]
    vague = [d for d in drawn if d.families[0].startswith("status_vague:")]
    assert 0.25 < len(vague) / len(drawn) < 0.45


def test_customers_call_items_by_nicknames_only_where_no_other_item_is_meant() -> None:
    chinos, beanie, cap = (
        Item(1, "Chino Trousers", "active", False),
        Item(2, "Wool Beanie", "active", False),
        Item(3, "Baseball Cap", "active", False),
    )
    order = ShopOrder("100001", "c", "delivered", 3, (chinos, beanie, cap))
    rng = random.Random(0)
    said = {refer(chinos, order, rng) for _ in range(200)}
    assert said == {"Chino Trousers", "chino trousers", "trousers", "chinos"}
    # "hat" could be the beanie or the cap: neither is called that.
    assert "hat" not in {refer(i, order, rng) for i in (beanie, cap) for _ in range(200)}


# A question answered by a later sentence of its section, and the fact its gold answer must
# hold: five more were drafted and dropped because retrieval or `answer_from` missed theirs.
LATER_SENTENCE = {
    "Can I use more than one gift card on an order?": "up to 3 gift cards",
    "can I swap for a different colour?": "different size or color",
    "how much is express shipping?": "Express: 1 to 2 business days; $14.95.",
    "my gift card doesn't cover the whole order, can I pay the rest by card?": "pay the rest",
    "Is there a price difference when I exchange for another size?": "no price difference",
}


def test_questions_answered_by_a_later_sentence_get_gold_answers_that_hold_the_fact(
    eval_policy: Any,
) -> None:
    from shopbot.distil.questions import QUESTIONS

    for question, fact in LATER_SENTENCE.items():
        assert question in QUESTIONS
        best = eval_policy.search(question, 3)[0]
        assert fact in answer_from(best.text, question), question
