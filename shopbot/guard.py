"""The guard: the shop's policy in code, deny by default (gate 2 of 3).

`Guard.check(action, state)` is a pure function of the parsed action and the conversation
state. It guarantees, whatever the model proposes:

- no order data before the customer has proven who they are, and never another
  customer's order (unknown and foreign orders get the same answer);
- identity checks only with an order number and an email the customer typed themselves,
  and only a bounded number of failed checks;
- no return the policy forbids (not delivered, outside the window, final sale, already
  returned), and a return label only for a return the customer confirmed in this
  conversation, once (the label goes to the email on the order, never to one the model names);
- no side effect without the customer's confirmation of exactly this tool and these
  arguments, given in this turn, unexpired; the loop consumes it once;
- replies cite only policy sections retrieved in this turn;
- no tool action is run twice with the same arguments in one turn (a loop, not progress);
- on the retail desk (`tools.retail`): identity only by a lookup with the email, or the name
  and zip, the customer wrote, before anyone is proven; only the proven user's profile and
  orders; writes only as `tools.retail.rules` allows them (status, reasons, payment methods
  on the account, gift card balances, same-product available variants, once per order).

`allowed(state)` is the set of tools the guard could allow now, without looking at
arguments: the backends offer the model only these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from shopbot.actions import ESCALATE, REPLY, Action
from shopbot.config import PolicyConfig
from shopbot.state import ConversationState
from tools import Needs, ToolSpec
from tools.base import Proof, Typed
from tools.eligibility import line_eligibility

Decision = Literal["allow", "deny", "confirm"]


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"


def allow(reason: str = "allowed") -> Verdict:
    return Verdict("allow", reason)


def deny(reason: str) -> Verdict:
    return Verdict("deny", reason)


UNPROVEN = "The customer has not proven who they are: ask them, or escalate."
"""For a desk without an identity check; a desk's check says how to prove one (`Proof.ask`)."""


class Guard:
    def __init__(self, tools: Mapping[str, ToolSpec], policy: PolicyConfig) -> None:
        self.tools = dict(tools)
        self.policy = policy
        checks = [t.proves for t in self.tools.values() if t.proves is not None]
        self.unproven = checks[0].ask if checks else UNPROVEN
        """What the model reads when a tool needs a proven customer: the desk's first check's
        way to prove one."""

    def allowed(self, state: ConversationState) -> frozenset[str]:
        """Tools whose argument-free preconditions hold now (reply and escalate always do)."""
        conf = state.confirmation
        if conf is not None and conf.status == "approved":
            # The customer has just approved one action: offer exactly that one.
            return frozenset({conf.tool, REPLY, ESCALATE})
        names = [n for n in self.tools if self._precheck(n, state).decision != "deny"]
        return frozenset([*names, REPLY, ESCALATE])

    def check(self, action: Action, state: ConversationState) -> Verdict:
        if action.tool == ESCALATE:
            return allow()
        if action.tool == REPLY:
            return self._check_reply(action.args, state)
        conf = state.confirmation
        if conf is not None and conf.status == "approved" and action.tool != conf.tool:
            # `allowed` offers only the approved tool: the customer's yes was to that action.
            return deny(
                f"The customer has just approved {conf.summary}: propose exactly that, or reply."
            )
        verdict = self._precheck(action.tool, state)
        if verdict.decision == "deny":
            return verdict
        spec = self.tools[action.tool]
        args = action.args
        if action.digest in state.done:
            return deny("You already did exactly this in this turn: use its result above.")
        if spec.proves is not None:
            return self._check_typed(spec.proves, args, state)
        if spec.needs & Needs.OWN_USER and getattr(args, "user_id", None) != state.customer_id:
            return deny("That user is not the customer proven in this conversation.")
        if spec.needs & Needs.OWN_ORDER:
            order_id = str(getattr(args, "order_id", ""))
            order = state.orders.get(order_id)
            if order is None or order.customer_id != state.customer_id:
                return deny(
                    f"Order {order_id} is not on this customer's account. "
                    "Ask the customer to check the order number."
                )
            if spec.needs & Needs.RETURNABLE_LINES:
                lines: list[int] = getattr(args, "lines", [])
                refused = [
                    e
                    for e in (line_eligibility(order, n, self.policy, state.now) for n in lines)
                    if not e.eligible
                ]
                if refused:
                    why = "; ".join(f"line {e.line}: {e.reason}" for e in refused)
                    return deny(f"Not returnable under the policy: {why}.")
        if spec.rule is not None:
            if state.rule_facts is None:
                return deny("The facts this action needs were not loaded: try again.")
            if refused := spec.rule(args, state.rule_facts):
                return deny(f"Not allowed under the policy: {refused}.")
        if spec.needs & Needs.OWN_RETURN:
            return_id = int(getattr(args, "return_id", 0))
            ret = state.returns.get(return_id)
            if ret is None or ret.customer_id != state.customer_id:
                return deny(f"Return {return_id} is not one of this customer's returns.")
            if ret.conversation_id != state.conversation_id:
                return deny(f"Return {return_id} was not confirmed in this conversation.")
            if ret.has_label:
                return deny(f"Return {return_id} already has its label; it was emailed.")
        if spec.side_effect:
            return self._check_confirmation(action, state)
        return allow()

    def _precheck(self, tool: str, state: ConversationState) -> Verdict:
        spec = self.tools.get(tool)
        if spec is None:
            return deny(f"{tool} is not a tool ShopBot may use.")
        if spec.proves is not None:
            if state.proven:
                return deny("The customer is already verified in this conversation.")
            if state.failed_verifications >= self.policy.max_verification_attempts:
                return deny("Too many failed verification attempts: escalate to a human.")
        if spec.needs & Needs.PROVEN and not state.proven:
            return deny(self.unproven)
        return allow()

    def _check_typed(self, proof: Proof, args: BaseModel, state: ConversationState) -> Verdict:
        """An identity check's arguments are what the customer wrote, each as its kind."""
        words: list[str] = []
        for name, kind in proof.typed.items():
            value = str(getattr(args, name, ""))
            if kind is Typed.ORDER_NUMBER and not state.customer_wrote_order(value):
                return deny(f"The customer has not written order number {value}: ask them for it.")
            if kind is Typed.EMAIL and not state.customer_wrote_email(value):
                return deny(f"The customer has not written the email {value}: ask them for it.")
            if kind is Typed.WORDS:
                words.append(value)
        if words and not state.customer_wrote(*words):
            return deny(proof.unwritten)
        return allow()

    def _check_confirmation(self, action: Action, state: ConversationState) -> Verdict:
        conf = state.confirmation
        if conf is None or conf.expires_at <= state.now or conf.status != "approved":
            return Verdict("confirm", "Needs the customer's explicit confirmation first.")
        if conf.digest != action.digest:
            return deny(
                f"The customer confirmed something else ({conf.summary}). Propose exactly the "
                "confirmed action, or reply and ask the customer again."
            )
        return allow("Confirmed by the customer.")

    def _check_reply(self, args: BaseModel, state: ConversationState) -> Verdict:
        citations: list[str] = getattr(args, "citations", [])
        unknown = [c for c in citations if c not in state.retrieved]
        if unknown:
            return deny(
                f"Cite only policy sections retrieved in this turn; not retrieved: {unknown}."
            )
        return allow()
