"""What a tool is: a typed async function the agent may call, plus what the guard needs of it.

A tool is written like pydantic-ai's `@agent.tool`: the signature is the argument schema, the
docstring is what the model reads.

    @tool(needs=Needs.OWN_ORDER)
    async def lookup_order(ctx: ToolContext, order_id: OrderId) -> OrderView:
        '''Show an order the verified customer owns: status, lines, tracking.'''

Policy is decided by `shopbot.guard` before the handler runs, from `needs`, `side_effect` and
the desk's rules. A handler still refuses what the facts it reads do not allow (an order not
on the customer's account; a status the retail rules, shared with the guard, forbid): a
defence in depth, never the place a rule lives. Handlers raise `ToolRetry` or `ToolFailure`
for the model to read.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from sqlalchemy.ext.asyncio import AsyncSession

from shopbot.config import Settings

if TYPE_CHECKING:  # the tools' own modules import this one
    from tools.carrier import Address
    from tools.mailer import Dispatcher
    from tools.search_policy import PolicySearch
    from tools.send_return_label import LabelMaker


class Needs(enum.Flag):
    """What must hold, in the conversation, before the guard lets a tool run."""

    NOTHING = 0
    PROVEN = enum.auto()
    """The customer has proven who they are."""
    OWN_ORDER = enum.auto()
    """`args.order_id` is an order of the proven customer (implies PROVEN)."""
    RETURNABLE_LINES = enum.auto()
    """Every line in `args.lines` of `args.order_id` may be returned under the policy."""
    OWN_RETURN = enum.auto()
    """`args.return_id` is this customer's return, created in this conversation, without a
    label yet (implies PROVEN)."""
    OWN_USER = enum.auto()
    """`args.user_id` is the proven customer (implies PROVEN)."""
    RETAIL_RULES = enum.auto()
    """The retail desk's rule for this tool holds for its arguments (`tools.retail.rules`;
    the guard reads the facts in `state.retail`)."""


def _normalise_order_id(value: object) -> object:
    # Customers write "#482913"; the shop's own order numbers carry no "#".
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("#") and value[1:].isdigit():
            return value[1:]
    return value


OrderId = Annotated[
    str,
    BeforeValidator(_normalise_order_id),
    Field(pattern=r"^#?[A-Za-z0-9]{3,20}$", description="The order number, e.g. 482913."),
]
Lines = Annotated[
    list[Annotated[int, Field(ge=1, le=100)]],
    Field(min_length=1, max_length=20, description="Order line numbers (1 is the first line)."),
]


class Observation(BaseModel):
    """What a tool returns; the model reads it as JSON."""

    model_config = ConfigDict(frozen=True)


@dataclass(frozen=True)
class Services:
    """The outside world the tools reach, opened at the edge (`shopbot.app.open_services`)
    and passed in. A part left out is None: the tool that needs it fails, typed."""

    policy: PolicySearch | None = None
    """The policy index (`shopbot.policy.PolicyIndex`)."""
    carrier: LabelMaker | None = None
    """The carrier's label client (`tools.carrier.LabelClient`)."""
    returns_address: Address | None = None
    """Where returned parcels go: the shop's returns centre."""
    outbox: Dispatcher | None = None
    """Delivers the emails tools queued; the agent runs it after each turn."""


@dataclass
class ToolContext:
    """Everything a handler may use, passed in; tools reach nothing through globals."""

    session: AsyncSession
    conversation_id: str
    customer_id: str | None
    settings: Settings
    now: datetime
    services: Services = field(default_factory=Services)


Handler = Callable[..., Awaitable[Observation]]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the agent sees it: name, argument model, description, guard needs."""

    name: str
    description: str
    args_model: type[BaseModel]
    handler: Handler
    needs: Needs = Needs.NOTHING
    side_effect: bool = False
    """Changes something outside the conversation: needs the customer's confirmation."""
    confirm_text: str = ""
    """What the customer is asked to confirm, formatted with the arguments (and `{items}`:
    the order lines named, as "Slim Fit Jeans (line 1)")."""
    doing: str = ""
    """What the customer reads while it runs ("Checking your order…"): never its internals."""

    @property
    def activity(self) -> str:
        """`doing`, or a plain default: tools that say nothing still show progress."""
        return self.doing or ("Working on it…" if self.side_effect else "Looking that up…")

    async def __call__(self, ctx: ToolContext, args: BaseModel) -> Observation:
        values = {name: getattr(args, name) for name in type(args).model_fields}
        return await self.handler(ctx, **values)


def tool(
    *, needs: Needs = Needs.NOTHING, side_effect: bool = False, confirm: str = "", doing: str = ""
) -> Callable[[Handler], ToolSpec]:
    """Turn `async def name(ctx: ToolContext, **typed_args) -> Observation` into a ToolSpec."""

    def wrap(fn: Handler) -> ToolSpec:
        hints = get_type_hints(fn, include_extras=True)
        params = list(inspect.signature(fn).parameters.values())[1:]  # after ctx
        fields: dict[str, Any] = {
            p.name: (hints[p.name], ... if p.default is inspect.Parameter.empty else p.default)
            for p in params
        }
        camel = "".join(part.title() for part in fn.__name__.split("_"))
        args_model = create_model(f"{camel}Args", __config__=ConfigDict(extra="forbid"), **fields)
        if side_effect and not confirm:
            raise TypeError(f"side-effecting tool {fn.__name__} needs a confirm text")
        return ToolSpec(
            name=fn.__name__,
            description=inspect.getdoc(fn) or "",
            args_model=args_model,
            handler=fn,
            needs=needs
            | (
                Needs.PROVEN
                if needs & (Needs.OWN_ORDER | Needs.OWN_RETURN | Needs.OWN_USER)
                else Needs.NOTHING
            ),
            side_effect=side_effect,
            confirm_text=confirm,
            doing=doing,
        )

    return wrap
