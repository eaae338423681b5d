"""The returns desk's tools, one module each, registered here (the retail desk's tools, in
`tools/retail/`, are grouped by the records they touch).

A new tool is a module with an `@tool`-decorated handler, added to `TOOLS`. The action schema,
the guard and the prompt's catalogue all read this registry.
"""

from tools.base import Needs, Observation, Services, ToolContext, ToolSpec, tool
from tools.check_return_eligibility import check_return_eligibility
from tools.create_return import create_return
from tools.list_orders import list_orders
from tools.lookup_order import lookup_order
from tools.search_policy import search_policy
from tools.send_return_label import send_return_label
from tools.verify_identity import verify_identity

TOOLS: tuple[ToolSpec, ...] = (
    verify_identity,
    lookup_order,
    list_orders,
    check_return_eligibility,
    create_return,
    send_return_label,
    search_policy,
)
REGISTRY: dict[str, ToolSpec] = {t.name: t for t in TOOLS}

__all__ = [
    "REGISTRY",
    "TOOLS",
    "Needs",
    "Observation",
    "Services",
    "ToolContext",
    "ToolSpec",
    "tool",
]
