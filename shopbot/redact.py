"""Keeping secrets and personal data out of log lines: masked emails, redacted query tokens.

Log call sites that may carry a customer's text or an outside service's error message pass
it through `mask_emails`; the access log of `shopbot serve` goes through
`redact_query_tokens` (`shopbot.web.logs`). What ShopBot stores of the agent's work is
masked the same way (`shopbot.pii`). `EMAIL` is also what the guard takes for an address the
customer typed (`shopbot.state`), so every address it lets a tool check is one masked here.
"""

from __future__ import annotations

import re

__all__ = ["EMAIL", "mask_email", "mask_emails", "redact_query_tokens"]

EMAIL = re.compile(r"([^@\s<>(),;:\"'])[^@\s<>(),;:\"']*@([^@\s<>(),;:\"']+\.[A-Za-z]{2,})")
"""An email address in text: group 1 its first character, group 2 its domain."""
_QUERY_TOKEN = re.compile(r"([?&](?:access_token|token|customer_token)=)[^&#\s\"]*", re.I)


def mask_emails(text: str) -> str:
    """`text` with every email address masked: `jane.doe@example.com` -> `j***@example.com`
    (the domain stays, which is what support needs to tell providers apart)."""
    return EMAIL.sub(r"\1***@\2", text)


def mask_email(address: str) -> str:
    """One address, masked as `mask_emails` masks addresses in text: `j***@example.com`."""
    name, _, domain = address.strip().rpartition("@")
    return f"{name[:1]}***@{domain}"


def redact_query_tokens(text: str) -> str:
    """`...?access_token=eyJ...&after=3` -> `...?access_token=[redacted]&after=3`."""
    return _QUERY_TOKEN.sub(r"\1[redacted]", text)
