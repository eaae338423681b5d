"""What a tool is: a typed async function the agent may call, plus everything the core needs
to know about it.

A tool is written like pydantic-ai's `@agent.tool`: the signature is the argument schema, the
docstring is what the model reads.

    @tool(needs=Needs.OWN_ORDER, known=typed_order_numbers)
    async def lookup_order(ctx: ToolContext, order_id: OrderId) -> OrderView:
        '''Show an order the verified customer owns: status, lines, tracking.'''

The tool carries its behaviour, so the core (loop, guard, dispatch, state, prompts, model
backends) names no tool and a new tool is one module: what the guard requires (`needs`,
`side_effect`, `proves` for an identity check, `rule` for a desk's policy rule and `facts`, what
the guard loads for it each step), the values the state knows for its arguments (`known`:
constrained decoding, strict tool schemas), what its observation adds to the turn (`proves`,
`cites`; every tool's observations are kept for the turn, `StateView.reports`), the prompt's
next-step hint it gives (`hint`), and whether staff may run it by hand (`staff`).

Policy is decided by `shopbot.guard` before the handler runs, from these. A handler still
refuses what the facts it reads do not allow (an order not on the customer's account; a
status the retail rules, shared with the guard, forbid): a defence in depth, never the place
a rule lives. Handlers raise `ToolRetry` or `ToolFailure` for the model to read.
"""

from __future__ import annotations

import enum
import inspect
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol, get_type_hints

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


class Typed(enum.Enum):
    """What an argument the customer must have written is, so the guard finds it in their words."""

    ORDER_NUMBER = enum.auto()
    """An order number they wrote ("#" or not)."""
    EMAIL = enum.auto()
    """An email address they wrote (case and surrounding space ignored)."""
    WORDS = enum.auto()
    """Whole words they wrote (case and accents ignored, `fold`): a name, a zip code."""


def fold(text: str) -> str:
    """Case- and accent-blind form for names and emails (as τ²-bench compares them)."""
    decomposed = unicodedata.normalize("NFD", text.strip())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


@dataclass(frozen=True)
class Proof:
    """An identity check: allowed only before the customer is proven and while failed checks
    are under the limit, only with arguments the customer wrote; a success proves the
    customer, a failure counts an attempt."""

    typed: Mapping[str, Typed] = field(hash=False)
    """The arguments that must be what the customer wrote, checked in this order."""
    ask: str
    """What the model reads when a tool needs a proven customer: how to prove one."""
    succeeded: str | None = None
    """The observation's field that says the check succeeded; None: any result that is not an
    error does (and an error is a failure)."""
    unwritten: str = ""
    """The refusal when the `Typed.WORDS` arguments are not what the customer wrote."""

    def outcome(self, data: Mapping[str, Any], error: bool) -> bool | None:
        """Whether the observation proves the customer (True), counts a failed check (False),
        or neither (None: the check could not run)."""
        if self.succeeded is None:
            return not error
        return None if error else bool(data.get(self.succeeded))


class StateView(Protocol):
    """What a tool's hooks read of the conversation state (`shopbot.state.ConversationState`)."""

    @property
    def proven(self) -> bool: ...
    @property
    def failed_verifications(self) -> int: ...
    @property
    def mentioned_order_ids(self) -> list[str]: ...
    @property
    def mentioned_emails(self) -> list[str]: ...
    def reports(self, tool: str) -> list[dict[str, Any]]:
        """What `tool` returned in this turn, oldest first (its errors left out)."""
        ...


Known = Callable[[StateView], dict[str, list[str]]]
"""A tool's argument values the state already knows, by argument name."""
Hint = Callable[[StateView], str | None]
"""The prompt's hint for the next step, when this tool is what the state says is missing."""
Rule = Callable[[BaseModel, Any], str | None]
"""A desk's policy rule for a tool: its refusal of these arguments given the step's facts
(what the tool's `Facts` loaded), or None."""
Facts = Callable[[AsyncSession, str | None, BaseModel], Awaitable[Any]]
"""What a tool's `rule` decides on, loaded before the guard checks each step: from the
session, the proven customer (None: nobody yet) and the action's arguments."""


def typed_order_numbers(state: StateView) -> dict[str, list[str]]:
    """`order_id` among the order numbers the customer wrote: a small model copies its
    example's number otherwise."""
    return {"order_id": state.mentioned_order_ids}


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
    """A tool as the agent sees it: name, argument model, description, and its behaviour."""

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
    proves: Proof | None = None
    """It is an identity check (see `Proof`)."""
    known: Known | None = None
    """The values the state knows for its arguments. A backend holds the model to them: an
    identity check's are the only ones the guard allows, so every backend restricts them and
    the local model is not offered the check without one for each; other tools' guide the
    local model, which copies its examples' values otherwise."""
    cites: bool = False
    """Its observation's `hits` are policy sections a reply may cite; any other tool's
    observation backs a reply as what the tool reported."""
    hint: Hint | None = None
    """The next-step hint it gives the prompt."""
    rule: Rule | None = None
    """The desk's policy rule the guard applies, on what `facts` loaded."""
    facts: Facts | None = None
    """Loads what `rule` decides on, for each step that proposes this tool."""
    staff: bool = False
    """A staff member who holds a conversation may run it by hand (`shopbot.staff_tools`)."""

    @property
    def activity(self) -> str:
        """`doing`, or a plain default: tools that say nothing still show progress."""
        return self.doing or ("Working on it…" if self.side_effect else "Looking that up…")

    async def __call__(self, ctx: ToolContext, args: BaseModel) -> Observation:
        values = {name: getattr(args, name) for name in type(args).model_fields}
        return await self.handler(ctx, **values)


def tool(
    *,
    needs: Needs = Needs.NOTHING,
    side_effect: bool = False,
    confirm: str = "",
    doing: str = "",
    proves: Proof | None = None,
    known: Known | None = None,
    cites: bool = False,
    hint: Hint | None = None,
    rule: Rule | None = None,
    facts: Facts | None = None,
    staff: bool = False,
) -> Callable[[Handler], ToolSpec]:
    """Turn `async def name(ctx: ToolContext, **typed_args) -> Observation` into a ToolSpec
    (the keywords are `ToolSpec`'s fields)."""

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
        if (rule is None) != (facts is None):
            raise TypeError(f"tool {fn.__name__}: a rule and the facts it reads go together")
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
            proves=proves,
            known=known,
            cites=cites,
            hint=hint,
            rule=rule,
            facts=facts,
            staff=staff,
        )

    return wrap
