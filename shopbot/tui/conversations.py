"""The list of earlier conversations, most recently active first; Enter resumes one."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Label

from shopbot.tui.format import when
from shopbot.tui.history import ConversationInfo


class ConversationsScreen(ModalScreen[str | None]):
    """Pick a conversation to resume; dismisses with its id, or None."""

    DEFAULT_CSS = """
    ConversationsScreen {
        align: center middle;
        & > Vertical {
            width: 90%;
            max-width: 130;
            height: 80%;
            border: round $primary;
            border-title-color: $primary;
            background: $surface;
            padding: 0 1;
        }
        & .hint { color: $text-muted; padding: 0 0 1 0; }
        & DataTable { height: 1fr; }
        & .empty { padding: 2; color: $text-muted; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Back"),
        Binding("enter", "open", "Resume", show=True, priority=True),
    ]

    def __init__(self, conversations: list[ConversationInfo], now: datetime) -> None:
        super().__init__()
        self.conversations = conversations
        self.now = now

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Earlier conversations"
            if not self.conversations:
                yield Label("No earlier conversations yet.", classes="empty")
            else:
                yield Label("↑/↓ to choose, Enter to resume, Esc to go back.", classes="hint")
                yield DataTable[str](cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        for table in self.query(DataTable[str]):
            table.add_columns("Last active", "Conversation", "Customer", "Turns", "Status")
            for c in self.conversations:
                title = c.title if len(c.title) <= 60 else c.title[:59] + "…"
                table.add_row(
                    when(c.updated_at, self.now),
                    title or "(untitled)",
                    c.customer or "not verified",
                    str(c.turns),
                    c.status,
                    key=c.id,
                )
            table.focus()

    def action_open(self) -> None:
        tables = self.query(DataTable[str])
        if not tables or not self.conversations:
            return
        table = tables.first()
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        self.dismiss(row_key.value)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


__all__ = ["ConversationsScreen"]
