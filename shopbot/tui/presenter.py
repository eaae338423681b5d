"""`Presenter`: a conversation's events -> widgets in the chat pane, steps panel and status bar.

Live turns and resumed ones go through the same `show`, so a resumed conversation looks as
it did live. What is said after a reply (a confirmation box, a hand-over note) waits until
the reply is on screen, so it reads in order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual.widget import Widget

from db import ConfirmationStatus
from shopbot.events import (
    ActionProposed,
    ConfirmationDecided,
    ConfirmationRequested,
    ConfirmationWithdrawn,
    CustomerMessage,
    Escalated,
    Event,
    ObservationMade,
    ParseFailed,
    Reply,
    ReplyChunk,
    StaffJoined,
    StaffLeft,
    StaffMessage,
    StaffToolRan,
    Thought,
    ToolStarted,
    TurnEnded,
    VerdictGiven,
)
from shopbot.tui.chat import ChatView, CustomerMessageView, Note, NoteKind, ReplyView, Welcome
from shopbot.tui.confirmation import ConfirmationPrompt, State
from shopbot.tui.format import shorten, source, tool_phrase
from shopbot.tui.history import StoredEvent
from shopbot.tui.status import StatusBar
from shopbot.tui.steps import StepsPanel

_AFTER_DECISION: dict[ConfirmationStatus, State] = {
    ConfirmationStatus.PENDING: "pending",
    ConfirmationStatus.SUPERSEDED: "superseded",
    ConfirmationStatus.EXPIRED: "expired",
    ConfirmationStatus.CANCELLED: "cancelled",
    ConfirmationStatus.WITHDRAWN: "withdrawn",
}


class Presenter:
    """Keeps what the panes need between events: the reply on its way, open confirmations,
    the transcript."""

    def __init__(
        self, chat: ChatView, steps: StepsPanel, status: StatusBar, clock: Callable[[], datetime]
    ) -> None:
        self.chat, self.steps, self.status, self.clock = chat, steps, status, clock
        self.turns = 0
        """Turns of the conversation so far (the one on its way included)."""
        self.prompts: dict[str, ConfirmationPrompt] = {}
        self.transcript: list[tuple[str, str]] = []
        """(who, what) as the customer saw it: You, ShopBot, Note."""
        self._reply: ReplyView | None = None
        self._after_reply: list[Widget] = []

    async def reset(self, *, welcome: bool) -> None:
        self.turns, self.prompts, self.transcript = 0, {}, []
        self._reply, self._after_reply = None, []
        await self.chat.clear()
        await self.steps.clear()
        self.status.customer, self.status.latency, self.status.escalated = "", None, False
        if welcome:
            await self.chat.add(Welcome())

    async def open_turn(self, said: str) -> None:
        """Show the customer's side of a live turn at once; the reply follows as it comes."""
        await self.chat.query(Welcome).remove()
        self.turns += 1
        await self._customer(said)
        self._reply = ReplyView()
        await self.chat.add(self._reply)
        self.chat.scroll_end(animate=False)

    async def replay(self, events: list[StoredEvent]) -> None:
        """A stored conversation, turn by turn; a turn that stopped half-way says so."""
        turn, ended = 0, True
        for item in events:
            if item.turn != turn:
                if not ended:
                    await self._interrupted()
                turn, ended = item.turn, False
                self.turns = turn
            await self.show(item.event, live=False)
            ended = ended or isinstance(item.event, TurnEnded)
        if not ended:
            await self._interrupted()

    async def show(self, event: Event, *, live: bool) -> None:
        match event:
            case CustomerMessage(text=text):
                if not live:  # a live turn showed it when it was sent
                    await self._customer(text)
            case ConfirmationDecided(confirmation_id=cid, approved=approved):
                if (prompt := self.prompts.get(cid)) is not None:
                    prompt.state = "approved" if approved else "cancelled"
                if not live:
                    await self._customer(decision_text(approved))
            case ConfirmationWithdrawn(confirmation_id=cid):
                if (prompt := self.prompts.get(cid)) is not None:
                    prompt.state = "withdrawn"
            case Thought() | ActionProposed() | VerdictGiven() | ParseFailed() | ObservationMade():
                await self.steps.show(event)
                if _drops_draft(event) and self._reply is not None:
                    await self._reply.retract()
                if live and self._reply is not None:
                    self._reply.activity = _activity(event) or self._reply.activity
            case ToolStarted() | StaffToolRan():
                pass  # the customer's words for a step: the terminal shows the step itself
            case ReplyChunk(text=text):
                await (await self._reply_view()).stream(text)
            case Reply(text=text, citations=citations):
                await (await self._reply_view()).finish(text, citations)
                notes = "".join(f"\n  [{i}] {source(c)}" for i, c in enumerate(citations, 1))
                self.transcript.append(("ShopBot", text + notes))
                self._reply = None
                await self._flush_after_reply()
            case ConfirmationRequested():
                for prompt in self.prompts.values():
                    if prompt.state in ("pending", "sending"):
                        prompt.state = "superseded"
                prompt = ConfirmationPrompt(
                    event.confirmation_id,
                    event.summary,
                    event.tool,
                    event.args,
                    event.expires_at,
                    now=self.clock(),
                )
                self.prompts[event.confirmation_id] = prompt
                self._after_reply.append(prompt)
            case Escalated(reason=reason):
                await self.steps.show(event)
                text = f"ShopBot handed this conversation to a human colleague ({shorten(reason, 120)})."
                self._after_reply.append(Note(text, "warning"))
            case StaffJoined(name=name, shop=shop):
                await self.note(f"{name} from {shop} joined the conversation.")
            case StaffMessage(name=name, shop=shop, text=text):
                await self.note(f"{name}, {shop}: {text}")
            case StaffLeft(name=name):
                await self.note(f"{name} left the conversation. ShopBot is back.")
            case TurnEnded(ms=ms):
                await self.steps.show(event)
                self.status.latency = ms
                await self._flush_after_reply()

    async def failed(self, message: str) -> None:
        """The turn stopped with an error: no empty reply is left behind; the error shows."""
        await self._drop_empty_reply()
        said = message if message.endswith((".", "!", "?")) else message + "."
        await self.note(f"{said} The conversation is saved; you can write again.", "error")

    async def note(self, text: str, kind: NoteKind = "info") -> None:
        self.transcript.append(("Note", text))
        await self.chat.add(Note(text, kind))

    def open_prompt(self) -> ConfirmationPrompt | None:
        """The confirmation the customer can answer now, if any."""
        return next((p for p in reversed(self.prompts.values()) if p.open), None)

    def waiting(self) -> list[ConfirmationPrompt]:
        return [p for p in self.prompts.values() if p.state in ("pending", "sending")]

    def settle(self, statuses: dict[str, ConfirmationStatus]) -> None:
        """Waiting prompts take their state from the database: still open, or how they closed."""
        for prompt in self.waiting():
            status = statuses.get(prompt.confirmation_id)
            prompt.state = _AFTER_DECISION.get(status, "closed") if status else "closed"

    def markdown(self, title: str, conversation_id: str) -> str:
        """The transcript as Markdown."""
        lines = [f"# ShopBot: {title}", "", f"Conversation `{conversation_id}`", ""]
        for who, text in self.transcript:
            lines += [f"**{who}:** {text}", ""]
        return "\n".join(lines)

    async def _customer(self, said: str) -> None:
        self.transcript.append(("You", said))
        await self.chat.add(CustomerMessageView(said))
        await self.steps.begin_turn(self.turns, said)

    async def _reply_view(self) -> ReplyView:
        if self._reply is None:
            self._reply = ReplyView()
            await self.chat.add(self._reply)
        return self._reply

    async def _drop_empty_reply(self) -> None:
        if self._reply is not None and not self._reply.text:
            await self._reply.remove()
        self._reply = None
        await self._flush_after_reply()

    async def _flush_after_reply(self) -> None:
        widgets, self._after_reply = self._after_reply, []
        for widget in widgets:
            if isinstance(widget, Note):
                self.transcript.append(("Note", widget.text))
            await self.chat.add(widget)

    async def _interrupted(self) -> None:
        await self.steps.interrupted()
        await self._drop_empty_reply()
        await self.note("ShopBot did not finish this turn.", "warning")


def decision_text(approve: bool) -> str:
    """The customer's side of a decision; the confirmation box above says what it was for."""
    return "✓ Yes, go ahead" if approve else "✗ No, cancel"


def _activity(event: Event) -> str | None:
    """What the reply box says ShopBot is doing while a step runs or the next is thought of."""
    match event:
        case ActionProposed(step=step, tool=tool):
            return f"Step {step}: {tool_phrase(tool)}…"
        case ObservationMade(step=step) | ParseFailed(step=step):
            return f"Thinking about step {step + 1}…"
        case VerdictGiven(step=step, decision="deny"):
            return f"Step {step} was refused; thinking again…"
        case _:
            return None


__all__ = ["Presenter", "decision_text"]


def _drops_draft(event: Event) -> bool:
    """A step that streamed reply text and then did not parse or was denied."""
    return isinstance(event, ParseFailed) or (
        isinstance(event, VerdictGiven) and event.decision == "deny"
    )
