"""Keeping secrets and personal data out of log lines: masked emails, redacted query tokens.

Log call sites that may carry a customer's text or an outside service's error message pass
it through `mask_emails`; the access log of `shopbot serve` goes through
`redact_query_tokens` (`shopbot.web.logs`).
"""

from __future__ import annotations

import re

__all__ = ["mask_emails", "redact_query_tokens"]

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
_QUERY_TOKEN = re.compile(r"([?&](?:access_token|token|customer_token)=)[^&#\s\"]*", re.I)


def mask_emails(text: str) -> str:
    """`text` with every email address masked: `jane.doe@example.com` -> `j***@example.com`
    (the domain stays, which is what support needs to tell providers apart)."""
    return _EMAIL.sub(r"\1***@\2", text)


def redact_query_tokens(text: str) -> str:
    """`...?access_token=eyJ...&after=3` -> `...?access_token=[redacted]&after=3`."""
    return _QUERY_TOKEN.sub(r"\1[redacted]", text)
