"""send_return_label: buy the prepaid return label and email it to the order's address.

It completes a return the customer confirmed with `create_return` (whose confirmation says
the label will be emailed), so it asks for no second confirmation; the guard lets it run only
for a return of this customer, created in this conversation, that has no label yet.

Crash-safe by construction: the return row is committed before this runs, the carrier is
asked with an idempotency key derived from the return, its id and its random `uid` (a retry,
even after a crash, gets the same label; a return that reuses an old id after a reseed or a
restored backup, or another shop's return 1, does not), and the label row and the email row
are written in one transaction, the email going out through the outbox exactly once.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from pydantic import Field
from sqlalchemy.orm import selectinload

from db import Order, Return, ReturnStatus, ShippingLabel
from shopbot.errors import ToolFailure, ToolRetry
from shopbot.redact import mask_email
from tools.base import Needs, Observation, StateView, ToolContext, tool
from tools.carrier import Address, LabelRequest, idempotency_key_for_return
from tools.mailer import enqueue_email, mail_domain

ReturnId = Annotated[
    # The column's range: a larger number would overflow the guard's query on PostgreSQL.
    int,
    Field(ge=1, le=2**31 - 1, description="The return's number, from create_return."),
]
COUNTRIES = {"USA": "US", "United States": "US", "Canada": "CA", "United Kingdom": "GB"}


class LabelMaker(Protocol):
    async def create_label(self, request: LabelRequest, *, idempotency_key: str) -> Any: ...
    async def label_pdf(self, label_id: str) -> bytes: ...


class LabelSent(Observation):
    return_id: int
    carrier: str
    tracking_number: str
    emailed_to: str
    """Masked: the model needs to say where it went, not to learn the address."""


def _country(name: str) -> str:
    return COUNTRIES.get(name, name[:2].upper())


def returns_this_turn(state: StateView) -> dict[str, list[str]]:
    """The returns this turn's create_return steps reported (a small model copies its
    example's id otherwise)."""
    ids = (str(r["return_id"]) for r in state.reports("create_return"))
    return {"return_id": list(dict.fromkeys(ids))}


@tool(
    needs=Needs.OWN_RETURN,
    doing="Getting your return label…",
    known=returns_this_turn,
    staff=True,
)
async def send_return_label(ctx: ToolContext, return_id: ReturnId) -> LabelSent:
    """Buy the prepaid return label for a return created in this conversation and email it
    (PDF attached) to the email address on the order. Call it right after create_return."""
    carrier, returns_to = ctx.services.carrier, ctx.services.returns_address
    if carrier is None or returns_to is None:
        raise ToolFailure("Return labels are not available right now.", code="no_carrier")
    ret = await ctx.session.get(
        Return,
        return_id,
        options=[
            selectinload(Return.order).selectinload(Order.customer),
            selectinload(Return.items),
            selectinload(Return.label),
        ],
    )
    if ret is None or ret.order.customer_id != ctx.customer_id:
        raise ToolRetry(f"No return {return_id} for this customer.", code="unknown_return")
    order, customer = ret.order, ret.order.customer
    if ret.label is not None:
        raise ToolRetry(
            f"Return {return_id} already has a label ({ret.label.tracking_number}).",
            code="label_exists",
        )
    request = LabelRequest(
        return_reference=f"R-{ret.id}",
        from_address=Address(
            name=customer.name,
            line1=order.ship_address1,
            line2=order.ship_address2 or None,
            city=order.ship_city,
            postal_code=order.ship_zip,
            country=_country(order.ship_country),
        ),
        to_address=returns_to,
    )
    key = idempotency_key_for_return(ret.id, ret.uid)
    label = await carrier.create_label(request, idempotency_key=key)
    pdf = await carrier.label_pdf(label.id)
    ctx.session.add(
        ShippingLabel(
            return_id=ret.id,
            carrier=label.carrier,
            carrier_label_id=label.id,
            tracking_number=label.tracking_number,
            idempotency_key=key,
            pdf=pdf,
        )
    )
    ret.status = ReturnStatus.LABEL_SENT
    to = order.contact_email
    text, html = _email(customer.first_name, ret.id, order.id, label.tracking_number)
    enqueue_email(
        ctx.session,
        to=to,
        subject=f"Your return label for order {order.id}",
        text=text,
        html=html,
        attachment=(f"return-label-R-{ret.id}.pdf", pdf),
        return_id=ret.id,
        domain=mail_domain(ctx.settings.mail_from),
    )
    await ctx.session.flush()
    return LabelSent(
        return_id=ret.id,
        carrier=label.carrier,
        tracking_number=label.tracking_number,
        emailed_to=mask_email(to),
    )


def _email(name: str, return_id: int, order_id: str, tracking: str) -> tuple[str, str]:
    text = (
        f"Hi {name},\n\n"
        f"Your return R-{return_id} for order {order_id} is registered. Your prepaid Parcelo "
        f"return label is attached: print it, stick it on the parcel and drop it at any "
        f"Parcelo point. Tracking number: {tracking}.\n\n"
        "We'll refund you as soon as the parcel arrives and has been checked.\n"
    )
    html = (
        f"<p>Hi {name},</p><p>Your return <b>R-{return_id}</b> for order {order_id} is "
        "registered. Your prepaid Parcelo return label is attached: print it, stick it on "
        "the parcel and drop it at any Parcelo point.</p>"
        f"<p>Tracking number: <code>{tracking}</code></p>"
        "<p>We'll refund you as soon as the parcel arrives and has been checked.</p>"
    )
    return text, html
