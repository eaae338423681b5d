"""Synthetic customers for the training data: scenarios drawn from the demo shop.

Each scenario is an ordinary eval `Scenario` (persona, goal) over a real customer and order of
`fixtures/shop`, phrased from `shopbot.distil.phrasing`. Every path of the returns desk is
drawn: returns of one, two or three items with the details up front, in part (an order
number without the email) or given when asked, every ineligible case the shop holds (final
sale, outside the window, already returned, not delivered, and a refused item named with one
that can go back, which the desk offers to return alone), order status, policy questions,
identity failures (a wrong email then the right one, or guesses until the guard's limit),
someone else's order, a change of mind, off-topic talk, thanks, angry customers, forbidden
asks (some as the opening: a refund without a return, another customer's details, an
injection), a request for a person; and conversations that go on to a real question after a
stock reply.

Splits: a scenario is `test` when its customer or its phrasing family is held out for test,
`dev` likewise, else `train`; so the test split holds customers and phrasings that training
never saw. The story customers of the replay and eval suites (Jane Doe, the other Jane,
Tom Becker) are always test.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from shopbot.distil import phrasing as P
from shopbot.eval.scenario import Expect, Goal, Intent, Persona, Say, Scenario

SHOP = Path(__file__).resolve().parents[2] / "fixtures" / "shop"
STORY_CUSTOMERS = frozenset({"cust_jane", "cust_jane2", "cust_tom"})
Split = Literal["train", "dev", "test"]


@dataclass(frozen=True)
class Drawn:
    scenario: Scenario
    split: Split
    families: tuple[str, ...]


def split_of(key: str) -> Split:
    """A stable split for a customer id or a phrasing family: about 80/10/10."""
    bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def _combined(keys: list[str]) -> Split:
    splits = {split_of(k) for k in keys}
    return "test" if "test" in splits else "dev" if "dev" in splits else "train"


@dataclass(frozen=True)
class Item:
    line: int
    name: str
    status: str
    final_sale: bool


@dataclass(frozen=True)
class ShopOrder:
    id: str
    customer: str
    status: str
    delivered_days_ago: int | None
    items: tuple[Item, ...]


def load_shop(folder: Path = SHOP) -> tuple[dict[str, dict[str, Any]], list[ShopOrder]]:
    customers = {c["id"]: c for c in yaml.safe_load((folder / "customers.yaml").read_text())}
    orders = [
        ShopOrder(
            str(o["id"]),
            o["customer"],
            o["status"],
            o.get("delivered_days_ago"),
            tuple(
                Item(n, i["name"], i.get("status", "active"), bool(i.get("final_sale")))
                for n, i in enumerate(o["items"], 1)
            ),
        )
        for o in yaml.safe_load((folder / "orders.yaml").read_text())
    ]
    return customers, orders


def refer(item: Item, order: ShopOrder, rng: random.Random) -> str:
    """How a customer names an item: its full name, lower case, its last word or a nickname
    ("chinos", `phrasing.NICKNAMES`), the last two only when no other item of the order
    could be meant."""

    def words(i: Item) -> set[str]:
        return {i.name.split()[-1].lower(), *P.NICKNAMES.get(i.name, [])}

    others = set[str]().union(*(words(i) for i in order.items if i.line != item.line))
    short = sorted(words(item) - others)
    if short and rng.random() < 2 / 3:
        return rng.choice(short)
    return rng.choice([item.name, item.name.lower()])


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


AFTERWARDS: list[tuple[float, list[str], Intent]] = [
    (0.25, P.THANKS, "thanks"),
    (0.33, P.OTHER_ORDER, "refuse_other_order"),
    (0.38, P.DISCLOSE, "refuse_disclose"),
    (0.43, P.LABEL_ELSEWHERE, "refuse_label_elsewhere"),
    (0.48, P.EXCEPTION, "refuse_exception"),
    (0.52, P.REFUND, "refuse_refund"),
    (0.56, P.DISCOUNT, "refuse_discount"),
    (0.62, P.HUMAN, "human"),
    (0.66, P.OFF_TOPIC, "off_topic"),
]
"""What a customer may say once their goal is handled, by cumulative share (the rest say
nothing more)."""


class Drawer:
    """Draws scenarios; `rng` makes a run reproducible."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.customers, self.orders = load_shop()
        self.by_customer: dict[str, list[ShopOrder]] = {}
        for order in self.orders:
            self.by_customer.setdefault(order.customer, []).append(order)
        self.count = 0

    # -- helpers ------------------------------------------------------------------------------

    def pick(self, bank: list[str]) -> tuple[str, str]:
        i = self.rng.randrange(len(bank))
        return bank[i], P.family(bank, i)

    def fill(self, template: str, **slots: str) -> str:
        reason = slots.get("reason") or self.rng.choice(P.REASONS)
        sentence = self.rng.choice(
            [f"Reason: {reason}.", f"It's {reason}.", f"{reason[:1].upper()}{reason[1:]}."]
        )
        return template.format_map(_Slots({"reason": reason, "reason_sentence": sentence} | slots))

    def noisy(self, text: str, style: str, families: list[str]) -> str:
        if style == "angry" and self.rng.random() < 0.7:
            wrap, fam = self.pick(P.ANGRY)
            families.append(fam)
            text = wrap.format(text=text)
        return P.typo(text, self.rng)

    def other_order(self, customer: str) -> ShopOrder:
        return self.rng.choice([o for o in self.orders if o.customer != customer])

    def _scenario(
        self,
        kind: str,
        category: str,
        customer: str,
        families: list[str],
        persona: dict[str, Any],
        goal: Goal,
    ) -> Drawn:
        self.count += 1
        c = self.customers[customer]
        persona.setdefault("emails", [c["email"]])
        scenario = Scenario(
            id=f"gen_{self.count:05d}_{kind}",
            title=f"generated {kind}",
            category=category,  # pyright: ignore[reportArgumentType]
            persona=Persona(name=f"{c['first_name']} {c['last_name']}", **persona),
            goal=goal,
            expect=Expect(),
        )
        split = "test" if customer in STORY_CUSTOMERS else _combined([customer, *families])
        return Drawn(scenario, split, tuple(families))

    def customer_with(self, want: Callable[[ShopOrder], bool]) -> tuple[str, ShopOrder]:
        choices = [o for o in self.orders if want(o)]
        order = self.rng.choice(choices)
        return order.customer, order

    # -- kinds --------------------------------------------------------------------------------

    def return_(self, *, eligible: bool | None = True, several: bool = False) -> Drawn:
        rng = self.rng
        # Most several-item asks with a refused item also hold one that can go back: the
        # desk then offers to return just that one ("Shall I return the jeans?").
        mixed = several and not eligible and rng.random() < 0.8

        def fits(o: ShopOrder) -> bool:
            active = [i for i in o.items if i.status == "active"]
            if several and len(o.items) < 2:
                return False
            if mixed:
                refused = any(i.final_sale or i.status != "active" for i in o.items)
                good = any(not i.final_sale for i in active)
                recent = o.delivered_days_ago is not None and o.delivered_days_ago <= 27
                return o.status == "delivered" and recent and refused and good
            ok = (
                o.status == "delivered"
                and o.delivered_days_ago is not None
                and o.delivered_days_ago <= 27
                and any(not i.final_sale for i in active)
            )
            return (
                ok if eligible else (not ok or any(i.final_sale for i in o.items)) and bool(o.items)
            )

        customer, order = self.customer_with(fits)
        if eligible:
            pool = [i for i in order.items if i.status == "active" and not i.final_sale]
        else:
            bad = [i for i in order.items if i.final_sale or i.status != "active"]
            pool = bad or list(order.items)
        # One item, or the refused one of a mixed ask (its partner is added below).
        k = min(len(pool), rng.choice([2, 2, 3])) if several and eligible else 1
        chosen = rng.sample(pool, k)
        if several and not eligible:  # one refused item with one that could go back
            good = [
                i
                for i in order.items
                if i.status == "active" and not i.final_sale and i not in chosen
            ]
            chosen += good[:1]
        chosen.sort(key=lambda i: i.line)
        names = _join([refer(i, order, rng) for i in chosen])
        reason = rng.choice(P.REASONS)
        c = self.customers[customer]
        style = rng.choice(["polite", "polite", "terse", "angry", "chatty"])
        mode = rng.random()
        families: list[str]
        persona: dict[str, Any] = {"orders": [order.id], "style": style}
        if mode < 0.35:
            template, fam = self.pick(P.RETURN_UPFRONT)
            opening = self.fill(
                template, items=names, order=order.id, email=c["email"], reason=reason
            )
            families = [fam]
            if "{reason" not in template:
                reason = "not given"
        elif mode < 0.55:
            template, fam = self.pick(P.RETURN_WITH_ORDER)
            opening = self.fill(template, items=names, order=order.id, reason=reason)
            families = [fam]
            if "{reason" not in template:
                reason = "not given"
        elif mode < 0.78:
            template, fam = self.pick(P.RETURN_WITH_ITEM)
            opening = self.fill(template, items=names, reason=reason)
            families = [fam]
            if "{reason" not in template:
                reason = "not given"
        else:
            template, fam = self.pick(P.RETURN_VAGUE)
            opening = template
            answer, fam2 = self.pick(P.ITEMS_ANSWER)
            families = [fam, fam2]
            persona["items"] = self.noisy(
                self.fill(answer, items=names, reason=reason), "polite", families
            )
            if "{reason" not in answer:
                reason = "not given"
        if rng.random() < 0.2:  # a wrong email first
            persona["emails"] = [_wrong_email(c["email"], rng), c["email"]]
        elif "{email}" not in template and rng.random() < 0.12:
            persona["emails"] = _wrong_emails(c["email"], rng)
        persona["opening"] = self.noisy(opening, style, families)
        persona["confirms"] = rng.random() > 0.15
        # Nearly half say no to the offer: with fewer, the eighth run took "No, thanks." for yes.
        persona["agrees"] = rng.random() > 0.45
        persona["then"] = self._then(customer, rng, families)
        self._after_prelude(customer, order.id, persona, families)
        category = "return" if eligible else "ineligible_return"
        if several:
            category = "multi_return"
        if not persona["confirms"]:
            category = "change_of_mind"
        goal = Goal(kind="return", order_id=order.id, lines=[i.line for i in chosen], reason=reason)
        return self._scenario("return", category, customer, [*families], persona, goal)

    def status(self) -> Drawn:
        customer, order = self.customer_with(lambda o: True)
        c = self.customers[customer]
        style = self.rng.choice(["polite", "terse", "angry", "chatty"])
        persona: dict[str, Any] = {"orders": [order.id], "style": style}
        item = refer(self.rng.choice(order.items), order, self.rng)
        roll = self.rng.random()
        # An item named and no order number is a third: the eval's "still waiting for my
        # beanie" went to a policy quote when it was a tenth of the status talk.
        if roll < 0.4:
            template, fam = self.pick(P.STATUS)
            opening = self.fill(template, order=order.id, email=c["email"])
        elif roll < 0.65:
            template, fam = self.pick(P.STATUS_NO_EMAIL)
            opening = self.fill(template, order=order.id, items=item)
        else:
            template, fam = self.pick(P.STATUS_VAGUE)
            opening = self.fill(template, items=item)
        if self.rng.random() < 0.15:
            persona["emails"] = [_wrong_email(c["email"], self.rng), c["email"]]
        elif "{email}" not in template and self.rng.random() < 0.14:
            persona["emails"] = _wrong_emails(c["email"], self.rng)
        families = [fam]
        persona["opening"] = self.noisy(opening, style, families)
        persona["then"] = self._then(customer, self.rng, families)
        self._after_prelude(customer, order.id, persona, families)
        goal = Goal(kind="status", order_id=order.id)
        return self._scenario("status", "order_status", customer, families, persona, goal)

    def policy(self) -> Drawn:
        from shopbot.distil.questions import QUESTIONS

        customer = self.rng.choice(sorted(self.customers))
        first = self.rng.randrange(len(QUESTIONS))
        families = [f"question:{first}"]
        then: list[Say] = []
        if self.rng.random() < 0.35:
            then.append(self._question(families))
        if self.rng.random() < 0.3:
            text, fam = self.pick(P.THANKS)
            families.append(fam)
            then.append(Say(text=text, intent="thanks"))
            if self.rng.random() < 0.4:  # and one more question after the stock reply
                then.append(self._question(families))
        persona: dict[str, Any] = {
            "opening": Say(text=P.typo(QUESTIONS[first], self.rng), intent="question"),
            "then": then,
        }
        return self._scenario("policy", "policy", customer, families, persona, Goal(kind="policy"))

    def chat(self) -> Drawn:
        """Off-topic talk, a request for a person, an injection: nothing about an order."""
        customer = self.rng.choice(sorted(self.customers))
        roll = self.rng.random()
        intent: Intent
        if roll < 0.3:
            text, fam = self.pick(P.OFF_TOPIC)
            intent = "off_topic"
        elif roll < 0.55:
            text, fam = self.pick(P.HUMAN)
            intent = "human"
        elif roll < 0.75:
            text, fam = self.injection(customer)
            intent = "refuse_injection"
        elif roll < 0.88:  # a refund without a return, before any order is named
            text, fam = self.pick(P.REFUND)
            text = self.fill(text, items=self._some_item(customer))
            intent = "refuse_refund"
        else:
            text, fam = self.pick(P.DISCLOSE)
            text = self.fill(text, other=self.other_order(customer).id)
            intent = "refuse_disclose"
        families = [fam]
        persona: dict[str, Any] = {"opening": Say(text=P.typo(text, self.rng), intent=intent)}
        # After a stock reply the conversation often goes on to something real; the student
        # must answer the new message, not repeat its last reply.
        if intent != "human" and self.rng.random() < 0.5:
            persona["then"] = [self._question(families)]
        return self._scenario("chat", "off_topic", customer, families, persona, Goal(kind="none"))

    def _some_item(self, customer: str) -> str:
        order = self.rng.choice(self.by_customer.get(customer) or self.orders)
        return refer(self.rng.choice(order.items), order, self.rng)

    def injection(self, customer: str, order: str | None = None) -> tuple[str, str]:
        """An attempt to talk ShopBot out of its rules; some name an order of the customer's
        (`order`, else one drawn)."""
        text, fam = self.pick(P.INJECTION)
        own = order or self.rng.choice(self.by_customer.get(customer) or self.orders).id
        slots = {"other": self.other_order(customer).id, "order": own}
        return self.fill(text, other_email=_wrong_email("x@example.com", self.rng), **slots), fam

    def _after_prelude(
        self, customer: str, order: str, persona: dict[str, Any], families: list[str]
    ) -> None:
        """A fifth of the time the request comes after a turn that needed no tool (small
        talk, a forbidden ask, a policy question): the student must take the new message
        for the request it is, not go on in its last reply's vein."""
        if self.rng.random() >= 0.2:
            return
        roll = self.rng.random()
        if roll < 0.25:
            first = self._question(families)
        else:
            intent: Intent
            if roll < 0.6:
                text, fam = self.pick(P.OFF_TOPIC)
                intent = "off_topic"
            elif roll < 0.8:
                text, fam = self.pick(P.DISCOUNT)
                intent = "refuse_discount"
            else:
                text, fam = self.injection(customer, order)
                intent = "refuse_injection"
            families.append(fam)
            first = Say(text=P.typo(text, self.rng), intent=intent)
        persona["then"] = [Say(text=persona["opening"]), *persona["then"]]
        persona["opening"] = first

    def _question(self, families: list[str]) -> Say:
        from shopbot.distil.questions import QUESTIONS

        i = self.rng.randrange(len(QUESTIONS))
        families.append(f"question:{i}")
        return Say(text=P.typo(QUESTIONS[i], self.rng), intent="question")

    def _then(self, customer: str, rng: random.Random, families: list[str]) -> list[Say]:
        """What the customer says once the goal is handled: thanks, a forbidden ask..."""
        roll = rng.random()
        other = self.other_order(customer)
        for upto, bank, intent in AFTERWARDS:
            if roll < upto:
                i = rng.randrange(len(bank))
                families.append(P.family(bank, i))
                text = bank[i].format_map(
                    _Slots(
                        other=other.id,
                        other_email=_wrong_email("x@example.com", rng),
                        items=self._some_item(customer),
                    )
                )
                said = [Say(text=P.typo(text, rng), intent=intent)]
                if intent == "thanks" and rng.random() < 0.3:
                    said.append(self._question(families))
                return said
        return []

    def draw(self) -> Drawn:
        roll = self.rng.random()
        # Policy questions are one search step each: drawn more often than their share of
        # real traffic, so the student sees enough of them to tell a question from a request.
        if roll < 0.28:
            return self.return_()
        if roll < 0.37:
            return self.return_(several=True)
        if roll < 0.47:
            return self.return_(eligible=False)
        if roll < 0.55:
            return self.return_(eligible=False, several=True)
        if roll < 0.68:
            return self.status()
        if roll < 0.89:
            return self.policy()
        return self.chat()


def _wrong_email(email: str, rng: random.Random) -> str:
    user, _, domain = email.partition("@")
    while True:  # "user@example.net" is the right address of an example.net customer
        wrong = rng.choice(
            [
                f"{user}{rng.randrange(2, 99)}@{domain}",
                f"{user[:-1] or 'a'}@{domain}",
                f"{user}@{rng.choice(['gmail.test', 'mail.test', 'example.net'])}",
            ]
        )
        if wrong.casefold() != email.casefold():
            return wrong


def _wrong_emails(email: str, rng: random.Random) -> list[str]:
    """Three to six different wrong guesses, and never the right one: the desk tries each
    until the guard's limit, then hands over to a person."""
    user, _, domain = email.partition("@")
    n = rng.randrange(3, 7)
    guesses = [f"{user}{k}@{domain}" for k in rng.sample(range(2, 99), n)]
    guesses[0] = _wrong_email(email, rng) if rng.random() < 0.5 else guesses[0]
    return list(dict.fromkeys(guesses))


class _Slots(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def draw(n: int, seed: int) -> list[Drawn]:
    drawer = Drawer(random.Random(seed))
    return [drawer.draw() for _ in range(n)]


__all__ = ["Drawn", "draw", "load_shop", "split_of"]
