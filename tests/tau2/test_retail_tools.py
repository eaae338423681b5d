"""The retail tools beyond what the ground-truth replay shows: arithmetic without `eval`,
the desk chosen by configuration, and ShopBot's return flow on top of a retail return."""

from __future__ import annotations

from pathlib import Path

import pytest

from db import ActionLog, Conversation
from db.engine import create_engine, session_factory
from shopbot.actions import Action
from shopbot.app import build_agent
from shopbot.errors import ToolRetry
from shopbot.models.base import ToolCall
from shopbot.models.scripted import ScriptedModel
from shopbot.state import load_state, load_step_facts
from shopbot.tau2.data import GroundTruthAction, Task
from shopbot.tau2.replay import Replayer
from tests.plugin import settings_for
from tools.retail.reads import evaluate


@pytest.mark.parametrize(
    ("expression", "result"),
    [("2 + 2", 4.0), ("(1 + 2) * 3 / 4", 2.25), ("-5 + 10.5", 5.5), ("652.61 + 473.43", 1126.04)],
)
def test_calculate_does_arithmetic(expression: str, result: float) -> None:
    assert round(evaluate(expression), 2) == result


@pytest.mark.parametrize(
    "expression", ["__import__('os')", "x + 1", "1 / 0", "(1 + ", "9 ** 9 ** 9"]
)
def test_calculate_refuses_anything_else(expression: str) -> None:
    # Powers too, unlike tau2's eval: 9 ** 9 ** 9 would hold the worker for minutes.
    with pytest.raises(ToolRetry):
        evaluate(expression)


def test_the_desk_setting_chooses_the_toolset(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    sessions = session_factory(engine)
    returns = build_agent(settings_for("sqlite://", tmp_path), ScriptedModel(), sessions)
    retail = build_agent(
        settings_for("sqlite://", tmp_path, desk="retail"), ScriptedModel(), sessions
    )
    assert "create_return" in returns.schema.names
    assert "cancel_pending_order" not in returns.schema.names
    assert {"cancel_pending_order", "find_user_id_by_email", "send_return_label"} <= set(
        retail.schema.names
    )
    assert "create_return" not in retail.schema.names
    assert set(retail.guard.tools) == set(retail.schema.tools)


async def test_a_retail_return_continues_into_the_label_flow(
    tau2_sqlite_url: str, tmp_path: Path
) -> None:
    engine = create_engine(tau2_sqlite_url)
    sessions = session_factory(engine)
    replayer = Replayer(sessions, settings_for(tau2_sqlite_url, tmp_path))
    task = Task(
        id="return",
        actions=(
            GroundTruthAction("r0", "find_user_id_by_name_zip", {"first_name": "Yusuf", "last_name": "Rossi", "zip": "19122"}),
            GroundTruthAction("r1", "return_delivered_order_items", {"order_id": "#W2378156", "item_ids": ["4202497723"], "payment_method_id": "credit_card_9513926"}),
        ),
        instructions={},
        communicate_info=(),
    )  # fmt: skip
    try:
        conversation_id = await replayer.start(task)
        outcomes = [await replayer.run(conversation_id, a) for a in task.actions]
        assert [o.error for o in outcomes] == [False, False], outcomes
        return_id = outcomes[1].detail["return_id"]
        assert outcomes[1].detail["order"]["status"] == "return requested"
        # The guard lets ShopBot's own label tool complete this return, once, here.
        label = replayer.schema.parse(ToolCall("send_return_label", {"return_id": return_id}))
        assert isinstance(label, Action)
        async with sessions() as session:
            conversation = await session.get_one(Conversation, conversation_id)
            state = await load_state(session, conversation, conversation.created_at)
            await load_step_facts(
                session, state, label.args, replayer.guard.tools["send_return_label"]
            )
            assert replayer.guard.check(label, state).decision == "allow"
            state.conversation_id = "another conversation"
            assert replayer.guard.check(label, state).decision == "deny"
    finally:
        await engine.dispose()


async def test_failed_lookups_are_bounded(tau2_sqlite_url: str, tmp_path: Path) -> None:
    engine = create_engine(tau2_sqlite_url)
    sessions = session_factory(engine)
    guard = Replayer(sessions, settings_for(tau2_sqlite_url, tmp_path)).guard
    limit = guard.policy.max_verification_attempts
    conversation = Conversation(id="lookups", channel="test")

    def logged(step: int, tool: str, observation: dict[str, object]) -> ActionLog:
        return ActionLog(
            conversation_id="lookups", turn=1, step=step, raw_output="", tool=tool,
            verdict="allow", observation=observation,
        )  # fmt: skip

    try:
        async with sessions() as session:
            session.add(conversation)
            await session.flush()
            session.add(logged(0, "find_user_id_by_email", {"user_id": "someone_1"}))  # found
            session.add(logged(0, "calculate", {"error": "invalid_expression"}))  # not a lookup
            for step in range(1, limit):
                session.add(logged(step, "find_user_id_by_name_zip", {"error": "not_found"}))
            await session.commit()
            state = await load_state(session, conversation, conversation.created_at)
            assert state.failed_verifications == limit - 1
            assert "find_user_id_by_email" in guard.allowed(state)
            session.add(logged(limit, "find_user_id_by_email", {"error": "not_found"}))
            await session.commit()
            state = await load_state(session, conversation, conversation.created_at)
            assert state.failed_verifications == limit
            assert not {"find_user_id_by_email", "find_user_id_by_name_zip"} & guard.allowed(state)
    finally:
        await engine.dispose()
