"""The loop hands a turn's opening to the model once, and an intent's answer is a step like any."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shopbot.app import start_conversation
from shopbot.events import Escalated, Reply
from shopbot.loop import Agent, CustomerText
from shopbot.models.rails import RETURNS_INTENTS, IntentRouter, Rails
from shopbot.models.scripted import ScriptedModel
from shopbot.policy.embeddings import MiniLMEmbedding
from tests.agent.agent_support import act, turn


@pytest.fixture(scope="module")
def router() -> IntentRouter:
    return IntentRouter.load(RETURNS_INTENTS, MiniLMEmbedding().embed_batch)


async def test_the_loop_offers_the_opening_only_at_a_turns_first_step(agent: Agent) -> None:
    model = agent.model
    assert isinstance(model, ScriptedModel)
    cid = await start_conversation(agent.sessions, agent.settings)
    jane = "Return the jeans from 482913 please, jane.doe@example.com"
    verify = act("verify_identity", order_id="482913", email="jane.doe@example.com")
    jeans = act("create_return", order_id="482913", lines=[1], reason="too small")
    await turn(agent, cid, CustomerText(jane), verify, jeans)
    assert [c.opening for c in model.calls] == [jane, None]
    # A message that answers the open request in words withdraws it: not an opening.
    await turn(agent, cid, CustomerText("hmm, keep them"), act("reply", message="Kept."))
    await turn(agent, cid, CustomerText("Thanks!"), act("reply", message="Bye."))
    assert [c.opening for c in model.calls[2:]] == [None, "Thanks!"]
    await turn(agent, cid, CustomerText("one more: the belt"), jeans)
    asked = model.calls[-1]
    assert asked.opening == "one more: the belt"


async def test_an_answer_to_the_assistants_question_is_not_an_opening(agent: Agent) -> None:
    """An answer to "Shall I return the jeans?" such as "No, thanks." looks like thanks to
    an intent, but it answers the question, so the model reads it."""
    model = agent.model
    assert isinstance(model, ScriptedModel)
    cid = await start_conversation(agent.sessions, agent.settings)
    offer = act("reply", message="The shorts are final sale. Shall I return just the jeans?")
    await turn(agent, cid, CustomerText("Can the shorts go back?"), offer)
    await turn(agent, cid, CustomerText("No, thanks."), act("reply", message="All right."))
    await turn(agent, cid, CustomerText("Thanks!"), act("reply", message="Bye."))
    assert [c.opening for c in model.calls] == ["Can the shorts go back?", None, "Thanks!"]


async def test_a_matched_opening_runs_through_guard_and_tools(
    agent: Agent, router: IntentRouter
) -> None:
    scripted = ScriptedModel()
    agent = replace(agent, model=Rails(scripted, router))
    cid = await start_conversation(agent.sessions, agent.settings)
    events = [e async for e in agent.run_turn(cid, CustomerText("Could I speak to a person?"))]
    assert any(isinstance(e, Escalated) for e in events)
    events = [e async for e in agent.run_turn(cid, CustomerText("What's the best pasta recipe?"))]
    reply = next(e for e in events if isinstance(e, Reply))
    assert "only help with your orders" in reply.text
    assert not scripted.calls
