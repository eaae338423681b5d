"""The parcel desk: "where is my parcel?", a desk in one folder, outside ShopBot's package.

    SHOPBOT_DESK=examples/parcel_desk shopbot chat
    shopbot replay examples/parcel_desk/conversations
    shopbot eval --desk examples/parcel_desk

Its tools are the shop's own identity check (`tools.verify_identity`, reused as it is) and
`track_parcel`; nothing in `shopbot/` or `tools/` names it. Its conversations say which desk
they run on (`desk: ..`), and its oracle (`oracle.py`) plays a perfect agent for its
scenarios.
"""

from pathlib import Path

from tools.desk import Desk
from tools.verify_identity import verify_identity

from .track_parcel import track_parcel

ROLE = """You are ShopBot, the parcel desk of an online clothing shop.
You tell customers where their parcels are: shipped or not, with which carrier, the tracking
numbers, when they arrived. Be brief, warm and precise. Never invent tracking details."""

RULES = """Rules:
- Before anything about an order, verify the customer: ask for the order number and the
  email address used for the order, then call verify_identity with both, as they wrote them.
- Then call track_parcel for that order, and tell the customer what it says.
- Only the verified customer's own orders can be discussed.
- You cannot change an order, an address or a delivery: for that, escalate to a person."""

DESK = Desk(
    name="parcel",
    tools=(verify_identity, track_parcel),
    instructions=f"{ROLE}\n\n{RULES}",
    scenarios=Path(__file__).parent / "scenarios",
    oracle=f"{__name__}.oracle:ParcelOracle",
)

__all__ = ["DESK"]
