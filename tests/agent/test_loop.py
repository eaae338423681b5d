"""The loop against a real, seeded database, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncGenerator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from agent_support import act, turn
from sqlalchemy import func, select

from db import (
    ActionLog,
    Confirmation,
    ConfirmationStatus,
    Conversation,
    ConversationStatus,
    Event,
    Message,
    Return,
    utcnow,
)
from db.engine import create_engine, session_factory
from shopbot.app import build_agent, start_conversation
from shopbot.errors import (
    ConversationError,
    ModelError,
    NoPendingConfirmation,
    ScriptError,
    WithdrawnConfirmation,
)
from shopbot.events import (
    ConfirmationDecided,
    ConfirmationRequested,
    ConfirmationWithdrawn,
    ObservationMade,
    ParseFailed,
    Reply,
    ReplyChunk,
    ToolStarted,
    TurnEnded,
)
from shopbot.events import Event as TurnEvent
from shopbot.loop import LAPSED, Agent, ConfirmationAnswer, CustomerText
from shopbot.models.base import ModelRequest, ModelStep, StepDelta, read_step
from shopbot.models.scripted import ScriptedModel
from shopbot.plain_chat import chat
from shopbot.record import Recorder
from tests.plugin import settings_for

JANE = "Return the jeans from 482913 please, jane.doe@example.com"


VERIFY = act("verify_identity", order_id="482913", email="jane.doe@example.com")
RETURN_JEANS = act("create_return", order_id="482913", lines=[1], reason="too small")


async def count(agent: Agent, table: Any, *where: Any) -> int:
    async with agent.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def test_events_are_stored_in_order_as_yielded(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    first = await turn(agent, cid, CustomerText(JANE), VERIFY, act("reply", message="Verified."))
    second = await turn(agent, cid, CustomerText("thanks"), act("reply", message="Bye!"))
    async with agent.sessions() as s:
        rows = list(
            await s.scalars(select(Event).where(Event.conversation_id == cid).order_by(Event.seq))
        )
    # Reply drafts are live only; every other event is stored, in the order it was yielded,
    # with the email addresses of the agent's work masked (`shopbot.pii`).
    drafts = [e for e in first + second if isinstance(e, ReplyChunk)]
    assert "".join(d.text for d in drafts) == "Verified.Bye!"
    first, second = ([e for e in t if not isinstance(e, ReplyChunk)] for t in (first, second))
    assert [r.seq for r in rows] == list(range(1, len(first) + len(second) + 1))
    typed = ["jane.doe@example.com"]
    assert [r.payload for r in rows] == [
        agent.pii.event(e.model_dump(mode="json"), typed) for e in first + second
    ]
    assert [r.turn for r in rows] == [1] * len(first) + [2] * len(second)


async def test_turn_ended_counts_every_model_step_as_the_audit_log_does(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    events = await turn(
        agent, cid, CustomerText(JANE), "not json", VERIFY, act("reply", message="Verified.")
    )
    ended = events[-1]
    assert isinstance(ended, TurnEnded)
    # A parse failure, a tool step and the reply: three times the model was asked.
    assert ended.steps == 3
    assert await count(agent, ActionLog, ActionLog.conversation_id == cid) == 3


async def test_a_pending_confirmation_survives_a_new_process(
    agent: Agent, db_url: str, tmp_path: Path
) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    events = await turn(agent, cid, CustomerText(JANE), VERIFY, RETURN_JEANS)
    asked = next(e for e in events if isinstance(e, ConfirmationRequested))
    # Another worker, another engine, nothing shared in memory but the database.
    engine = create_engine(db_url)
    other = build_agent(settings_for(db_url, tmp_path), ScriptedModel(), session_factory(engine))
    await turn(
        other,
        cid,
        ConfirmationAnswer(asked.confirmation_id, True),
        RETURN_JEANS,
        act("reply", message="Done."),
    )
    await engine.dispose()
    assert await count(agent, Return, Return.conversation_id == cid) == 1


async def test_a_confirmation_is_answered_once(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    events = await turn(agent, cid, CustomerText(JANE), VERIFY, RETURN_JEANS)
    conf = next(e for e in events if isinstance(e, ConfirmationRequested)).confirmation_id
    await turn(
        agent, cid, ConfirmationAnswer(conf, True), RETURN_JEANS, act("reply", message="Done.")
    )
    before = await count(agent, Message)
    with pytest.raises(NoPendingConfirmation):
        await turn(agent, cid, ConfirmationAnswer(conf, True))
    with pytest.raises(NoPendingConfirmation):
        await turn(agent, cid, ConfirmationAnswer("made-up", True))
    assert await count(agent, Message) == before
    assert await count(agent, Return, Return.conversation_id == cid) == 1


@pytest.mark.parametrize(("typed", "approved"), [("Yes.", True), ("ok!", True), ("no", False)])
async def test_a_typed_yes_or_no_answers_the_open_confirmation(
    agent: Agent, typed: str, approved: bool
) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    events = await turn(agent, cid, CustomerText(JANE), VERIFY, RETURN_JEANS)
    conf = next(e for e in events if isinstance(e, ConfirmationRequested)).confirmation_id
    after = (RETURN_JEANS,) if approved else ()
    events = await turn(agent, cid, CustomerText(typed), *after, act("reply", message="Done."))
    assert [e for e in events if isinstance(e, ConfirmationDecided)] == [
        ConfirmationDecided(confirmation_id=conf, approved=approved)
    ]
    assert await count(agent, Return, Return.conversation_id == cid) == int(approved)
    # Answered: another "yes" is only a message, and nothing more happens.
    await turn(agent, cid, CustomerText("yes"), act("reply", message="Anything else?"))
    assert await count(agent, Return, Return.conversation_id == cid) == int(approved)


async def test_a_yes_after_something_else_was_said_is_a_message(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    await turn(agent, cid, CustomerText(JANE), VERIFY, RETURN_JEANS)
    await turn(
        agent,
        cid,
        CustomerText("Is the label free?"),
        act("reply", message="It is. Anything else?"),
    )
    # "no" answers "Anything else?": the return's request was withdrawn by the question.
    events = await turn(agent, cid, CustomerText("no"), act("reply", message="Bye!"))
    assert not [e for e in events if isinstance(e, ConfirmationDecided | ConfirmationWithdrawn)]
    async with agent.sessions() as s:
        status = await s.scalar(
            select(Confirmation.status).where(Confirmation.conversation_id == cid)
        )
    assert status == ConfirmationStatus.WITHDRAWN


@pytest.mark.parametrize(
    "words", ["Actually never mind, I'll keep them.", "yes but which label?", "Is the label free?"]
)
async def test_answering_in_words_withdraws_the_request(agent: Agent, words: str) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    events = await turn(agent, cid, CustomerText(JANE), VERIFY, RETURN_JEANS)
    conf = next(e for e in events if isinstance(e, ConfirmationRequested)).confirmation_id
    events = await turn(agent, cid, CustomerText(words), act("reply", message="All right."))
    assert [type(e).__name__ for e in events[:2]] == ["CustomerMessage", "ConfirmationWithdrawn"]
    assert events[1] == ConfirmationWithdrawn(confirmation_id=conf)
    # The model was not told of a request waiting: it is gone before the model reads.
    model = agent.model
    assert isinstance(model, ScriptedModel)
    assert "Confirmation pending" not in str(model.calls[-1].messages[-1].content)
    before = await count(agent, Event, Event.conversation_id == cid)
    with pytest.raises(WithdrawnConfirmation, match="withdrawn"):
        await turn(agent, cid, ConfirmationAnswer(conf, True))
    assert await count(agent, Event, Event.conversation_id == cid) == before
    assert await count(agent, Return, Return.conversation_id == cid) == 0
    async with agent.sessions() as s:
        row = await s.scalar(select(Confirmation).where(Confirmation.id == conf))
        conversation = await s.get(Conversation, cid)
    assert row is not None and row.status == ConfirmationStatus.WITHDRAWN
    assert row.decided_at is not None and row.consumed_at is None
    assert conversation is not None and conversation.turns == 2, "the refusal counts no turn"


async def test_yes_in_a_sentence_is_a_message_not_an_answer(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    await turn(agent, cid, CustomerText(JANE), VERIFY, RETURN_JEANS)
    events = await turn(
        agent, cid, CustomerText("yes but which label?"), act("reply", message="A Parcelo one.")
    )
    assert not [e for e in events if isinstance(e, ConfirmationDecided)]
    assert await count(agent, Return, Return.conversation_id == cid) == 0


async def test_an_expired_confirmation_cannot_be_approved(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    events = await turn(agent, cid, CustomerText(JANE), VERIFY, RETURN_JEANS)
    conf = next(e for e in events if isinstance(e, ConfirmationRequested)).confirmation_id
    ttl = agent.settings.policy.confirmation_ttl_minutes
    agent = replace(agent, clock=lambda: utcnow() + timedelta(minutes=ttl + 1))
    with pytest.raises(NoPendingConfirmation):
        await turn(agent, cid, ConfirmationAnswer(conf, True))


async def test_a_new_request_follows_the_withdrawn_one(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    first = await turn(agent, cid, CustomerText(JANE), VERIFY, RETURN_JEANS)
    old = next(e for e in first if isinstance(e, ConfirmationRequested)).confirmation_id
    both = act("create_return", order_id="482913", lines=[1, 2], reason="too small")
    events = await turn(agent, cid, CustomerText("and the shirt too"), both)
    assert ConfirmationWithdrawn(confirmation_id=old) in events, "answered in words first"
    assert any(isinstance(e, ConfirmationRequested) for e in events)
    with pytest.raises(WithdrawnConfirmation):
        await turn(agent, cid, ConfirmationAnswer(old, True))


class FailingModel:
    name = "failing"

    async def complete(self, request: ModelRequest) -> ModelStep:
        raise ModelError("connection refused")


async def test_a_failing_model_ends_the_turn_safely(agent: Agent) -> None:
    agent = replace(agent, model=FailingModel())
    cid = await start_conversation(agent.sessions, agent.settings)
    events = [e async for e in agent.run_turn(cid, CustomerText("hello"))]
    reply = next(e for e in events if isinstance(e, Reply))
    assert "colleague" in reply.text
    async with agent.sessions() as s:
        assert (await s.get_one(Conversation, cid)).status is ConversationStatus.ESCALATED


async def test_a_tool_that_crashes_changes_nothing_and_the_turn_goes_on(agent: Agent) -> None:
    spec = agent.guard.tools["create_return"]

    async def broken(ctx: Any, **kwargs: Any) -> Any:
        await spec.handler(ctx, **kwargs)  # writes the return ...
        raise RuntimeError("disk full")  # ... then fails: all of it must roll back

    agent.guard.tools["create_return"] = dataclasses.replace(spec, handler=broken)
    cid = await start_conversation(agent.sessions, agent.settings)
    events = await turn(agent, cid, CustomerText(JANE), VERIFY, RETURN_JEANS)
    conf = next(e for e in events if isinstance(e, ConfirmationRequested)).confirmation_id
    await turn(
        agent,
        cid,
        ConfirmationAnswer(conf, True),
        RETURN_JEANS,
        act("escalate", reason="tool failed"),
    )
    assert await count(agent, Return, Return.conversation_id == cid) == 0
    async with agent.sessions() as s:
        log = await s.scalar(
            select(ActionLog).where(
                ActionLog.conversation_id == cid,
                ActionLog.tool == "create_return",
                ActionLog.verdict == "allow",
            )
        )
    assert log is not None and log.observation == {
        "error": "internal_error",
        "message": "The tool failed. Apologise and escalate.",
    }


async def test_the_step_budget_ends_in_an_escalation(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    busy = [act("check_return_eligibility", order_id="482913", lines=[n]) for n in (1, 2, 3)]
    busy += [act("lookup_order", order_id=o) for o in ("482913", "482914", "482915")]
    busy += [act("list_orders")]
    assert len(busy) == agent.settings.max_steps - 1
    events = await turn(agent, cid, CustomerText(JANE), VERIFY, *busy)
    assert any(e.kind == "escalated" for e in events)
    assert (
        await count(agent, ActionLog, ActionLog.conversation_id == cid) == agent.settings.max_steps
    )


async def test_the_scripted_model_fails_loudly_when_it_runs_out(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    with pytest.raises(ScriptError):
        await turn(agent, cid, CustomerText("hi"))
    model = ScriptedModel([act("reply", message="a"), act("reply", message="b")])
    with pytest.raises(ScriptError):
        model.assert_complete()


async def test_a_long_conversation_keeps_the_prompt_bounded(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    for i in range(40):
        await turn(
            agent,
            cid,
            CustomerText(f"message {i} " + "blah " * 60),
            act("reply", message=" ".join(f"point {j}" for j in range(25))),
        )
    model = agent.model
    assert isinstance(model, ScriptedModel)
    last = model.calls[-1].messages[-1].content
    assert isinstance(last, str) and len(last) < agent.prompts.budget_chars
    assert "message 39" in last and "message 0 " not in last
    assert json.dumps(model.calls[0].messages[0].content) == json.dumps(
        model.calls[-1].messages[0].content
    )


class SlowModel:
    """Replies after the test lets it, so a second turn can arrive meanwhile."""

    name = "slow"

    def __init__(self) -> None:
        import asyncio

        self.release = asyncio.Event()

    async def complete(self, request: ModelRequest) -> ModelStep:
        await self.release.wait()
        return read_step(json.dumps(act("reply", message="ok")))


async def test_turns_of_one_conversation_are_serialized(agent: Agent) -> None:
    import asyncio

    from shopbot.errors import ConversationBusy

    slow = SlowModel()
    agent = replace(agent, model=slow)
    cid = await start_conversation(agent.sessions, agent.settings)
    other = await start_conversation(agent.sessions, agent.settings)

    async def run(c: str, text: str) -> list[TurnEvent]:
        return [e async for e in agent.run_turn(c, CustomerText(text))]

    first = asyncio.create_task(run(cid, "hello"))
    while await count(agent, Message, Message.conversation_id == cid) == 0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    with pytest.raises(ConversationBusy):
        await run(cid, "hello again")
    second = asyncio.create_task(run(other, "hi"))  # other conversations are not blocked
    slow.release.set()
    assert any(isinstance(e, Reply) for e in await first)
    assert any(isinstance(e, Reply) for e in await second)
    await run(cid, "now it's my turn")  # the lease was given back


async def test_a_crashed_workers_lease_runs_out(agent: Agent) -> None:
    from sqlalchemy import update

    cid = await start_conversation(agent.sessions, agent.settings)
    async with agent.sessions() as s:
        await s.execute(
            update(Conversation)
            .where(Conversation.id == cid)
            .values(turn_owner="dead-worker", turn_lease_until=utcnow() - timedelta(seconds=1))
        )
        await s.commit()
    await turn(agent, cid, CustomerText("hello"), act("reply", message="Hi!"))


async def test_the_conversation_is_free_once_turn_ended_is_seen(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    model = agent.model
    assert isinstance(model, ScriptedModel)
    model.extend([act("reply", message="Hi!"), act("reply", message="Again!")])
    async for event in agent.run_turn(cid, CustomerText("hello")):
        if event.kind == "turn_ended":
            # The first turn's generator has not finished; its last commit freed the lease.
            second = [e async for e in agent.run_turn(cid, CustomerText("hello again"))]
            assert any(isinstance(e, Reply) for e in second)
    model.assert_complete()


class WatchedStream(ScriptedModel):
    """Records whether its streams were closed, as a backend frees its generator there, and
    how many pieces they handed out."""

    closed = 0

    def __init__(self, outputs: list[Any]) -> None:
        super().__init__(outputs)
        self.handed: list[int] = []

    async def stream(self, request: ModelRequest) -> AsyncGenerator[StepDelta | ModelStep]:
        self.handed.append(0)
        try:
            async for piece in super().stream(request):
                self.handed[-1] += 1
                yield piece
        finally:
            self.closed += 1


async def test_a_turn_abandoned_mid_reply_closes_the_models_stream(agent: Agent) -> None:
    model = WatchedStream([act("reply", message="Let me tell you a long story about jeans.")])
    agent = dataclasses.replace(agent, model=model)
    cid = await start_conversation(agent.sessions, agent.settings)
    turn = agent.run_turn(cid, CustomerText("hello"))
    async for event in turn:
        if isinstance(event, ReplyChunk):
            break
    assert model.closed == 0, "the reply is still being written"
    await turn.aclose()
    assert model.closed == 1
    # The conversation is free again: the next message is accepted.
    model.extend([act("reply", message="Hi!")])
    assert [e async for e in agent.run_turn(cid, CustomerText("hi")) if isinstance(e, Reply)]


async def test_audit_rows_hold_sql_null_where_a_step_had_no_args_or_observation(
    agent: Agent,
) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    await turn(agent, cid, CustomerText("hello"), "not json", act("reply", message="Hi!"))
    async with agent.sessions() as s:
        rows = (
            await s.execute(
                select(ActionLog.tool, ActionLog.args.is_(None), ActionLog.observation.is_(None))
                .where(ActionLog.conversation_id == cid)
                .order_by(ActionLog.step)
            )
        ).all()
    assert [tuple(r) for r in rows] == [(None, True, True), ("reply", False, True)]


async def test_a_reply_looping_on_a_phrase_is_cut_short_and_retried(agent: Agent) -> None:
    looping = act("reply", message="You can't return it. " * 60)
    model = WatchedStream([looping, act("reply", message="Sorry, that one can't go back.")])
    agent = dataclasses.replace(agent, model=model)
    cid = await start_conversation(agent.sessions, agent.settings)
    events = [e async for e in agent.run_turn(cid, CustomerText("return it"))]
    failed = [e for e in events if isinstance(e, ParseFailed)]
    assert [f.error for f in failed] == [
        'The reply repeats "you can\'t return it" over and over: say it once.'
    ]
    # Decoding stopped soon after the fourth time round (a piece is a word here), not after
    # all 60 (248 pieces).
    assert model.closed == 2 and model.handed[0] < 40
    # The retry is not shown the loop again: a small model would copy it.
    retry = str(model.calls[1].messages[-1].content)
    assert "(a reply saying one thing over and over)" in retry
    assert "You can't return it" not in retry
    assert [e.text for e in events if isinstance(e, Reply)] == ["Sorry, that one can't go back."]


async def test_the_line_chat_answers_a_request_with_a_typed_yes(agent: Agent) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    model = agent.model
    assert isinstance(model, ScriptedModel)
    model.extend([VERIFY, RETURN_JEANS, RETURN_JEANS, act("reply", message="Done.")])
    lines, said = iter([JANE, "yes"]), []

    def read(_prompt: str) -> str:
        return next(lines, None) or _raise(EOFError())

    await chat(agent, cid, read=read, write=said.append)
    model.assert_complete()
    # The hint comes after the reply that says what would be done, not before it.
    hint = said.index("         (answer yes to confirm, no to cancel)")
    assert said[hint - 1].startswith("shopbot> Please confirm: Return Slim Fit Jeans (line 1)")
    assert said[-2:] == ["shopbot> Done.", ""]
    assert await count(agent, Return, Return.conversation_id == cid) == 1


def _raise(exc: Exception) -> str:
    raise exc


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # the lease reads the state
async def test_the_state_the_lease_brings_is_the_state_read_apart(agent: Agent) -> None:
    from shopbot.state import load_state
    from shopbot.turns import take_lease

    cid = await start_conversation(agent.sessions, agent.settings)
    await turn(agent, cid, CustomerText(JANE), VERIFY, act("reply", message="Verified."))
    await turn(agent, cid, CustomerText("and the shirt?"), act("reply", message="Which?"))
    now = utcnow()
    async with agent.sessions() as s:
        lease = await take_lease(s, cid, now, 30)
        assert lease.facts is not None
        brought = await load_state(s, lease.conversation, now, facts=lease.facts)
        apart = await load_state(s, lease.conversation, now)
        read = await s.execute(
            select(Message.role, Message.content)
            .where(Message.conversation_id == cid)
            .order_by(Message.id)
        )
        assert lease.facts.messages == [tuple(row) for row in read]
    assert dataclasses.asdict(brought) == dataclasses.asdict(apart)
    assert brought.customer_texts == [JANE, "and the shirt?"]
    assert [line.text for line in brought.history][-1] == "Which?"


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_on_postgresql_the_lease_commits_alone_and_a_failed_turn_gives_it_back(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.pipeline import PostgresWriter
    from shopbot.turns import take_lease

    cid = await start_conversation(agent.sessions, agent.settings)
    async with agent.sessions() as s:
        lease = await take_lease(s, cid, utcnow(), 30, commit_alone=True)
        async with agent.sessions() as other:  # seen by others before the turn commits
            row = await other.get(Conversation, cid)
            assert row is not None and row.turn_owner == lease.owner
        await s.rollback()  # takes nothing back
    async with agent.sessions() as s:
        row = await s.get(Conversation, cid)
        assert row is not None and (row.turn_owner, row.turns) == (lease.owner, 1)
        row.turn_owner = row.turn_lease_until = None
        await s.commit()

    async def failing(*_args: object) -> None:
        raise RuntimeError("the database went away")

    # A turn whose first commit fails stays counted, and gives the lease back.
    monkeypatch.setattr(PostgresWriter, "commit", failing)
    with pytest.raises(RuntimeError):
        await turn(agent, cid, CustomerText("hello"))
    async with agent.sessions() as s:
        row = await s.get(Conversation, cid)
        assert row is not None and (row.turn_owner, row.turns) == (None, 2)
    assert await count(agent, Message, Message.conversation_id == cid) == 0


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_lease_committed_alone_is_given_back_when_the_turn_fails_at_once(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shopbot.turns

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the row could not be read")

    cid = await start_conversation(agent.sessions, agent.settings)
    monkeypatch.setattr(shopbot.turns.StoredFacts, "of", broken)  # after the UPDATE commits
    with pytest.raises(RuntimeError):
        await turn(agent, cid, CustomerText("hello"))
    async with agent.sessions() as s:
        row = await s.get(Conversation, cid)
        assert row is not None and (row.turn_owner, row.turns) == (None, 1)


async def test_an_answer_to_no_confirmation_counts_no_turn(agent: Agent) -> None:
    """On PostgreSQL, where a customer's message takes its lease alone, an answer does not."""
    cid = await start_conversation(agent.sessions, agent.settings)
    with pytest.raises(NoPendingConfirmation):
        await turn(agent, cid, ConfirmationAnswer("no-such-confirmation", approve=True))
    async with agent.sessions() as s:
        row = await s.get(Conversation, cid)
        assert row is not None and (row.turn_owner, row.turns) == (None, 0)


