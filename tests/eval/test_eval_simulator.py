"""Simulated customers: the rule-based persona, and an LLM one on a fake chat model."""

from __future__ import annotations

from datetime import UTC, datetime

from langchain_core.messages import BaseMessage

from shopbot.eval.judge import make_judge, parse_judgement
from shopbot.eval.scenario import Scenario
from shopbot.eval.simulator import AgentTurn, LlmSimulator, RuleSimulator
from shopbot.events import ConfirmationRequested
from shopbot.loop import ConfirmationAnswer, CustomerText
from tests.eval.conftest import all_scenarios

BY_ID = {s.id: s for s in all_scenarios()}


def said(text: str) -> AgentTurn:
    return AgentTurn(replies=[text])


def confirmation() -> AgentTurn:
    asked = ConfirmationRequested(
        confirmation_id="c1",
        tool="create_return",
        args={},
        summary="Return line 1",
        expires_at=datetime.now(UTC),
    )
    return AgentTurn(replies=["Please confirm: Return line 1."], confirmation=asked)


async def test_rule_simulator_answers_from_the_persona() -> None:
    sim = RuleSimulator(BY_ID["return_jeans_step_by_step"])
    assert await sim.next(None) == CustomerText("Hi, I want to return the jeans I bought.")
    both = await sim.next(said("Sure. What's your order number, and the email you used?"))
    assert both == CustomerText("It's order 482913. My email is jane.doe@example.com.")
    items = await sim.next(said("Thanks! Which items would you like to return?"))
    assert items == CustomerText("Just the jeans, they're too small.")
    assert await sim.next(confirmation()) == ConfirmationAnswer("c1", True)
    assert await sim.next(said("Done! The label was emailed to you.")) is None


async def test_rule_simulator_tries_its_emails_in_order_then_gives_up() -> None:
    sim = RuleSimulator(BY_ID["identity_two_wrong_emails"])
    await sim.next(None)
    first = await sim.next(said("What's the order number and your email address?"))
    assert first == CustomerText("It's order 600123. My email is tom@example.org.")
    again = await sim.next(said("That doesn't match. Could you check the email address?"))
    assert again == CustomerText("My email is t.becker@example.org.")
    assert await sim.next(said("Still no match. Could you check the email address?")) is None


async def test_rule_simulator_declines_and_says_its_lines_in_turn() -> None:
    scenario = BY_ID["change_of_mind_whole_order"]
    sim = RuleSimulator(scenario)
    await sim.next(None)
    assert await sim.next(confirmation()) == ConfirmationAnswer("c1", False)
    assert await sim.next(said("No problem.")) == CustomerText(scenario.persona.then[0].text)
    assert await sim.next(said("You're welcome!")) is None


async def test_rule_simulator_stops_when_escalated_and_styles_its_answers() -> None:
    sim = RuleSimulator(BY_ID["angry_return"])
    await sim.next(None)
    answer = await sim.next(said("What's the email address you used for order 482913?"))
    assert isinstance(answer, CustomerText)
    assert answer.text.startswith("Ugh") and "jane.doe@example.com" in answer.text
    assert await sim.next(AgentTurn(replies=["A colleague"], escalated=True)) is None


class FakeChat:
    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.seen: list[list[BaseMessage]] = []

    async def __call__(self, messages: list[BaseMessage]) -> str:
        self.seen.append(messages)
        return self.answers.pop(0)


async def test_llm_simulator_plays_the_persona_through_a_chat_model() -> None:
    scenario: Scenario = BY_ID["return_jeans_step_by_step"]
    chat = FakeChat("It's 482913, jane.doe@example.com", "yes please", "###STOP###")
    sim = LlmSimulator(scenario, chat)
    assert await sim.next(None) == CustomerText(scenario.persona.opening.text)
    assert await sim.next(said("Order number and email?")) == CustomerText(
        "It's 482913, jane.doe@example.com"
    )
    assert await sim.next(confirmation()) == ConfirmationAnswer("c1", True)
    assert await sim.next(said("Done!")) is None
    system = str(chat.seen[0][0].content)
    assert "Jane Doe" in system and "482913" in system and "###STOP###" in system
    assert "Assistant: Order number and email?" in str(chat.seen[0][1].content)


async def test_judge_marks_parse_or_count_as_no_judgement() -> None:
    answer = (
        'Sure: {"relevance": 5, "relevance_reason": "on point", "coherence": 4, '
        '"coherence_reason": "clear", "conciseness": 3, "conciseness_reason": "long"}'
    )
    judge = make_judge(FakeChat(answer))
    score = await judge([("customer", "hi"), ("agent", "hello")])
    assert score is not None and (score.relevance, score.coherence, score.conciseness) == (5, 4, 3)
    assert parse_judgement("no idea") is None
    assert parse_judgement('{"relevance": 9}') is None


async def test_rule_simulator_restates_its_goal_once_when_asked_something_else() -> None:
    scenario = BY_ID["return_jeans_all_upfront"]
    sim = RuleSimulator(scenario)
    opening = CustomerText(scenario.persona.opening.text)
    assert await sim.next(None) == opening
    assert await sim.next(said("Which one would you like to return?")) == opening
    assert await sim.next(said("How can I help you today?")) is None
