"""What the chat is, what the panels mean, and the keys."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# ShopBot

You write **as a customer** of the shop; ShopBot answers as the shop's agent would on the
website. Everything it does goes to the database, as it would in production.

## Try it

The demo shop's customers include **Jane Doe** (`jane.doe@example.com`, orders 482913,
482914, 482915) and **Tom Becker** (`tom.becker@example.org`, order 600123). ShopBot shows
an order only after the customer gives its number *and* the email on it.

> I want to return the jeans from order 482913. My email is jane.doe@example.com

## The agent steps panel

Each step is a proposal of the model, checked by ShopBot's policy guard before anything runs:

- **ALLOW** (green): the guard let it run; the line with → is what the tool found.
- **CONFIRM** (yellow): it changes something (a return, a label, an email), so it waits for
  the customer's **Confirm**.
- **DENY** (red): the guard refused it, with the reason; the model has to change course.
- **INVALID** (red): the model's output could not be read; it is asked again.

## Confirmations

A Confirm / Cancel box is bound to exactly the action shown in it, and stays open for
{ttl} minutes. Typing `yes` or `no` answers it too; typing anything else withdraws it
(ShopBot asks again if that is still what you want).

## Keys

| key | |
|---|---|
| Enter | send the message |
| Ctrl+N | start a new conversation |
| Ctrl+O | resume an earlier conversation |
| Ctrl+T | show or hide the agent steps |
| Ctrl+Y | copy the transcript (and save it under the data folder) |
| F1 | this help |
| Ctrl+Q | quit |

Press **Esc** to close this help.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        & > VerticalScroll {
            width: 90%;
            max-width: 100;
            height: 90%;
            border: round $accent;
            border-title-color: $accent;
            border-subtitle-color: $text-muted;
            background: $surface;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,f1,q", "dismiss_help", "Close"),
    ]

    def __init__(self, *, confirmation_minutes: int) -> None:
        super().__init__()
        self.confirmation_minutes = confirmation_minutes

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Help"
            box.border_subtitle = "Esc to close"
            yield Markdown(HELP.format(ttl=self.confirmation_minutes))

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


__all__ = ["HelpScreen"]