class Recording(ScriptedModel):
    """A scripted model that keeps each step's per-step prompt."""

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[str] = []

    async def complete(self, request: ModelRequest) -> ModelStep:
        self.prompts.append(str(request.messages[-1].content))
        return await super().complete(request)


async def test_the_prompt_names_the_items_only_of_the_verified_customers_own_orders(
    agent: Agent,
) -> None:
    recording = Recording()
    agent = replace(agent, model=recording)
    cid = await start_conversation(agent.sessions, agent.settings)
    said = "Return the jeans from 482913 and the belt from 600123, jane.doe@example.com"
    await turn(agent, cid, CustomerText(said), VERIFY, act("reply", message="Checking."))
    before, after = recording.prompts
    assert "Items the customer named" not in before  # nothing before the identity check
    assert "Items the customer named in order 482913: line 1 (Slim Fit Jeans)" in after
    assert "600123:" not in after and "Leather Belt" not in after  # Tom's order stays his


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b", "\udfff"])
async def test_a_message_no_database_stores_is_refused_and_changes_nothing(
    agent: Agent, text: str
) -> None:
    """A NUL, or a lone surrogate (it raised out of the lease), is refused before anything
    is taken or stored."""
    cid = await start_conversation(agent.sessions, agent.settings)
    with pytest.raises(ConversationError, match="cannot be stored"):
        await turn(agent, cid, CustomerText(text))
    assert await count(agent, Message, Message.conversation_id == cid) == 0
    async with agent.sessions() as s:
        assert (await s.get_one(Conversation, cid)).turns == 0


