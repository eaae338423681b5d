"""What ShopBot writes down of the email addresses in a conversation: masked, or hashed.

A customer types their email so that ShopBot can check it against an order (`verify_identity`;
the retail desk's `find_user_id_by_email`). The check compares the real address, in memory.
By the time the step is stored (at its commit, after the check, passed or failed) every email
address in what records the agent's work is masked, `jane.doe@example.com` ->
`j***@example.com` (`shopbot.redact`, as in the logs):

- the audit log (`action_log`): raw model output, thought, arguments, the guard's reason,
  parse error, observation, flags;
- the events of the agent's work: `thought`, `action`, `verdict`, `observation`,
  `parse_failed`, `escalated`, and any kind added later (deny by default);
- a conversation's title (its first words).

An argument that is an address, whole (the one an identity check was made with), is masked and
gets a keyed hash beside it: `{"email": "j***@example.com", "email_hash": "3f9a..."}`. Why both:
the mask alone cannot tell jane@ from john@ at one domain, and the hash alone says nothing a
person can read (the domain, which tells a typo such as gmial.com). Why keyed (HMAC-SHA256
with the PII secret, `shopbot.signing_keys.PII`, kept out of the database): addresses are
guessable, and a plain hash would let anyone with a copy of the database try the shop's
customer list against it. So staff can see that two attempts used the same address, and no
more. The hash is of the address as the check compares it (case and surrounding spaces
ignored), cut to 16 hex digits: plenty to tell a conversation's few addresses apart.

Kept as written, until `shopbot purge` (`shopbot.retention`), is the conversation as its
customer lives it: the `messages` table and the events their stream and history are made of
(`customer_message`, `reply`, the confirmations', `turn_ended`). They are the customer's own
words, shown back to them, and the guard's proof that the customer typed the address a check
uses (`ConversationState.customer_wrote_email` reads the messages each turn). A confirmation's
arguments stay too: they are bound to it by digest and shown to the customer whole, and no
tool that needs a confirmation takes an email.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Collection, Iterator
from functools import cached_property
from typing import Any, get_args

from pydantic import BaseModel

from shopbot.config import Settings
from shopbot.events import (
    ConfirmationDecided,
    ConfirmationRequested,
    ConfirmationWithdrawn,
    CustomerMessage,
    Reply,
    StaffMessage,
    TurnEnded,
)
from shopbot.redact import mask_email, mask_emails
from shopbot.signing_keys import pii_secret

__all__ = ["HASH_DIGITS", "VERBATIM_KINDS", "Minimiser", "addresses", "is_address"]

HASH_DIGITS = 16
"""Hex digits kept of the HMAC: 64 bits tell a conversation's few addresses apart."""


def _kind(model: type[BaseModel]) -> str:
    return str(get_args(model.model_fields["kind"].annotation)[0])


VERBATIM_KINDS = frozenset(
    _kind(model)
    for model in (
        CustomerMessage,
        Reply,
        ConfirmationRequested,
        ConfirmationDecided,
        ConfirmationWithdrawn,
        StaffMessage,
        TurnEnded,
    )
)
"""The events stored as they are: the conversation as its customer sees it."""


_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")
"""Looser than `EMAIL`: an argument shaped like an address is one, even one the guard refuses
for not being an address the customer typed (`x@y.c0m`)."""


def is_address(value: object) -> bool:
    """A string that is one email address, whole (as an identity check's argument is)."""
    return isinstance(value, str) and _ADDRESS.fullmatch(value.strip()) is not None


def addresses(args: dict[str, Any]) -> Iterator[str]:
    """The arguments that are an email address."""
    return (value for value in args.values() if is_address(value))


class Minimiser:
    """Masks the email addresses in what is stored of the agent's work (see the module)."""

    def __init__(self, key: Callable[[], str]) -> None:
        self._read_key = key
        """Called at the first hash: a turn that meets no address never reads (or generates)
        the secret."""

    @classmethod
    def of(cls, settings: Settings) -> Minimiser:
        return cls(lambda: pii_secret(settings))

    @cached_property
    def _key(self) -> bytes:
        return self._read_key().encode()

    def email_hash(self, address: str) -> str:
        """The keyed hash of an address as an identity check compares it."""
        mac = hmac.new(self._key, address.strip().casefold().encode(), hashlib.sha256)
        return mac.hexdigest()[:HASH_DIGITS]

    def text(self, text: str, typed: Collection[str] = ()) -> str:
        """`text` with its addresses masked; the `typed` ones (arguments of this turn) also
        where the pattern would miss them, as the model's JSON escapes them."""
        if "@" not in text:
            return text
        for address in typed:
            masked = mask_email(address)
            text = text.replace(address, masked)
            escaped = json.dumps(address)[1:-1]
            if escaped != address:
                text = text.replace(escaped, masked)
        return mask_emails(text)

    def args(self, args: dict[str, Any], typed: Collection[str] = ()) -> dict[str, Any]:
        """Arguments with each address masked, and hashed beside it as `<name>_hash`."""
        out: dict[str, Any] = {}
        for name, value in args.items():
            if is_address(value):
                out[name] = mask_email(value)
                out[f"{name}_hash"] = self.email_hash(value)
            else:
                out[name] = self.data(value, typed)
        return out

    def data(self, node: Any, typed: Collection[str] = ()) -> Any:
        """A JSON-like value with the addresses in its strings masked."""
        if isinstance(node, str):
            return self.text(node, typed)
        if isinstance(node, dict):
            return {key: self.data(value, typed) for key, value in node.items()}  # pyright: ignore[reportUnknownVariableType]
        if isinstance(node, list):
            return [self.data(value, typed) for value in node]  # pyright: ignore[reportUnknownVariableType]
        return node

    def row(self, values: dict[str, Any], typed: Collection[str] = ()) -> dict[str, Any]:
        """A row to store (an audit row, an event's payload): every string masked, and the
        `args` mapping's addresses hashed too."""
        return {
            key: self.args(value, typed)
            if key == "args" and isinstance(value, dict)
            else self.data(value, typed)
            for key, value in values.items()
        }

    def event(self, payload: dict[str, Any], typed: Collection[str] = ()) -> dict[str, Any]:
        """An event's payload as stored: the customer's kinds as they are, the rest minimised."""
        return payload if payload["kind"] in VERBATIM_KINDS else self.row(payload, typed)
