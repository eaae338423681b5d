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
from tools.eligibility import line_eligibility
from tools.retail.rules import policy_refusal

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


LOOKUPS = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})
"""The retail desk's identity checks: a user found proves the conversation's customer."""

NOT_VERIFIED = (
    "The customer has not verified their identity. Ask for the order number and the email "
    "address used for that order, then call verify_identity."
)


NOT_LOOKED_UP = (
    "The customer has not been authenticated. Ask for their email (or their name and zip "
    "code), then call find_user_id_by_email (or find_user_id_by_name_zip)."
)


class Guard:
    def __init__(self, tools: Mapping[str, ToolSpec], policy: PolicyConfig) -> None:
        self.tools = dict(tools)
        self.policy = policy

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
        if action.tool == "verify_identity":
            return self._check_identity(args, state)
        if action.tool in LOOKUPS:
            return self._check_lookup(args, state)
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
        if spec.needs & Needs.RETAIL_RULES:
            if state.retail is None:
                return deny("The facts this action needs were not loaded: try again.")
            if refused := policy_refusal(action.tool, args, state.retail):
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
        if tool == "verify_identity" or tool in LOOKUPS:
            if state.proven:
                return deny("The customer is already verified in this conversation.")
            if state.failed_verifications >= self.policy.max_verification_attempts:
                return deny("Too many failed verification attempts: escalate to a human.")
        if spec.needs & Needs.PROVEN and not state.proven:
            return deny(NOT_VERIFIED if "verify_identity" in self.tools else NOT_LOOKED_UP)
        return allow()

    def _check_identity(self, args: BaseModel, state: ConversationState) -> Verdict:
        order_id, email = str(getattr(args, "order_id", "")), str(getattr(args, "email", ""))
        if not state.customer_wrote_order(order_id):
            return deny(f"The customer has not written order number {order_id}: ask them for it.")
        if not state.customer_wrote_email(email):
            return deny(f"The customer has not written the email {email}: ask them for it.")
        return allow()

    def _check_lookup(self, args: BaseModel, state: ConversationState) -> Verdict:
        if email := getattr(args, "email", None):
            if not state.customer_wrote_email(str(email)):
                return deny(f"The customer has not written the email {email}: ask them for it.")
            return allow()
        said = [str(getattr(args, f, "")) for f in ("first_name", "last_name", "zip")]
        if not state.customer_wrote(*said):
            return deny("The customer has not written this name and zip code: ask them.")
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
