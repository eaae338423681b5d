"""The hostile property: a random, hostile model and customer against a fresh shop, and an
audit of what they managed (`tests/agent/test_property.py` and `benchmarks/hostile.py` run
it): no unauthorised side effect, no crash, no change outside what was confirmed, no other
customer's data shown, no tool allowed that the guard did not offer."""

from shopbot.hostile.audit import Approval, Findings, audit
from shopbot.hostile.model import HostileModel
from shopbot.hostile.run import CheckedGuard, Outcome, hostile_services, run_sequence
from shopbot.hostile.shop import ShopFacts, snapshot

__all__ = [
    "Approval",
    "CheckedGuard",
    "Findings",
    "HostileModel",
    "Outcome",
    "ShopFacts",
    "audit",
    "hostile_services",
    "run_sequence",
    "snapshot",
]
