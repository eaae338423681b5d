"""The desks `SHOPBOT_DESK` chooses from, registered here: each a set of tools that carry their
own behaviour (`tools.base.ToolSpec`); `shopbot.app` assembles the configured one."""

from tools import TOOLS
from tools.base import ToolSpec
from tools.retail import RETAIL_TOOLS

DESKS: dict[str, tuple[ToolSpec, ...]] = {"returns": TOOLS, "retail": RETAIL_TOOLS}

__all__ = ["DESKS"]
