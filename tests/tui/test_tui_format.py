"""How the chat words what the agent did: one line per thing, never a password."""

from __future__ import annotations

from tui_support import NOON

from shopbot.events import Citation
from shopbot.tui.format import arguments, duration, observation, source, when
from shopbot.tui.status import database_label


def test_arguments_are_one_line_and_long_values_are_cut() -> None:
    assert arguments({"order_id": "482913", "lines": [1, 2]}) == "order_id=482913 lines=[1, 2]"
    assert arguments({"reason": "doesn't fit"}) == 'reason="doesn\'t fit"'
    assert arguments({"message": "x " * 50}, limit=12) == 'message="x x x x x…'


def test_observations_count_and_name_lists_of_records() -> None:
    data = {
        "order_id": "482913",
        "lines": [{"line": 1, "name": "Slim Fit Jeans"}, {"line": 2, "name": "Linen Shirt"}],
        "tracking": ["PX1"],
        "address": {"city": "Berlin", "zip": "10115"},
    }
    assert observation(data) == (
        "order_id=482913 · lines: 2 (Slim Fit Jeans, Linen Shirt) · "
        'tracking=["PX1"] · address: {city, zip}'
    )
    assert observation({"text": "y" * 500}, limit=20).endswith("…")


def test_times_read_relative_to_today() -> None:
    assert when(NOON, NOON) == "today 12:00"
    assert when(NOON.replace(day=1, month=1, year=2020), NOON) == "1 Jan 2020"
    assert duration(12.4) == "12 ms" and duration(30_940) == "30.9 s"


def test_sources_and_databases() -> None:
    cite = Citation(anchor="gift-cards#refunds", document="Gift cards", section="Refunds")
    assert source(cite) == "Gift cards > Refunds"
    assert database_label("sqlite:///data/shopbot.db") == "sqlite data/shopbot.db"
    label = database_label("postgresql://shop:secret@db.example:5432/shop")
    assert "secret" not in label and label.startswith("postgresql shop:***@db.example")
