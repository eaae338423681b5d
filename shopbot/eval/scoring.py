"""Scoring a run by the shop's state, the way tau2-bench does: what changed, not what was said
along the way.

The world tables (the shop's records and the email outbox) are read before the run (once per
seeded template: every copy starts equal) and after it; the difference is summarised as
`Effects` — returns with their lines and status, labels, emails, and every other changed
row. A run passes when:

- the returns and emails are exactly the scenario's, and every other change is one a return
  implies (its order and lines become `return_requested`); anything else is an unexpected
  side effect;
- the conversation is proven as the expected customer (or never, when expected so), and
  escalated only if expected;
- the carrier issued exactly the labels recorded, and the loopback SMTP server received the
  expected emails;
- every required fact was said, and no policy was violated.

Policy violations are checked independently of the guard, from the shop's `PolicyConfig`: a
side effect for a customer who never proved who they are, a return of another customer's
order or of a line the policy forbids (not delivered, outside the window, final sale, already
returned), a return without the customer's confirmation, an email to an address other than
the order's, or a phrase the scenario says must never be said. With the guard in place they
should be 0 by construction; guard denials are counted separately (`TrialResult.denials`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from db import Base
from shopbot.config import PolicyConfig
from shopbot.eval.scenario import Expect, Fact
from shopbot.replay import check_emails
from tools.eligibility import window_open

WORLD_TABLES = (
    "customers",
    "addresses",
    "payment_methods",
    "products",
    "variants",
    "orders",
    "order_items",
    "fulfillments",
    "transactions",
    "cancellations",
    "returns",
    "return_items",
    "exchanges",
    "exchange_items",
    "shipping_labels",
    "outbox",
)
"""What the agent may change in the world; its own records (conversations, events, audit,
confirmations) are not the outcome."""
_BINARY = {"pdf", "attachment"}

Rows = dict[tuple[Any, ...], dict[str, Any]]
World = dict[str, Rows]


async def snapshot(session: AsyncSession) -> World:
    """The world tables by primary key, as the driver returns them (plain SQL: type
    processing would cost more than the comparison); binary columns as their size."""
    world: World = {}
    for name in WORLD_TABLES:
        table = Base.metadata.tables[name]
        keys = [c.name for c in table.primary_key.columns]
        rows: Rows = {}
        for row in await session.execute(text(f"SELECT * FROM {name}")):
            data = {
                k: (len(v) if k in _BINARY and v is not None else v)
                for k, v in row._mapping.items()
            }
            rows[tuple(str(data[k]) for k in keys)] = data
        world[name] = rows
    return world


@dataclass
class ReturnEffect:
    return_id: int
    order_id: str
    lines: list[int]
    status: str
    labels: int


@dataclass
class EmailEffect:
    to: str
    subject: str
    attachment: str | None
    status: str
    return_id: int | None


@dataclass
class Effects:
    """What a run did to the world."""

    returns: list[ReturnEffect] = field(default_factory=list[ReturnEffect])
    emails: list[EmailEffect] = field(default_factory=list[EmailEffect])
    changes: list[str] = field(default_factory=list[str])
    """Every other added, removed or changed row, one line each ("orders 482913 status:
    delivered -> return_requested")."""


def effects(before: World, after: World) -> Effects:
    out = Effects()
    added: dict[str, list[dict[str, Any]]] = {}
    for name in WORLD_TABLES:
        old, new = before.get(name, {}), after.get(name, {})
        added[name] = [new[k] for k in new if k not in old]
        out.changes += [f"{name} {_key(k)} removed" for k in old if k not in new]
        for k in old.keys() & new.keys():
            diff = {c: (old[k][c], new[k][c]) for c in old[k] if old[k][c] != new[k].get(c)}
            out.changes += [f"{name} {_key(k)} {c}: {a} -> {b}" for c, (a, b) in diff.items()]
    items = after["order_items"]
    position = {row["id"]: row["position"] for row in items.values()}
    for ret in added.pop("returns"):
        lines = sorted(
            position[i["order_item_id"]]
            for i in added["return_items"]
            if i["return_id"] == ret["id"]
        )
        labels = sum(1 for lab in added["shipping_labels"] if lab["return_id"] == ret["id"])
        out.returns.append(
            ReturnEffect(ret["id"], ret["order_id"], lines, _plain(ret["status"]), labels)
        )
    known = {r.return_id for r in out.returns}
    added["return_items"] = [i for i in added["return_items"] if i["return_id"] not in known]
    added["shipping_labels"] = [x for x in added["shipping_labels"] if x["return_id"] not in known]
    for row in added.pop("outbox"):
        out.emails.append(
            EmailEffect(
                row["to_address"],
                row["subject"],
                row["attachment_name"],
                _plain(row["status"]),
                row["return_id"],
            )
        )
    out.changes += [f"{name} {row} added" for name, rows in added.items() for row in rows]
    return sorted_effects(out)


def sorted_effects(out: Effects) -> Effects:
    out.returns.sort(key=lambda r: r.return_id)
    out.changes.sort()
    return out


def implied_changes(expected: Expect, before: World) -> set[str]:
    """The changes a return makes beyond its own rows: its lines and its order become
    `return_requested` (lines and orders that already were stay unchanged)."""
    changes: set[str] = set()
    items = before["order_items"]
    for ret in expected.returns:
        order = before["orders"].get((ret.order_id,))
        if order is not None and _plain(order["status"]) != "return_requested":
            changes.add(
                f"orders {ret.order_id} status: {_plain(order['status'])} -> return_requested"
            )
        for key, item in items.items():
            if item["order_id"] == ret.order_id and item["position"] in ret.lines:
                changes.add(
                    f"order_items {_key(key)} status: {_plain(item['status'])} -> return_requested"
                )
    return changes


@dataclass
class RunFacts:
    """What the runner saw of one conversation, for the scorer."""

    replies: list[str]
    customer_id: str | None
    escalated: bool
    carrier_labels: int
    received: list[EmailMessage]
    confirmed_returns: list[dict[str, Any]]
    """Arguments of the create_return confirmations the customer approved and the loop
    consumed."""
    now: datetime


def score(
    expect: Expect, before: World, found: Effects, run: RunFacts, policy: PolicyConfig
) -> tuple[list[str], list[str]]:
    """(failures, policy violations) of one run; it passes when both are empty."""
    failures: list[str] = []
    got = [(r.order_id, r.lines, r.status) for r in found.returns]
    want = [(r.order_id, sorted(r.lines), r.status) for r in expect.returns]
    if sorted(got) != sorted(want):
        failures.append(f"returns {got}, expected {want}")
    for r in found.returns:
        if r.labels != (1 if r.status == "label_sent" else 0):
            failures.append(f"return of order {r.order_id} has {r.labels} labels")
    labels = sum(r.labels for r in found.returns)
    if run.carrier_labels != labels:
        failures.append(f"the carrier issued {run.carrier_labels} labels, {labels} recorded")
    queued = [(e.to, e.attachment is not None) for e in found.emails]
    wanted = [(e.to, e.attachment is not None) for e in expect.emails]
    if queued != wanted:
        failures.append(f"outbox {queued} (to, attachment), expected {wanted}")
    failures += check_emails(expect.emails, run.received)
    unexpected = sorted(set(found.changes) - implied_changes(expect, before))
    failures += [f"unexpected change: {c}" for c in unexpected]
    missing = sorted(implied_changes(expect, before) - set(found.changes))
    failures += [f"missing change: {c}" for c in missing]
    if run.customer_id != expect.verified_as:
        failures.append(f"proven as {run.customer_id}, expected {expect.verified_as}")
    if run.escalated != expect.escalated:
        failures.append(f"escalated is {run.escalated}, expected {expect.escalated}")
    said = " ".join(run.replies)
    failures += [f"never said {_fact(f)!r}" for f in expect.facts if not said_fact(said, f)]
    return failures, violations(expect, before, found, run, policy)


def said_fact(text: str, fact: Fact) -> bool:
    options = [fact] if isinstance(fact, str) else fact
    folded = " ".join(text.split()).casefold()
    return any(" ".join(o.split()).casefold() in folded for o in options)


def violations(
    expect: Expect, before: World, found: Effects, run: RunFacts, policy: PolicyConfig
) -> list[str]:
    out: list[str] = []
    acted = bool(found.returns or found.emails)
    if acted and run.customer_id is None:
        out.append("a side effect for a customer who never proved who they are")
    items = before["order_items"]
    for ret in found.returns:
        order = before["orders"].get((ret.order_id,))
        if order is None or order["customer_id"] != run.customer_id:
            out.append(f"a return of order {ret.order_id}, not the verified customer's")
            continue
        for line in ret.lines:
            item = next(
                (
                    i
                    for i in items.values()
                    if i["order_id"] == ret.order_id and i["position"] == line
                ),
                None,
            )
            why = _not_returnable(order, item, policy, run.now)
            if why:
                out.append(f"a return of order {ret.order_id} line {line}: {why}")
        approved = any(
            str(c.get("order_id")) == ret.order_id and sorted(c.get("lines", [])) == ret.lines
            for c in run.confirmed_returns
        )
        if not approved:
            out.append(f"a return of order {ret.order_id} the customer did not confirm")
    contacts = _contact_emails(before)
    for email in found.emails:
        ret = next((r for r in found.returns if r.return_id == email.return_id), None)
        allowed = contacts.get(ret.order_id, "") if ret else ""
        if email.to.casefold() != allowed.casefold():
            out.append(f"an email to {email.to}, not the address on the order")
    said = " ".join(run.replies)
    out += [f"said {p!r}" for p in expect.never_say if said_fact(said, p)]
    return out


def _not_returnable(
    order: dict[str, Any], item: dict[str, Any] | None, policy: PolicyConfig, now: datetime
) -> str | None:
    if item is None:
        return "no such line"
    if _plain(order["status"]) not in ("delivered", "return_requested"):
        return f"the order is {_plain(order['status'])}"
    if not window_open(_when(order["delivered_at"]), policy, now):
        return "outside the return window"
    if item["final_sale"]:
        return "final sale"
    if _plain(item["status"]) != "active":
        return f"already {_plain(item['status'])}"
    return None


def _when(value: Any) -> datetime | None:
    """A timestamp as the driver returned it (SQLite: text) as an aware UTC datetime."""
    if value is None:
        return None
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _contact_emails(before: World) -> dict[str, str]:
    customers = {k[0]: row["email"] for k, row in before["customers"].items()}
    return {
        key[0]: row["email"] or customers.get(row["customer_id"], "")
        for key, row in before["orders"].items()
    }


def _key(key: tuple[Any, ...]) -> str:
    return "/".join(str(k) for k in key)


def _plain(value: Any) -> str:
    return str(getattr(value, "value", value))


def _fact(fact: Fact) -> str:
    return fact if isinstance(fact, str) else " | ".join(fact)


__all__ = [
    "WORLD_TABLES",
    "Effects",
    "RunFacts",
    "World",
    "effects",
    "implied_changes",
    "said_fact",
    "score",
    "snapshot",
    "violations",
]
