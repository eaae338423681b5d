"""The terminal chat driven through Textual's Pilot, on a seeded database and a scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from time import monotonic

from sqlalchemy import func, select
from textual.color import Color
from textual.widgets import Button, DataTable, Input, Label, Static
from tui_support import (
    DONE,
    JANE,
    JUST_THE_JEANS,
    SIZE,
    VERIFIED,
    Harness,
    answer,
    confirmed_turn,
    return_turn,
    send,
    settle,
    step,
    verify_turn,
)

from db import (
    Confirmation,
    ConfirmationStatus,
    Conversation,
    OutboxEmail,
    Return,
    ShippingLabel,
)
from shopbot.app import build_agent
from shopbot.errors import ModelError
from shopbot.models.base import ModelRequest, ModelStep, StepDelta, read_step
from shopbot.models.scripted import Output, ScriptedModel
from shopbot.tui import ShopBotApp
from shopbot.tui.chat import CustomerMessageView, Note, ReplyView, Welcome
from shopbot.tui.confirmation import ConfirmationPrompt
from shopbot.tui.conversations import ConversationsScreen
from shopbot.tui.help import HelpScreen
from shopbot.tui.status import StatusBar
from shopbot.tui.steps import StepsPanel, StepView


def replies(app: ShopBotApp) -> list[str]:
    return [r.text for r in app.query(ReplyView)]


def notes(app: ShopBotApp) -> list[Note]:
    return list(app.query(Note))


def verdicts(app: ShopBotApp) -> list[tuple[str, str]]:
    return [(s.tool, s.verdict) for s in app.query(StepView)]


async def test_typing_a_message_shows_it_the_reply_and_each_step(harness: Harness) -> None:
    model = ScriptedModel(verify_turn())
    app = harness.app(model)
    async with app.run_test(size=SIZE) as pilot:
        assert app.query(Welcome)
        await pilot.press(*"hi")
        assert app.query_one("#message", Input).value == "hi"
        await send(pilot, JANE)

        assert not app.query(Welcome)
        assert [str(m.content) for m in app.query(CustomerMessageView)] == [JANE]
        assert replies(app) == [VERIFIED]
        assert verdicts(app) == [
            ("verify_identity", "allow"),
            ("lookup_order", "allow"),
            ("reply", "allow"),
        ]
        status = app.query_one(StatusBar)
        assert (status.customer, status.latency, status.working) == (
            "Jane Doe (verified)",
            status.latency,
            False,
        )
        assert status.latency is not None and status.latency > 0
        assert app.sub_title == JANE[:60]
        assert app.focused is app.query_one("#message", Input)
    model.assert_complete()


async def test_verdicts_are_colour_coded(harness: Harness) -> None:
    app = harness.app(
        [
            step("lookup_order", "Look it up.", order_id="482913"),
            step("reply", message="Could you tell me the email on order 482913?"),
        ]
    )
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "What's in order 482913?")
        denied, allowed = app.query(StepView)
        assert (denied.verdict, allowed.verdict) == ("deny", "allow")
        theme = app.theme_variables
        deny_label = denied.query_one(".verdict", Label)
        allow_label = allowed.query_one(".verdict", Label)
        assert str(deny_label.content) == "DENY"
        assert deny_label.styles.color == Color.parse(theme["text-error"])
        assert allow_label.styles.color == Color.parse(theme["text-success"])
        assert "not verified" in str(denied.query_one(".reason", Static).content).lower()


async def test_confirm_button_runs_exactly_the_pending_action(harness: Harness) -> None:
    model = ScriptedModel([*verify_turn(), *return_turn(), *confirmed_turn()])
    app = harness.app(model)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
        prompt = app.query_one(ConfirmationPrompt)
        assert prompt.open and prompt.tool == "create_return"
        assert prompt.args == {"order_id": "482913", "lines": [1], "reason": "doesn't fit"}
        assert ("create_return", "confirm") in verdicts(app)
        assert "Confirm or Cancel" in app.query_one("#message", Input).placeholder

        await answer(pilot, "confirm")

        assert prompt.state == "approved"
        assert replies(app)[-1] == DONE
        assert app.focused is app.query_one("#message", Input)
    model.assert_complete()
    async with harness.sessions() as session:
        assert (
            await session.scalar(
                select(func.count())
                .select_from(Return)
                .where(Return.order_id == "482913", Return.reason == "doesn't fit")
            )
            == 1
        )
        statuses = list(await session.scalars(select(Confirmation.status)))
        assert statuses == [ConfirmationStatus.CONSUMED]


async def test_cancel_button_and_typed_yes(harness: Harness) -> None:
    model = ScriptedModel(
        [
            *verify_turn(),
            *return_turn(),
            step("reply", message="No problem, I haven't registered anything."),
            *return_turn(),
            *confirmed_turn(),
        ]
    )
    app = harness.app(model)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
        await answer(pilot, "cancel")
        first = app.query(ConfirmationPrompt).first()
        assert first.state == "cancelled"
        assert replies(app)[-1] == "No problem, I haven't registered anything."

        await send(pilot, "Actually, yes, return the jeans please.")
        second = app.query(ConfirmationPrompt).last()
        assert second is not first and second.open
        await send(pilot, "yes")
        assert second.state == "approved"
        assert replies(app)[-1] == DONE
        said = [str(m.content) for m in app.query(CustomerMessageView)]
        assert said == [
            JANE,
            JUST_THE_JEANS,
            "✗ No, cancel",
            "Actually, yes, return the jeans please.",
            "✓ Yes, go ahead",
        ]
    model.assert_complete()


async def test_a_message_withdraws_the_open_request_and_a_new_one_may_follow(
    harness: Harness,
) -> None:
    other = step("create_return", order_id="482913", lines=[1, 2], reason="doesn't fit")
    app = harness.app([*verify_turn(), *return_turn(), other])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
        await send(pilot, "And the shirt too.")
        first, second = app.query(ConfirmationPrompt)
        assert (first.state, second.state) == ("withdrawn", "pending")
        assert first.query_one("#confirm", Button).disabled


async def test_never_mind_withdraws_the_request_and_a_late_confirm_does_nothing(
    harness: Harness,
) -> None:
    model = ScriptedModel(
        [
            *verify_turn(),
            *return_turn(),
            step("reply", message="All right, nothing will be returned."),
            step("reply", message="Anything else?"),
        ]
    )
    app = harness.app(model)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
        prompt = app.query_one(ConfirmationPrompt)
        assert prompt.open
        await send(pilot, "Actually never mind, keep it.")
        assert prompt.state == "withdrawn"
        assert "Withdrawn" in str(prompt.query_one(".outcome", Static).content)
        assert all(b.disabled for b in prompt.query(Button))
        assert replies(app)[-1] == "All right, nothing will be returned."
        assert "Confirm or Cancel" not in app.query_one("#message", Input).placeholder
        await send(pilot, "yes")  # no request is open: only a message
        assert prompt.state == "withdrawn" and replies(app)[-1] == "Anything else?"

        # A Confirm that arrives anyway (a click the screen had not caught up with) is
        # refused by the loop.
        errors = len(notes(app))
        prompt.post_message(ConfirmationPrompt.Answered(prompt, approve=True))
        deadline = monotonic() + 60
        while len(notes(app)) == errors:
            assert monotonic() < deadline, "the late answer was not answered"
            await pilot.pause(0.01)
        await settle(pilot)
        assert prompt.state == "withdrawn"
        assert "withdrawn" in notes(app)[-1].text and notes(app)[-1].kind == "error"
    model.assert_complete()
    async with harness.sessions() as session:
        returns = select(func.count()).where(Return.conversation_id == app.conversation_id)
        assert await session.scalar(returns) == 0
        assert await session.scalar(select(func.count()).select_from(ShippingLabel)) == 0
        assert await session.scalar(select(func.count()).select_from(OutboxEmail)) == 0
        statuses = list(await session.scalars(select(Confirmation.status)))
        assert statuses == [ConfirmationStatus.WITHDRAWN]


async def test_a_withdrawn_request_reads_as_withdrawn_when_resumed(harness: Harness) -> None:
    first = harness.app([*verify_turn(), *return_turn(), step("reply", message="Sure.")])
    async with first.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
        await send(pilot, "Hmm, let me think about it.")
    app = harness.app(conversation_id=first.conversation_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.query_one(ConfirmationPrompt).state == "withdrawn"
        assert "Confirm or Cancel" not in app.query_one("#message", Input).placeholder


async def test_resume_an_earlier_conversation_from_the_list(harness: Harness) -> None:
    first = harness.app([*verify_turn(), *return_turn()])
    async with first.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
    earlier = first.conversation_id

    model = ScriptedModel(confirmed_turn())
    app = harness.app(model)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await pilot.pause()
        assert isinstance(app.screen, ConversationsScreen)
        table = app.screen.query_one(DataTable[str])
        assert table.row_count == 1
        assert table.get_row_at(0)[1:] == [JANE[:60], "Jane Doe", "2", "open"]
        await pilot.press("enter")
        await pilot.pause()

        assert app.conversation_id == earlier
        assert [str(m.content) for m in app.query(CustomerMessageView)] == [JANE, JUST_THE_JEANS]
        assert replies(app)[0] == VERIFIED
        assert replies(app)[1].startswith(
            "Please confirm: Return Slim Fit Jeans (line 1) from order 482913"
        )
        assert [s.tool for s in app.query(StepView)] == [
            "verify_identity",
            "lookup_order",
            "reply",
            "check_return_eligibility",
            "create_return",
        ]
        prompt = app.query_one(ConfirmationPrompt)
        assert prompt.open, "a pending confirmation gets its buttons back"
        assert "Confirm or Cancel" in app.query_one("#message", Input).placeholder

        await answer(pilot, "confirm")
        assert prompt.state == "approved"
        assert replies(app)[-1] == DONE
    model.assert_complete()


async def test_resume_shows_decided_and_expired_requests_as_closed(harness: Harness) -> None:
    first = harness.app([*verify_turn(), *return_turn()])
    async with first.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
    earlier = first.conversation_id
    async with harness.sessions() as session:
        row = await session.scalar(select(Confirmation))
        assert row is not None
        row.expires_at = row.created_at  # it ran out while nobody answered
        await session.commit()

    app = harness.app(conversation_id=earlier)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert app.query_one(ConfirmationPrompt).state == "expired"
        assert "Confirm or Cancel" not in app.query_one("#message", Input).placeholder


async def test_an_unexpected_model_failure_is_shown_and_the_chat_goes_on(
    harness: Harness,
) -> None:
    def broken(request: ModelRequest) -> str:
        raise RuntimeError("the backend fell over")

    model = ScriptedModel([broken])
    app = harness.app(model)
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        [error] = notes(app)
        assert error.kind == "error" and "the backend fell over" in error.text
        assert not app.query(ReplyView), "no empty reply is left behind"
        assert not app.busy
        assert any("could not answer" in (n.title or "") for n in app._notifications)

        model.extend(verify_turn())
        await send(pilot, JANE)
        assert replies(app) == [VERIFIED]
    model.assert_complete()


async def test_a_model_error_ends_the_turn_safely_and_hands_over(harness: Harness) -> None:
    def unreachable(request: ModelRequest) -> str:
        raise ModelError("connection refused")

    app = harness.app([unreachable])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        assert "passed our conversation to a colleague" in replies(app)[0]
        [handover] = notes(app)
        assert handover.kind == "warning" and "connection refused" in handover.text
        assert app.query_one(StatusBar).escalated


async def test_a_script_that_runs_out_is_an_error_line(harness: Harness) -> None:
    app = harness.app([])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "hello?")
        [error] = notes(app)
        assert "ran out of outputs" in error.text


async def test_an_oversize_message_is_refused_visibly(harness: Harness) -> None:
    harness.settings = harness.settings.model_copy(update={"max_message_chars": 20})
    app = harness.app([])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, "x" * 21)
        [error] = notes(app)
        assert "limited to 20 characters" in error.text
    async with harness.sessions() as session:
        assert await session.scalar(select(func.sum(Conversation.turns))) in (None, 0)


async def test_the_ui_stays_responsive_while_the_model_thinks(harness: Harness) -> None:
    gate = asyncio.Event()

    async def slow(request: ModelRequest) -> ModelStep:
        await gate.wait()
        return read_step('{"action": {"tool": "reply", "args": {"message": "Hello!"}}}')

    class SlowModel(ScriptedModel):
        async def complete(self, request: ModelRequest) -> ModelStep:
            self.calls.append(request)
            return await slow(request)

    app = harness.app(SlowModel())
    async with app.run_test(size=SIZE) as pilot:
        pilot.app.query_one("#message", Input).value = "hello"
        await pilot.press("enter")
        await pilot.pause()
        assert app.busy and app.query_one(StatusBar).working
        assert app.query_one(ReplyView).has_class("-working")
        await pilot.press("ctrl+t")  # the UI answers keys while the turn runs
        assert not app.query_one(StepsPanel).display
        await pilot.press(*"next")
        assert app.query_one("#message", Input).value == "next"
        await pilot.press("enter")
        assert app.query_one("#message", Input).value == "next", "kept until ShopBot is done"
        gate.set()
        await settle(pilot)
        assert replies(app) == ["Hello!"] and not app.busy


class HeldModel(ScriptedModel):
    """Streams like the real backends, and holds the reply after its first word."""

    def __init__(self, outputs: list[Output], hold: asyncio.Event) -> None:
        super().__init__(outputs)
        self.hold = hold

    async def stream(self, request: ModelRequest) -> AsyncGenerator[StepDelta | ModelStep]:
        if len(self.calls) == 1 and "free forever" in str(self.outputs[0]):
            await self.hold.wait()  # before the step after a denied draft
        async for piece in super().stream(request):
            yield piece
            if isinstance(piece, StepDelta) and piece.raw.endswith('"Thanks'):
                await self.hold.wait()


async def test_a_reply_streams_in_as_the_model_writes_it(harness: Harness) -> None:
    hold = asyncio.Event()
    agent = build_agent(harness.settings, HeldModel(verify_turn(), hold), harness.sessions)
    app = ShopBotApp(agent)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one("#message", Input).value = JANE
        await pilot.press("enter")
        for _ in range(200):
            await pilot.pause(0.01)
            if app.query(ReplyView) and app.query_one(ReplyView).text:
                break
        reply = app.query_one(ReplyView)
        assert reply.text == "Thanks" and reply.has_class("-streaming")
        assert not reply.query_one(".activity").display, "no 'Thinking…' under a reply"
        hold.set()
        await settle(pilot)
        assert reply.text == VERIFIED and not reply.has_class("-streaming")


async def test_keys_new_conversation_steps_copy_help(harness: Harness, tmp_path: Path) -> None:
    app = harness.app(verify_turn())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+y")
        assert "Nothing to copy" in [*app._notifications][-1].message
        await send(pilot, JANE)
        cid = app.conversation_id

        await pilot.press("ctrl+y")
        saved = tmp_path / "transcripts" / f"{cid}.md"
        assert saved.read_text().count("**ShopBot:**") == 1
        assert f"**You:** {JANE}" in saved.read_text()

        await pilot.press("ctrl+t")
        assert not app.query_one(StepsPanel).display
        await pilot.press("ctrl+t")
        assert app.query_one(StepsPanel).display

        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)

        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.conversation_id is None and app.query(Welcome)
        assert not app.query(StepView) and not app.query(ReplyView)
        assert app.query_one(StatusBar).customer == ""
        assert app.sub_title == "New conversation"


async def test_an_unmigrated_database_says_how_to_set_it_up(tmp_path: Path) -> None:
    from shopbot.app import open_database
    from tests.plugin import settings_for

    settings = settings_for(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path)
    engine, sessions = open_database(settings)
    try:
        app = ShopBotApp(build_agent(settings, ScriptedModel(), sessions))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            [error] = notes(app)
            assert "shopbot db upgrade" in error.text
    finally:
        await engine.dispose()


async def test_an_unanswered_confirmation_expires_on_screen(harness: Harness) -> None:
    policy = harness.settings.policy.model_copy(update={"confirmation_ttl_minutes": 0})
    harness.settings = harness.settings.model_copy(update={"policy": policy})
    app = harness.app([*verify_turn(), *return_turn()])
    async with app.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
        await send(pilot, JUST_THE_JEANS)
        prompt = app.query_one(ConfirmationPrompt)
        await pilot.pause(0.3)
        assert prompt.state == "expired"
        assert app.query_one("#message", Input).placeholder.startswith("Write to ShopBot")


async def test_a_turn_that_broke_half_way_reads_as_unfinished_when_resumed(
    harness: Harness,
) -> None:
    def broken(request: ModelRequest) -> str:
        raise RuntimeError("killed")

    first = harness.app([verify_turn()[0], broken])
    async with first.run_test(size=SIZE) as pilot:
        await send(pilot, JANE)
    app = harness.app(conversation_id=first.conversation_id)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert [s.tool for s in app.query(StepView)] == ["verify_identity"]
        assert [n.text for n in notes(app)][-1] == "ShopBot did not finish this turn."
        assert app.query_one(StatusBar).customer == "Jane Doe (verified)"


async def test_a_narrow_terminal_shows_the_steps_on_demand(harness: Harness) -> None:
    app = harness.app()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(StepsPanel)
        assert not panel.display
        await pilot.press("ctrl+t")
        assert panel.display
        await pilot.press("ctrl+t")
        assert not panel.display


async def test_a_draft_the_guard_denies_is_dropped(harness: Harness) -> None:
    uncited = step("reply", message="Returns are free forever.", citations=["made-up#free"])
    hold = asyncio.Event()
    model = HeldModel([uncited, step("reply", message="Let me check.")], hold)
    app = ShopBotApp(build_agent(harness.settings, model, harness.sessions))
    async with app.run_test(size=SIZE) as pilot:
        app.query_one("#message", Input).value = "are returns free?"
        await pilot.press("enter")
        for _ in range(300):
            await pilot.pause(0.01)
            if len(model.calls) == 2:  # the denied draft is behind us, the next step waits
                break
        await pilot.pause(0.05)
        assert app.query_one(ReplyView).text == ""
        hold.set()
        await settle(pilot)
        assert replies(app) == ["Let me check."]
