"""The retail desk: τ²-bench retail's operations as ShopBot tools (`SHOPBOT_DESK=retail`).

Tool and argument names are τ²-bench's own, so the benchmark's ground-truth actions are
ShopBot actions as they stand; so are the semantics (what each changes, how refunds, gift
card balances and the payment history move) and the error messages. The policy
(`policy.md`: identity first, one customer, status rules, allowed reasons, same-product
variants, gift card balances, once per order, confirmation before writes) is the guard's:
`tools.retail.rules` holds the rules, the guard applies them before anything runs.
ShopBot's own `send_return_label` completes a return with a label by email.
"""

from tools.base import ToolSpec
from tools.retail.account import modify_user_address, transfer_to_human_agents
from tools.retail.delivered import exchange_delivered_order_items, return_delivered_order_items
from tools.retail.identity import find_user_id_by_email, find_user_id_by_name_zip
from tools.retail.pending import (
    cancel_pending_order,
    modify_pending_order_address,
    modify_pending_order_items,
    modify_pending_order_payment,
)
from tools.retail.reads import (
    calculate,
    get_item_details,
    get_order_details,
    get_product_details,
    get_user_details,
    list_all_product_types,
)
from tools.send_return_label import send_return_label

RETAIL_TOOLS: tuple[ToolSpec, ...] = (
    find_user_id_by_email,
    find_user_id_by_name_zip,
    get_user_details,
    get_order_details,
    get_product_details,
    get_item_details,
    list_all_product_types,
    calculate,
    cancel_pending_order,
    modify_pending_order_address,
    modify_pending_order_payment,
    modify_pending_order_items,
    modify_user_address,
    return_delivered_order_items,
    exchange_delivered_order_items,
    send_return_label,
    transfer_to_human_agents,
)
RETAIL_REGISTRY: dict[str, ToolSpec] = {t.name: t for t in RETAIL_TOOLS}

__all__ = ["RETAIL_REGISTRY", "RETAIL_TOOLS"]
