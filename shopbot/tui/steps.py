"""The side panel: each agent step compactly, with the guard's verdict colour-coded."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Label, Static

from shopbot.events import (
    ActionProposed,
    Escalated,
    Event,
    ObservationMade,
    ParseFailed,
    Thought,
    TurnEnded,
    VerdictGiven,
)
from shopbot.tui.format import arguments, duration, observation, shorten

VERDICT_LABELS = {"allow": "ALLOW", "deny": "DENY", "confirm": "CONFIRM", "invalid": "INVALID"}


class StepView(Vertical):
    """One step: number, tool, verdict, time; the thought, arguments and observation below."""

    DEFAULT_CSS = """
    StepView {
        height: auto;
        padding: 0 1;
        margin-bottom: 1;
        & > Horizontal { height: 1; }
        & .number { color: $text-muted; width: 3; }
        & .tool { text-style: bold; width: 1fr; }
        & .verdict { padding: 0 1; text-style: bold; color: $text-muted; }
        & .verdict.-allow { background: $success-muted; color: $text-success; }
        & .verdict.-deny, & .verdict.-invalid { background: $error-muted; color: $text-error; }
        & .verdict.-confirm { background: $warning-muted; color: $text-warning; }
        & .time { color: $text-muted; width: 9; text-align: right; }
        & > .thought { color: $text-muted; text-style: italic; padding-left: 3; }
        & > .args, & > .result, & > .reason { padding-left: 3; }
        & > .reason { color: $text-warning; }
        & > .reason.-deny, & > .result.-error { color: $text-error; }
        & > .result { color: $text-secondary; }
        & > .-empty { display: none; }
    }
    """

    tool: reactive[str] = reactive("…", init=False)
    """The tool the model proposed ("…" until it has)."""
    verdict: reactive[str] = reactive("", init=False)
    """allow, deny, confirm, or invalid for an output that did not parse."""
    ms: reactive[float | None] = reactive[float | None](None, init=False)
    """How long the tool took, once it has run."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(f"{self.step}", classes="number")
            yield Label("…", classes="tool")
            yield Label("", classes="verdict")
            yield Label("", classes="time")
        for part in ("thought", "args", "reason", "result"):
            yield Static("", classes=f"{part} -empty")

    def watch_tool(self, tool: str) -> None:
        self.query_one(".tool", Label).update(tool)

    def watch_verdict(self, verdict: str) -> None:
        label = self.query_one(".verdict", Label)
        label.update(VERDICT_LABELS.get(verdict, verdict.upper()))
        label.set_classes(f"verdict -{verdict}" if verdict else "verdict")

    def watch_ms(self, ms: float | None) -> None:
        self.query_one(".time", Label).update("" if ms is None else duration(ms))

    def show(self, part: str, text: str, *classes: str) -> None:
        static = self.query_one(f".{part}", Static)
        static.update(Content(text))
        static.set_classes([part, *classes] if text else [part, "-empty"])


class TurnHeading(Static):
    DEFAULT_CSS = """
    TurnHeading {
        text-wrap: nowrap;
        text-overflow: ellipsis;
        background: $boost;
        color: $text-primary;
        text-style: bold;
        padding: 0 1;
        margin-bottom: 1;
    }
    """


class TurnSummary(Static):
    DEFAULT_CSS = """
    TurnSummary { color: $text-muted; padding: 0 1; margin-bottom: 1; text-align: right; }
    TurnSummary.-escalated { color: $text-warning; text-align: left; }
    """


class StepsPanel(VerticalScroll):
    """Every step of every turn of the conversation, top down, following the newest."""

    DEFAULT_CSS = """
    StepsPanel {
        width: 40%;
        max-width: 72;
        min-width: 36;
        height: 1fr;
        border-left: vkey $panel;
        border-title-color: $text-muted;
        scrollbar-size-vertical: 1;
        & > .log { height: auto; min-height: 100%; }
        & .empty { color: $text-muted; padding: 1; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Agent steps"
        self._steps: dict[int, StepView] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="log"):
            yield _empty()

    def on_mount(self) -> None:
        self.anchor()

    async def clear(self) -> None:
        self._steps = {}
        log = self.query_one(".log")
        await log.remove_children()
        await log.mount(_empty())

    async def begin_turn(self, turn: int, said: str) -> None:
        self._steps = {}
        await self.query(".empty").remove()
        await self._add(TurnHeading(Content(f"Turn {turn} · {said}")))

    async def show(self, event: Event) -> None:
        """Fold one event of the running turn into its step."""
        match event:
            case Thought(step=step, text=text):
                (await self._step(step)).show("thought", text)
            case ActionProposed(step=step, tool=tool, args=args):
                view = await self._step(step)
                view.tool = tool
                view.show("args", arguments({k: v for k, v in args.items() if v != []}))
            case VerdictGiven(step=step, decision=decision, reason=reason):
                view = await self._step(step)
                view.verdict = decision
                if decision != "allow" or reason not in ("allowed", ""):
                    view.show("reason", reason, f"-{decision}")
            case ParseFailed(step=step, error=error):
                view = await self._step(step)
                view.tool, view.verdict = "(unreadable output)", "invalid"
                view.show("reason", error, "-deny")
            case ObservationMade(step=step, data=data, error=error, ms=ms):
                view = await self._step(step)
                view.ms = ms
                view.show("result", "→ " + observation(data), *(["-error"] if error else []))
            case Escalated(reason=reason):
                text = Content(f"Handed to a human: {shorten(reason, 160)}")
                await self._add(TurnSummary(text, classes="-escalated"))
            case TurnEnded(ms=ms):
                # What the panel drew: the loop's count agrees, except in turns stored before
                # it counted the final reply too.
                count = len(self._steps)
                noun = "step" if count == 1 else "steps"
                await self._add(TurnSummary(f"{count} {noun} in {duration(ms)}"))
            case _:
                pass

    async def interrupted(self) -> None:
        await self._add(TurnSummary("did not finish", classes="-escalated"))

    async def _step(self, step: int) -> StepView:
        if step not in self._steps:
            self._steps[step] = StepView(step)
            await self._add(self._steps[step])
        return self._steps[step]

    async def _add(self, widget: Widget) -> None:
        await self.query_one(".log").mount(widget)


def _empty() -> Static:
    return Static("Each step ShopBot takes will show here.", classes="empty")


__all__ = ["StepView", "StepsPanel"]
