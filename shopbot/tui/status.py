"""The status bar: model, database, who the customer has proven to be, last turn's latency."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from shopbot.tui.format import duration


def database_label(url: str) -> str:
    """`sqlite data/shopbot.db` or `postgresql shop@db:5432/shop`, never with a password."""
    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return f"sqlite {u.database or ':memory:'}"
    where = u.set(drivername=backend).render_as_string(hide_password=True)
    return where.replace(f"{backend}://", f"{backend} ", 1)


class StatusBar(Widget):
    """One line under the input box."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    """

    model: reactive[str] = reactive("")
    """The chat model's name (`local`, `scripted`, ...)."""
    database: reactive[str] = reactive("")
    """Where conversations and the shop's orders are, without credentials."""
    customer: reactive[str] = reactive("")
    """Who the customer has proven to be in this conversation, in words."""
    escalated: reactive[bool] = reactive(False)
    """The conversation was handed to a human colleague."""
    latency: reactive[float | None] = reactive[float | None](None)
    """How long the last turn took, in milliseconds."""
    working: reactive[bool] = reactive(False)
    """A turn is running."""

    def render(self) -> Content:
        parts = [
            ("model ", self.model),
            ("db ", self.database),
            ("customer ", self.customer or "not verified"),
        ]
        if self.escalated:
            parts.append(("", "handed to a human"))
        if self.working:
            parts.append(("", "ShopBot is working…"))
        elif self.latency is not None:
            parts.append(("last turn ", duration(self.latency)))
        return Content(" │ ").join(
            Content.assemble((label, "dim"), (value, "bold")) for label, value in parts
        )


__all__ = ["StatusBar", "database_label"]
