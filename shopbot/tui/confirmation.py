"""Confirm / Cancel for one side effect, bound to the exact action the guard is holding."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Button, Label, Static

from shopbot.tui.format import arguments, clock

State = Literal[
    "pending", "sending", "approved", "cancelled", "superseded", "expired", "withdrawn", "closed"
]

OUTCOMES: dict[State, str] = {
    "pending": "",
    "sending": "Sending your answer…",
    "approved": "✓ You confirmed this.",
    "cancelled": "✗ You cancelled this.",
    "superseded": "Replaced by a newer request.",
    "expired": "This request has expired; ask ShopBot again if you still want it.",
    "withdrawn": "Withdrawn: you wrote instead of confirming, so nothing was done.",
    "closed": "This request is no longer open.",
}


class ConfirmationPrompt(Vertical):
    """Asks the customer to approve one pending action: its summary, tool and arguments."""

    DEFAULT_CSS = """
    ConfirmationPrompt {
        height: auto;
        border: round $warning;
        border-title-color: $warning;
        border-title-style: bold;
        background: $warning 8%;
        margin: 1 14 0 1;
        padding: 0 1;
        & > .summary { text-style: bold; }
        & > .action { color: $text-muted; }
        & > Horizontal { height: auto; margin-top: 1; }
        & Button { margin-right: 2; min-width: 12; }
        & .expiry { color: $text-muted; padding: 1 0 0 1; }
        & > .outcome { display: none; margin-top: 1; }
        &.-decided { border: round $panel; border-title-color: $text-muted; background: transparent; }
        &.-decided > Horizontal { display: none; }
        &.-decided > .outcome { display: block; }
        &.-approved > .outcome { color: $text-success; }
        &.-cancelled > .outcome, &.-expired > .outcome, &.-withdrawn > .outcome {
            color: $text-muted;
        }
    }
    """

    state: reactive[State] = reactive[State]("pending")
    """Waiting for an answer, sending it, or how it ended."""

    class Changed(Message):
        """The prompt opened, closed or changed state."""

        def __init__(self, prompt: ConfirmationPrompt) -> None:
            super().__init__()
            self.prompt = prompt

    class Answered(Message):
        """The customer pressed Confirm or Cancel."""

        def __init__(self, prompt: ConfirmationPrompt, approve: bool) -> None:
            super().__init__()
            self.prompt = prompt
            self.approve = approve

        @property
        def confirmation_id(self) -> str:
            return self.prompt.confirmation_id

    def __init__(
        self,
        confirmation_id: str,
        summary: str,
        tool: str,
        args: dict[str, Any],
        expires_at: datetime,
        *,
        now: datetime,
        state: State = "pending",
    ) -> None:
        super().__init__()
        self.confirmation_id = confirmation_id
        self.summary = summary
        self.tool = tool
        self.args = args
        self.expires_at = expires_at
        self._seconds_left = (expires_at - now).total_seconds()
        self.border_title = "Your confirmation is needed"
        self.set_reactive(ConfirmationPrompt.state, state)

    def compose(self) -> ComposeResult:
        yield Static(Content(self.summary), classes="summary")
        yield Static(Content(f"{self.tool}  {arguments(self.args)}"), classes="action")
        with Horizontal():
            yield Button("Confirm", variant="success", id="confirm")
            yield Button("Cancel", variant="error", id="cancel")
            yield Label(f"open until {clock(self.expires_at)}", classes="expiry")
        yield Static(OUTCOMES[self.state], classes="outcome")

    def on_mount(self) -> None:
        self._show(self.state)
        self.set_timer(max(self._seconds_left, 0.1), self._expire)

    def _expire(self) -> None:
        if self.open:
            self.state = "expired"

    @property
    def open(self) -> bool:
        return self.state == "pending"

    def watch_state(self, state: State) -> None:
        if self.is_mounted:
            self._show(state)

    def _show(self, state: State) -> None:
        decided = state not in ("pending", "sending")
        self.set_class(decided, "-decided")
        for name in ("approved", "cancelled", "expired", "withdrawn"):
            self.set_class(state == name, f"-{name}")
        if decided:
            self.border_title = "Confirmation"
        for button in self.query(Button):
            button.disabled = state != "pending"
        self.query_one(".outcome", Static).update(OUTCOMES[state])
        self.query_one(".expiry", Label).update(
            OUTCOMES[state] if state == "sending" else f"open until {clock(self.expires_at)}"
        )
        self.post_message(self.Changed(self))

    @on(Button.Pressed, "#confirm")
    def _confirm(self, event: Button.Pressed) -> None:
        event.stop()
        self._answer(True)

    @on(Button.Pressed, "#cancel")
    def _cancel(self, event: Button.Pressed) -> None:
        event.stop()
        self._answer(False)

    def _answer(self, approve: bool) -> None:
        if self.open:
            self.post_message(self.Answered(self, approve))


__all__ = ["ConfirmationPrompt"]