@pytest.mark.parametrize("forged", ["\x00", "\ud800"])
async def test_an_answer_to_a_confirmation_id_no_database_stores_is_refused(
    agent: Agent, forged: str
) -> None:
    cid = await start_conversation(agent.sessions, agent.settings)
    with pytest.raises(NoPendingConfirmation):
        await turn(agent, cid, ConfirmationAnswer(forged, True))


async def test_model_output_no_database_stores_is_a_parse_failure_stored_with_fffd(
    agent: Agent,
) -> None:
    """A NUL in an escalation's reason raised out of the commit on PostgreSQL; raw output
    with a lone surrogate could not be stored at all."""
    cid = await start_conversation(agent.sessions, agent.settings)
    events = await turn(
        agent,
        cid,
        CustomerText("hello"),
        act("escalate", reason="help\x00me"),
        "\ud800 not an action",
        act("reply", message="Hi!"),
    )
    assert sum(isinstance(e, ParseFailed) for e in events) == 2
    assert isinstance(events[-2], Reply) and events[-2].text == "Hi!"
    async with agent.sessions() as s:
        raw = list(
            await s.scalars(
                select(ActionLog.raw_output)
                .where(ActionLog.conversation_id == cid)
                .order_by(ActionLog.step)
            )
        )
    assert raw[1] == "\ufffd not an action"
    assert "\\u0000" in raw[0]


