"""The numbers page's charts: bar charts as inline SVG, drawn here rather than by a library.

Why by hand: the staff pages' Content-Security-Policy allows no inline style or script and
nothing from another origin. pygal, the well-kept server-side choice, writes its styles into
the SVG (an inline `<style>`) and its tooltips need its JavaScript; a JS library would add a
vendored bundle to serve and review. A bar per day with an axis is ~80 lines: the bars and
labels take their look from `staff.css` classes, each bar's `<title>` is its tooltip (the
browser's own), and the page puts the same numbers in a table beside the charts for screen
readers and copying.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

from shopbot.web.numbers import DayNumbers, Numbers

__all__ = ["Chart", "bar_chart", "charts_of", "count", "nice_ceiling", "seconds", "share"]

WIDTH, HEIGHT = 720, 190
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 26
"""The plot's margins: the y axis's labels on the left, the days' below."""
ZERO_BAR = 2.0


def nice_ceiling(value: float, *, whole: bool = False) -> float:
    """The axis's top: `value` rounded up to 1, 2, 2.5 or 5 times a power of ten; for
    `whole` numbers (counts) to 2, 4 or 10 times one, at least 2, so the middle line is a
    whole number too."""
    steps = (2, 4, 10) if whole else (1, 2, 2.5, 5, 10)
    if whole:
        value = max(value, 2)
    elif value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in steps if value <= step * power)


def bar_chart(
    points: Sequence[tuple[date, float | None]],
    *,
    title: str,
    shown: Callable[[float], str],
    top: float | None = None,
    whole: bool = False,
) -> Markup:
    """One bar per day (None: no bar, the day had nothing to measure); `shown` writes a value
    for the axis and the tooltips; `top` fixes the axis's top (100% for a share); `whole`:
    the values are counts."""
    values = [v for _, v in points if v is not None]
    ceiling = top if top is not None else nice_ceiling(max(values, default=0.0), whole=whole)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(points))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(shown(ceiling * fraction))}</text>"
        )
    for i, (day, value) in enumerate(points):
        x = LEFT + slot * i
        if value is not None:
            # A measured zero gets a sliver: it differs from a day with nothing to measure.
            height = max(ZERO_BAR, plot_h * min(1.0, value / ceiling))
            parts.append(
                f'<rect class="bar" x="{x + slot * 0.15:.1f}" y="{TOP + plot_h - height:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{height:.1f}">'
                f"<title>{escape(_day(day))}: {escape(shown(value))}</title></rect>"
            )
        if i in _labelled(len(points)):
            parts.append(
                f'<text class="axis" x="{x + slot / 2:.1f}" y="{HEIGHT - 8}" '
                f'text-anchor="middle">{escape(_day(day))}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _labelled(n: int) -> set[int]:
    """Which days get a label under the axis: about seven, first and last always."""
    every = max(1, math.ceil(n / 7))
    return {*range(0, n, every), n - 1}


def _day(day: date) -> str:
    return f"{day:%b} {day.day}"


@dataclass(frozen=True)
class Chart:
    title: str
    defined: str
    """What the number is, exactly (the page says it under the title)."""
    svg: Markup


def count(value: float) -> str:
    return f"{value:,.0f}"


def share(value: float) -> str:
    return f"{value:.0%}"


def seconds(ms: float) -> str:
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


Measure = Callable[[DayNumbers], float | None]

CHARTS: list[tuple[str, str, Measure, Callable[[float], str], float | None]] = [
    (
        "Conversations per day",
        "Conversations started that day, whether or not the customer went on to write.",
        lambda d: d.conversations,
        count,
        None,
    ),
    (
        "Resolved without a person",
        "Of the day's conversations, the share that were not escalated: ShopBot handled "
        "them alone. No bar: no conversations that day.",
        lambda d: d.resolved_share,
        share,
        1.0,
    ),
    (
        "Escalations",
        "Conversations started that day whose status is escalated: handed to a person (for "
        "purged ones, as they were when purged).",
        lambda d: d.escalated,
        count,
        None,
    ),
    (
        "Denials",
        "The model's steps the guard refused, in the conversations started that day: attempts "
        "to act before identity was proven, on another customer's order, or against the "
        "shop's rules.",
        lambda d: d.denials,
        count,
        None,
    ),
    (
        "Median turn time",
        "The middle of the day's turn times, from the customer's message to the end of "
        "ShopBot's turn (model, guard, tools and storage). Purged conversations keep no turn "
        "times: no bar for a day with none left.",
        lambda d: d.median_turn_ms,
        seconds,
        None,
    ),
]
"""Each chart: title, definition, the day's value, how a value reads, the axis's top."""


def charts_of(numbers: Numbers) -> list[Chart]:
    """The page's charts, one per number."""
    return [
        Chart(
            title,
            defined,
            bar_chart(
                [(d.day, measure(d)) for d in numbers.days],
                title=title,
                shown=shown,
                top=top,
                whole=shown is count,
            ),
        )
        for title, defined, measure, shown, top in CHARTS
    ]
