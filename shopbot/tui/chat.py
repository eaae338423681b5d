"""The conversation pane: the customer's messages, ShopBot's replies (streamed), notes."""

from __future__ import annotations

from time import monotonic
from typing import Literal

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from shopbot.events import Citation
from shopbot.tui.format import source

WELCOME = """\
**Welcome to ShopBot**, the shop's customer-service agent. Here you write *as a customer*;
ShopBot answers the way it would on the shop's website.

Try: `I want to return the jeans from order 482913. My email is jane.doe@example.com`

The **Agent steps** panel (**Ctrl+T** shows or hides it) lists each step ShopBot takes and the
policy guard's verdict: green allowed, yellow waits for your confirmation, red refused.
Nothing that changes an order happens before you press **Confirm**. **F1** explains more.
"""


class CustomerMessageView(Static):
    """What the customer wrote, shown as typed (never as Markdown)."""

    DEFAULT_CSS = """
    CustomerMessageView {
        border: round $primary;
        border-title-color: $primary;
        background: $primary 8%;
        margin: 1 1 0 14;
        padding: 0 1;
    }
    """

    def __init__(self, text: str, *, title: str = "You") -> None:
        super().__init__(Content(text))
        self.border_title = title


class ReplyView(Vertical):
    """One reply of ShopBot: what it is doing while it works, then the reply and its sources."""

    DEFAULT_CSS = """
    ReplyView {
        height: auto;
        border: round $success;
        border-title-color: $success;
        background: $success 6%;
        margin: 1 14 0 1;
        padding: 0 1;
        & > Markdown { margin: 0; padding: 0; background: transparent; }
        & > Markdown MarkdownBlock:last-child { margin-bottom: 0; }
        & > .activity { color: $text-muted; text-style: italic; display: none; }
        & > .sources { color: $text-muted; display: none; margin-top: 1; }
        &.-working > .activity { display: block; }
        &.-working > Markdown { display: none; }
        &.-streaming > Markdown { display: block; }
        &.-streaming > .activity { display: none; }
        &.-cited > .sources { display: block; }
    }
    """

    activity: reactive[str] = reactive("Thinking…", init=False)
    """What ShopBot is doing while the reply is on its way."""

    def __init__(self, text: str = "", citations: list[Citation] | None = None) -> None:
        super().__init__(classes="" if text else "-working")
        self.border_title = "ShopBot"
        self._text = text
        self._citations = citations or []
        self._stream: MarkdownStream | None = None
        self._started = monotonic()
        self._ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Markdown(self._text)
        yield Static("Thinking…", classes="activity")
        yield Static(_sources(self._citations), classes="sources")

    def on_mount(self) -> None:
        self.set_class(bool(self._citations), "-cited")
        if self.has_class("-working"):
            # Seconds tick by while a slow model thinks, so nobody wonders if it hung.
            self._started = monotonic()
            self._ticker = self.set_interval(1, self._show_activity)

    def watch_activity(self) -> None:
        self._show_activity()

    def _show_activity(self) -> None:
        if self.is_mounted:
            seconds = int(monotonic() - self._started)
            suffix = f"  {seconds} s" if seconds else ""
            self.query_one(".activity", Static).update(self.activity + suffix)

    @property
    def text(self) -> str:
        return self._text

    async def stream(self, fragment: str) -> None:
        """Add a piece of the reply as the model produces it."""
        if self._stream is None:
            self.add_class("-streaming")
            self._stream = Markdown.get_stream(self.query_one(Markdown))
        self._text += fragment
        await self._stream.write(fragment)

    async def retract(self) -> None:
        """Drop a draft the model abandoned (its step did not parse or was denied)."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        if self._text:
            self._text = ""
            await self.query_one(Markdown).update("")
        self.remove_class("-streaming")

    async def finish(self, text: str, citations: list[Citation]) -> None:
        """Show the final reply exactly as recorded, with its sources as footnotes."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self._text, self._citations = text, citations
        await self.query_one(Markdown).update(text)
        self.query_one(".sources", Static).update(_sources(citations))
        self.remove_class("-working", "-streaming")
        if self._ticker is not None:
            self._ticker.stop()
        self.set_class(bool(citations), "-cited")


NoteKind = Literal["info", "warning", "error"]


class Note(Static):
    """A line from the chat itself, not from ShopBot: hand-overs, errors, hints."""

    DEFAULT_CSS = """
    Note {
        margin: 1 2 0 2;
        padding: 0 1;
        color: $text-muted;
        &.-warning { color: $text-warning; background: $warning-muted; }
        &.-error { color: $text-error; background: $error-muted; }
    }
    """

    def __init__(self, text: str, kind: NoteKind = "info") -> None:
        super().__init__(Content(text), classes=f"-{kind}")
        self.text = text
        self.kind: NoteKind = kind


class Welcome(Markdown):
    """What a first-time user reads before the first message."""

    DEFAULT_CSS = """
    Welcome {
        border: round $accent;
        border-title-color: $accent;
        margin: 1 1 0 1;
        padding: 0 1;
        background: $accent 5%;
        & MarkdownBlock:last-child { margin-bottom: 0; }
    }
    """

    def __init__(self) -> None:
        super().__init__(WELCOME)
        self.border_title = "New conversation"


class ChatView(VerticalScroll):
    """The conversation, top down; it follows new messages unless the user scrolls up."""

    DEFAULT_CSS = """
    ChatView {
        height: 1fr;
        scrollbar-size-vertical: 1;
        /* At least a screenful, so a short conversation starts at the top, not the bottom. */
        & > .log { height: auto; min-height: 100%; padding-bottom: 1; }
    }
    """

    def compose(self) -> ComposeResult:
        yield Vertical(classes="log")

    def on_mount(self) -> None:
        self.anchor()

    async def add(self, widget: Widget) -> None:
        await self.query_one(".log").mount(widget)

    async def clear(self) -> None:
        await self.query_one(".log").remove_children()


def _sources(citations: list[Citation]) -> Content:
    notes = [f"[{i}] {source(c)}" for i, c in enumerate(citations, 1)]
    return Content("Sources: " + "   ".join(notes)) if notes else Content("")


__all__ = ["ChatView", "CustomerMessageView", "Note", "ReplyView", "Welcome"]