async def test_a_confirmation_the_database_refuses_is_an_observation_not_a_denial(
    agent: Agent, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guard allows a side effect against the state read at the turn's start; spending
    # the confirmation is the effect's first write, and the database may refuse it (used or
    # expired since). The tool does not run, the guard's verdict stays as given, and the
    # model reads what happened as a tool error.
    cid = await start_conversation(agent.sessions, agent.settings)
    events = await turn(agent, cid, CustomerText(JANE), VERIFY, RETURN_JEANS)
    conf = next(e for e in events if isinstance(e, ConfirmationRequested)).confirmation_id

    async def refused(self: Recorder, confirmation_id: str, now: datetime) -> bool:
        return False

    monkeypatch.setattr(Recorder, "consume", refused)
    events = await turn(
        agent, cid, ConfirmationAnswer(conf, True), RETURN_JEANS, act("reply", message="Sorry.")
    )
    lapsed = [e for e in events if isinstance(e, ObservationMade) and e.error]
    assert [(e.tool, e.data["error"]) for e in lapsed] == [("create_return", "confirmation_lapsed")]
    assert not any(isinstance(e, ToolStarted) for e in events)
    assert await count(agent, Return, Return.conversation_id == cid) == 0
    async with agent.sessions() as s:
        row = await s.scalar(
            select(ActionLog)
            .where(ActionLog.conversation_id == cid, ActionLog.tool == "create_return")
            .order_by(ActionLog.id.desc())
        )
    assert row is not None and row.verdict == "allow"
    assert row.observation == {"error": "confirmation_lapsed", "message": LAPSED}
