"""`ShopBotApp`: the Textual chat. Turns run in a worker; the UI never waits for the model.

    input / Confirm button -> worker: Agent.run_turn -> events -> Presenter -> panes

Whatever a turn raises is shown in the chat and the app carries on: the conversation is in
the database, so the next message continues it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

from sqlalchemy.exc import DBAPIError
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.reactive import reactive, var
from textual.widgets import Footer, Header, Input

from shopbot.errors import ShopBotError
from shopbot.loop import Agent, ConfirmationAnswer, CustomerText, Incoming, typed_answer
from shopbot.tui.chat import ChatView
from shopbot.tui.confirmation import ConfirmationPrompt
from shopbot.tui.conversations import ConversationsScreen
from shopbot.tui.format import when
from shopbot.tui.help import HelpScreen
from shopbot.tui.history import conversation_info, list_conversations, load_conversation
from shopbot.tui.presenter import Presenter, decision_text
from shopbot.tui.status import StatusBar, database_label
from shopbot.tui.steps import StepsPanel

log = logging.getLogger(__name__)

PLACEHOLDER = "Write to ShopBot as a customer would, then press Enter"
PLACEHOLDER_CONFIRM = "Press Confirm or Cancel above (or type yes / no), or write a message"
PLACEHOLDER_BUSY = "ShopBot is answering… you can type your next message"
SETUP_HINT = "run `shopbot db upgrade` and `shopbot db seed` (or `make db`), then start again"


class ShopBotApp(App[None]):
    """The terminal chat with ShopBot, on one `Agent` (model, database, settings)."""

    TITLE = "ShopBot"
    DEFAULT_CSS = """
    #body { height: 1fr; }
    #message { margin: 0 1; }
    /* Below 110 columns the chat gets the room: steps on demand, narrower margins. */
    Screen.-narrow StepsPanel { display: none; width: 60%; }
    Screen.-narrow CustomerMessageView { margin-left: 4; }
    Screen.-narrow ReplyView, Screen.-narrow ConfirmationPrompt { margin-right: 2; }
    """
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]  # noqa: RUF012 - as Textual declares it
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+n", "new_conversation", "New"),
        Binding("ctrl+o", "conversations", "Conversations"),
        Binding("ctrl+t", "toggle_steps", "Steps"),
        Binding("ctrl+y", "copy_transcript", "Copy transcript"),
        Binding("f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]
    AUTO_FOCUS = "#message"

    conversation_id: var[str | None] = var[str | None](None)
    """The conversation on screen; None until the first message creates it."""
    show_steps: reactive[bool] = reactive(True, init=False, always_update=True)
    """Whether the agent steps panel is shown (by default only on wide terminals)."""
    busy: reactive[bool] = reactive(False, init=False)
    """A turn is running; a new one waits until it ends."""

    def __init__(self, agent: Agent, *, conversation_id: str | None = None) -> None:
        super().__init__()
        self.agent = agent
        self._resume_id = conversation_id

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            yield ChatView()
            yield StepsPanel()
        yield Input(placeholder=PLACEHOLDER, id="message")
        yield StatusBar()
        yield Footer()

    async def on_mount(self) -> None:
        status = self.query_one(StatusBar)
        status.model = self.agent.model.name
        status.database = database_label(self.agent.settings.db_url)
        self.view = Presenter(
            self.query_one(ChatView), self.query_one(StepsPanel), status, self.agent.clock
        )
        self.sub_title = "New conversation"
        try:
            await list_conversations(self.agent.sessions, limit=1)
        except DBAPIError as exc:
            log.warning("database not usable: %s", exc)
            await self.view.note(f"The database is not ready ({exc.orig}); {SETUP_HINT}.", "error")
            return
        if self._resume_id is not None:
            await self.open_conversation(self._resume_id)
        else:
            await self.view.reset(welcome=True)

    @property
    def message_input(self) -> Input:
        return self.query_one("#message", Input)

    def watch_show_steps(self, show: bool) -> None:
        self.query_one(StepsPanel).display = show

    def watch_busy(self, busy: bool) -> None:
        self.query_one(StatusBar).working = busy
        self._update_placeholder()
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("new_conversation", "conversations") and self.busy:
            return None  # shown dimmed: they wait until the turn ends
        return True

    @on(Input.Submitted, "#message")
    async def _send(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        if self.busy:
            self.notify("ShopBot is still answering; send this when it is done.", timeout=3)
            return
        event.input.clear()
        prompt = self.view.open_prompt()
        if prompt is not None and (approve := typed_answer(text)) is not None:
            await self._answer(prompt, approve)
            return
        if self.conversation_id is None and not await self._start_conversation():
            return
        self.busy = True
        await self.view.open_turn(text)
        self.run_turn(CustomerText(text))

    @on(ConfirmationPrompt.Answered)
    async def _answered(self, message: ConfirmationPrompt.Answered) -> None:
        if self.busy:
            self.notify("ShopBot is still answering; answer when it is done.", timeout=3)
            return
        await self._answer(message.prompt, message.approve)

    @on(ConfirmationPrompt.Changed)
    def _prompt_changed(self) -> None:
        self._update_placeholder()

    async def _answer(self, prompt: ConfirmationPrompt, approve: bool) -> None:
        self.busy = True
        prompt.state = "sending"
        self.message_input.focus()
        await self.view.open_turn(decision_text(approve))
        self.run_turn(ConfirmationAnswer(prompt.confirmation_id, approve))

    async def _start_conversation(self) -> bool:
        from shopbot.app import start_conversation

        try:
            self.conversation_id = await start_conversation(
                self.agent.sessions, self.agent.settings, channel="tui"
            )
        except Exception as exc:
            log.exception("could not start a conversation")
            await self.view.note(f"Could not start a conversation: {exc}", "error")
            return False
        return True

    @work(group="turn", exit_on_error=False)
    async def run_turn(self, incoming: Incoming) -> None:
        """One turn of the agent; whatever fails is shown and the chat carries on."""
        assert self.conversation_id is not None
        try:
            async for event in self.agent.run_turn(self.conversation_id, incoming):
                await self.view.show(event, live=True)
        except ShopBotError as exc:
            await self._failed(str(exc))
        except Exception as exc:
            log.exception("turn failed in %s", self.conversation_id)
            await self._failed(f"Something went wrong: {type(exc).__name__}: {exc}")
        finally:
            await self._refresh()
            self.busy = False
            if self.focused is None or self.focused.disabled:
                self.message_input.focus()

    async def _failed(self, message: str) -> None:
        await self.view.failed(message)
        self.notify(message, title="ShopBot could not answer", severity="error")

    async def _refresh(self) -> None:
        """Who the customer is, the title, and how open confirmations stand, from the DB."""
        if self.conversation_id is None:
            return
        info = await conversation_info(self.agent.sessions, self.conversation_id)
        if info is not None:
            self.view.turns = info.turns
            self.sub_title = info.title or "New conversation"
            status = self.query_one(StatusBar)
            status.customer = f"{info.customer} (verified)" if info.customer else ""
            status.escalated = info.status == "escalated"
        if self.view.waiting():
            now = self.agent.clock()
            stored = await load_conversation(self.agent.sessions, self.conversation_id, now)
            self.view.settle(stored.confirmations if stored else {})

    def _update_placeholder(self) -> None:
        if self.busy:
            self.message_input.placeholder = PLACEHOLDER_BUSY
        else:
            open_prompt = self.view.open_prompt() is not None
            self.message_input.placeholder = PLACEHOLDER_CONFIRM if open_prompt else PLACEHOLDER

    async def open_conversation(self, conversation_id: str) -> None:
        """Show a stored conversation as it happened, and continue it."""
        now = self.agent.clock()
        stored = await load_conversation(self.agent.sessions, conversation_id, now)
        if stored is None:
            await self.view.note(f"There is no conversation {conversation_id}.", "error")
            return
        await self.view.reset(welcome=False)
        self.conversation_id = conversation_id
        turns = stored.info.turns
        await self.view.note(
            f"Resumed the conversation of {when(stored.info.updated_at, now)} "
            f"({turns} turn{'s' if turns != 1 else ''}). Write to carry on."
        )
        await self.view.replay(stored.events)
        self.view.settle(stored.confirmations)
        await self._refresh()
        self.query_one(ChatView).scroll_end(animate=False)

    async def action_new_conversation(self) -> None:
        self.conversation_id = None
        self.sub_title = "New conversation"
        await self.view.reset(welcome=True)
        self.message_input.focus()

    async def action_conversations(self) -> None:
        try:
            found = await list_conversations(self.agent.sessions)
        except DBAPIError as exc:
            self.notify(f"Could not read the conversations: {exc.orig}", severity="error")
            return
        self.push_screen(ConversationsScreen(found, self.agent.clock()), self._resume)

    async def _resume(self, conversation_id: str | None) -> None:
        if conversation_id is not None:
            await self.open_conversation(conversation_id)
        self.message_input.focus()

    def action_toggle_steps(self) -> None:
        self.show_steps = not self.query_one(StepsPanel).display

    def action_help(self) -> None:
        ttl = self.agent.settings.policy.confirmation_ttl_minutes
        self.push_screen(HelpScreen(confirmation_minutes=ttl))

    def action_copy_transcript(self) -> None:
        """Copy the transcript (OSC 52) and save it, for terminals that ignore the clipboard."""
        if not self.view.transcript or self.conversation_id is None:
            self.notify("Nothing to copy yet.", timeout=3)
            return
        text = self.view.markdown(self.sub_title or "Conversation", self.conversation_id)
        self.copy_to_clipboard(text)
        path = Path(self.agent.settings.data_dir) / "transcripts" / f"{self.conversation_id}.md"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.notify(f"Copied to the clipboard; saving failed: {exc}", severity="warning")
            return
        self.notify(f"Copied to the clipboard and saved to {path}", title="Transcript")


__all__ = ["ShopBotApp"]
