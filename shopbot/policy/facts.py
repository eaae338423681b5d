"""The numbers the policy documents state, checked against `PolicyConfig`.

The documents are written for people, so their numbers are literal text ("within
30 days of delivery"), not templates. Each number that comes from the config carries an
HTML comment right after it, naming the config field:

    You have 30 days<!-- policy:return_window_days --> to return an item

The comment is invisible when the page is rendered and is stripped before indexing.
`check_policy_numbers` reads every tag and reports a value or unit that disagrees with the
config, a tag naming no config field, and a number of the config no document states.
`untagged_numbers` lists every other amount of money, days or minutes in the documents,
so a test can hold them to a reviewed list: a policy number written without its tag (a
return window typed as "45 days") shows up there instead of slipping through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from shopbot.config import PolicyConfig

_VALUE = r"(?P<value>\$\d+(?:\.\d{1,2})?|\d+|free)"
_UNIT = r"(?P<unit>(?:[ -](?:business|calendar))?(?:[ -](?:days?|minutes?))?)"
TAG = re.compile(_VALUE + _UNIT + r"<!--\s*policy:(?P<field>\w+)\s*-->")
AMOUNT = re.compile(
    r"(?<![\w.$])(?:\$\d+(?:\.\d{1,2})?|\d+(?:\s?(?:to|-|\u2013)\s?\d+)?"
    r"[ -](?:business |calendar )?(?:days?|minutes?))(?![\w-]*\s*<!--)",
    re.IGNORECASE,
)
"""Money, days and minutes as written in prose ("$14.95", "2 to 5 business days", "60 minutes")."""

FIELD_UNITS: dict[str, frozenset[str]] = {
    "return_window_days": frozenset({"days", "day"}),
    "exchange_window_days": frozenset({"days", "day"}),
    "refund_days_original_method": frozenset({"business days", "business day"}),
    "refund_days_gift_card": frozenset({"business days", "business day"}),
    "return_shipping_fee": frozenset({"$"}),
    "free_shipping_threshold": frozenset({"$"}),
    "confirmation_ttl_minutes": frozenset({"minutes", "minute"}),
    "max_verification_attempts": frozenset({""}),
}
"""How each config number must be written: a return window in (calendar) days, refunds in
business days, money with a dollar sign ("free" for zero)."""


@dataclass(frozen=True)
class StatedNumber:
    """A tagged number in a document."""

    document: str
    line: int
    field: str
    value: float
    unit: str
    text: str


def stated_numbers(markdown: str, document: str = "") -> list[StatedNumber]:
    """Every `<!-- policy:field -->`-tagged number in `markdown`."""
    found: list[StatedNumber] = []
    for number, line in enumerate(markdown.splitlines(), start=1):
        for match in TAG.finditer(line):
            raw, unit = match["value"], match["unit"].strip(" -").lower()
            if raw == "free" or raw.startswith("$"):
                value, unit = float(raw.lstrip("$").replace("free", "0")), "$"
            else:
                value = float(raw)
            found.append(StatedNumber(document, number, match["field"], value, unit, match[0]))
    return found


def check_policy_numbers(documents_dir: Path, policy: PolicyConfig) -> list[str]:
    """Disagreements between the documents' tagged numbers and `policy`; empty when none."""
    # The numbers only: the time zone is named in words ("midnight Eastern time").
    config = {k: v for k, v in policy.model_dump().items() if isinstance(v, int | float)}
    problems: list[str] = []
    stated: set[str] = set()
    for path in sorted(documents_dir.glob("*.md")):
        markdown = path.read_text(encoding="utf-8")
        tags = len(re.findall(r"<!--\s*policy:", markdown))
        numbers = stated_numbers(markdown, path.stem)
        if tags != len(numbers):
            problems.append(
                f"{path.name}: {tags - len(numbers)} policy tag(s) not right after a number"
            )
        for n in numbers:
            where = f"{path.name}:{n.line} {n.text!r}"
            if n.field not in config:
                problems.append(f"{where}: no config field {n.field!r}")
                continue
            stated.add(n.field)
            if n.unit not in FIELD_UNITS.get(n.field, frozenset({n.unit})):
                problems.append(
                    f"{where}: {n.field} must be written in {sorted(FIELD_UNITS[n.field])}"
                )
            if n.value != float(config[n.field]):
                problems.append(f"{where}: says {n.value:g}, config {n.field} = {config[n.field]}")
    problems.extend(f"no document states {name}" for name in sorted(set(config) - stated))
    return problems


def untagged_numbers(documents_dir: Path) -> dict[str, list[str]]:
    """Per document, the amounts of money, days and minutes that carry no policy tag."""
    found: dict[str, list[str]] = {}
    for path in sorted(documents_dir.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        amounts = [" ".join(m[0].split()) for m in AMOUNT.finditer(text)]
        if amounts:
            found[path.stem] = amounts
    return found
