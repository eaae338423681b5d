"""Scripted conversations (`fixtures/conversations/*.yaml`): the regression suite and the
documentation of behaviour.

A script gives the customer's turns, what the scripted model outputs at each step, and what
must follow: the actions and the guard's verdicts, words in the reply, and rows in named
tables afterwards. See fixtures/conversations/README.md for the format.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from enum import Enum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from db import Base, Conversation, utcnow
from shopbot.app import start_conversation
from shopbot.config import Settings
from shopbot.errors import ScriptError, ShopBotError
from shopbot.events import (
    ConfirmationRequested,
    Event,
    ObservationMade,
    ParseFailed,
    Reply,
    VerdictGiven,
)
from shopbot.harness import open_harness
from shopbot.identity import sign_customer
from shopbot.loop import ConfirmationAnswer, CustomerText, Incoming
from shopbot.models.scripted import ScriptedModel
from shopbot.signing_keys import identity_secret
from tools.desks import DESKS
from tools.mailer.loopback import LoopbackInbox


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpectedStep(_Strict):
    tool: str | None = None
    verdict: Literal["allow", "deny", "confirm"] | None = None
    reason_contains: str | None = None
    parse_error: bool = False


class TurnExpectation(_Strict):
    steps: list[ExpectedStep] | None = None
    """Every step of the turn, in order (checked only when given)."""
    reply_contains: list[str] = Field(default_factory=list[str])
    reply_excludes: list[str] = Field(default_factory=list[str])
    confirmation: str | None = None
    """The tool whose confirmation the turn must end by asking for."""
    escalated: bool | None = None
    error: str | None = None
    """The turn must be refused with an error containing this text (nothing recorded)."""


class Turn(_Strict):
    customer: str | None = None
    confirm: bool | None = None
    """Answer the pending confirmation: true approves, false declines."""
    model: list[str | dict[str, Any]] = Field(default_factory=list[str | dict[str, Any]])
    expect: TurnExpectation = TurnExpectation()

    @model_validator(mode="after")
    def _one_input(self) -> Turn:
        if (self.customer is None) == (self.confirm is None):
            raise ValueError("a turn has either `customer` or `confirm`")
        return self


class TableExpectation(_Strict):
    where: dict[str, Any] = Field(default_factory=dict[str, Any])
    rows: list[dict[str, Any]] | None = None
    """Exactly these rows (in creation order), comparing only the columns given."""
    count: int | None = None


class EmailExpectation(_Strict):
    to: str
    subject_contains: str = ""
    body_contains: list[str] = Field(default_factory=list[str])
    attachment: str | None = None
    """The content type of the one attachment, e.g. application/pdf."""


class After(_Strict):
    conversation: dict[str, Any] = Field(default_factory=dict[str, Any])
    tables: dict[str, TableExpectation] = Field(default_factory=dict[str, TableExpectation])
    labels: int | None = None
    """Labels the carrier sandbox holds at the end."""
    emails: list[EmailExpectation] | None = None
    """Exactly the emails the SMTP server received, in order."""


class CarrierFaults(_Strict):
    """Faults of the carrier sandbox during the conversation."""

    fail_next: int = 0
    """The next N requests get a 503."""
    rate_limit_next: int = 0
    """The next N requests get a 429 with Retry-After: 1."""
    fail_after_create: int = 0
    """The next N label creations store the label, then fail in `after_create_mode`."""
    after_create_mode: Literal["error", "disconnect", "hang"] = "error"


class Script(_Strict):
    title: str
    description: str = ""
    desk: str | None = None
    """The desk it runs on, as `SHOPBOT_DESK` names one (unset: the configured desk); a
    folder or file is relative to the script's own (`desk: ..` for a desk's conversations
    inside its folder)."""
    signed_in_as: str | None = None
    """Start as this customer, signed by the shop's site, instead of anonymous."""
    carrier: CarrierFaults = CarrierFaults()
    smtp_down: bool = False
    """The SMTP server is down during the conversation; it comes back afterwards, and the
    outbox is delivered again (twice, to show nothing is sent twice)."""
    turns: list[Turn]
    after: After = After()

    @classmethod
    def load(cls, path: Path) -> Script:
        script = cls.model_validate(yaml.safe_load(path.read_text()))
        if script.desk is not None:
            target, colon, name = script.desk.partition(":")
            beside = path.parent / target
            if target not in DESKS and beside.exists():
                script.desk = f"{beside.resolve()}{colon}{name}"
        return script

    def uses(self, tool: str) -> bool:
        return any(
            isinstance(out, dict) and out.get("action", {}).get("tool") == tool
            for turn in self.turns
            for out in turn.model
        )


class ReplayResult(BaseModel):
    name: str
    title: str
    passed: bool
    failures: list[str]
    turns: int


async def replay(
    script: Script,
    settings: Settings,
    *,
    name: str = "",
    policy: Any = None,
    timings: list[float] | None = None,
) -> ReplayResult:
    """Run `script` against the database in `settings` (a fresh, seeded one), with the
    carrier sandbox in process and a real SMTP server on loopback."""
    from tools.carrier import Faults

    if script.desk is not None:
        settings = settings.model_copy(update={"desk": script.desk})

    faults = Faults()
    if script.carrier.fail_next:
        faults.fail_next(script.carrier.fail_next)
    if script.carrier.rate_limit_next:
        faults.rate_limit_next(script.carrier.rate_limit_next, retry_after=1)
    if script.carrier.fail_after_create:
        faults.fail_after_create(
            script.carrier.fail_after_create, mode=script.carrier.after_create_mode
        )
    inbox = LoopbackInbox()
    if not script.smtp_down:
        inbox.start()
    later = timedelta()
    model = ScriptedModel()
    failures: list[str] = []
    try:
        async with open_harness(
            settings,
            model,
            inbox=inbox,
            policy=policy,
            faults=faults,
            clock=lambda: utcnow() + later,
        ) as harness:
            cid, said = await _converse(
                script, harness.agent, model, harness.sessions, settings, timings
            )
            failures += said
            if script.smtp_down:
                inbox.start()  # the relay is back; the backoff has passed
                later = timedelta(days=1)
                await harness.outbox.deliver_due()
                await harness.outbox.deliver_due()
            async with harness.sessions() as session:
                failures += await check_after(session, cid, script.after)
            if script.after.labels is not None:
                stored = harness.carrier_labels()
                if stored != script.after.labels:
                    failures.append(
                        f"the carrier holds {stored} labels, expected {script.after.labels}"
                    )
        if script.after.emails is not None:
            failures += check_emails(script.after.emails, inbox.received)
    finally:
        inbox.stop()
    return ReplayResult(
        name=name,
        title=script.title,
        passed=not failures,
        failures=failures,
        turns=len(script.turns),
    )


async def _converse(
    script: Script,
    agent: Any,
    model: ScriptedModel,
    sessions: Any,
    settings: Settings,
    timings: list[float] | None,
) -> tuple[str, list[str]]:
    failures: list[str] = []
    token = None
    if script.signed_in_as:
        token = sign_customer(script.signed_in_as, identity_secret(settings))
    cid = await start_conversation(sessions, settings, customer_token=token)
    pending: str | None = None
    seen: dict[str, Any] = {}
    for number, turn in enumerate(script.turns, 1):
        where = f"turn {number}"
        model.extend(_placeholders(out, seen) for out in turn.model)
        incoming: Incoming
        if turn.customer is not None:
            incoming = CustomerText(turn.customer)
        else:
            incoming = ConfirmationAnswer(pending or "none", bool(turn.confirm))
        events: list[Event] = []
        started = time.perf_counter()
        try:
            async for event in agent.run_turn(cid, incoming):
                events.append(event)
                if isinstance(event, ObservationMade):
                    seen.update(event.data)
            if timings is not None:
                timings.append((time.perf_counter() - started) * 1000)
        except ScriptError as exc:
            failures.append(f"{where}: {exc}")
            break
        except ShopBotError as exc:
            if turn.expect.error is None or turn.expect.error not in str(exc):
                failures.append(f"{where}: refused: {exc}")
        else:
            if turn.expect.error is not None:
                failures.append(f"{where}: expected refusal {turn.expect.error!r}")
        if model.remaining:
            failures.append(f"{where}: {model.remaining} scripted outputs unused")
            model.outputs = model.outputs[: len(model.calls)]
        failures += [f"{where}: {f}" for f in check_turn(turn.expect, events)]
        requested = [e for e in events if isinstance(e, ConfirmationRequested)]
        pending = requested[-1].confirmation_id if requested else pending
    return cid, failures


_PLACEHOLDER = re.compile(r"^\{\{\s*(\w+)\s*\}\}$")


def _placeholders(output: str | dict[str, Any], seen: dict[str, Any]) -> Any:
    """A model output whose `"{{ return_id }}"` strings take the value the latest observation
    gave that key, when the model is called (a script cannot know database ids ahead)."""
    if isinstance(output, str) or "{{" not in json.dumps(output):
        return output

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}  # pyright: ignore[reportUnknownVariableType]
        if isinstance(node, list):
            return [fill(v) for v in node]  # pyright: ignore[reportUnknownVariableType]
        match = _PLACEHOLDER.match(node) if isinstance(node, str) else None
        return seen.get(match.group(1), node) if match else node

    def render(_request: object) -> str:
        return json.dumps(fill(output))

    return render


def check_emails(expected: list[EmailExpectation], received: list[EmailMessage]) -> list[str]:
    failures: list[str] = []
    if len(received) != len(expected):
        failures.append(
            f"the SMTP server received {len(received)} emails, expected {len(expected)}: "
            + ", ".join(f"{m['To']}: {m['Subject']}" for m in received)
        )
    for i, (want, got) in enumerate(zip(expected, received, strict=False), 1):
        body = got.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        attachments = [part.get_content_type() for part in got.iter_attachments()]
        if str(got["To"]) != want.to:
            failures.append(f"email {i} went to {got['To']}, expected {want.to}")
        if want.subject_contains not in str(got["Subject"]):
            failures.append(f"email {i} subject {got['Subject']!r} lacks {want.subject_contains!r}")
        failures += [f"email {i} lacks {w!r}" for w in want.body_contains if w not in text]
        if want.attachment is not None and attachments != [want.attachment]:
            failures.append(f"email {i} attachments {attachments}, expected [{want.attachment}]")
    return failures


def check_turn(expect: TurnExpectation, events: list[Event]) -> list[str]:
    failures: list[str] = []
    if expect.steps is not None:
        seen = [
            ExpectedStep(tool=e.tool, verdict=e.decision, reason_contains=e.reason)
            if isinstance(e, VerdictGiven)
            else ExpectedStep(parse_error=True)
            for e in events
            if isinstance(e, VerdictGiven | ParseFailed)
        ]
        if len(seen) != len(expect.steps):
            failures.append(f"expected {len(expect.steps)} steps, got {len(seen)}: {_steps(seen)}")
        for i, (want, got) in enumerate(zip(expect.steps, seen, strict=False), 1):
            if not _step_matches(want, got):
                failures.append(f"step {i}: expected {_steps([want])}, got {_steps([got])}")
    reply = " ".join(e.text for e in events if isinstance(e, Reply))
    failures += [f"reply lacks {w!r}: {reply!r}" for w in expect.reply_contains if w not in reply]
    failures += [f"reply has {w!r}: {reply!r}" for w in expect.reply_excludes if w in reply]
    asked = [e.tool for e in events if isinstance(e, ConfirmationRequested)]
    if expect.confirmation is not None and asked != [expect.confirmation]:
        failures.append(f"expected a confirmation of {expect.confirmation}, got {asked}")
    escalated = any(e.kind == "escalated" for e in events)
    if expect.escalated is not None and escalated != expect.escalated:
        failures.append(f"escalated is {escalated}, expected {expect.escalated}")
    return failures


def _step_matches(want: ExpectedStep, got: ExpectedStep) -> bool:
    if want.parse_error or got.parse_error:
        return want.parse_error == got.parse_error
    return (
        (want.tool is None or want.tool == got.tool)
        and (want.verdict is None or want.verdict == got.verdict)
        and (want.reason_contains is None or want.reason_contains in (got.reason_contains or ""))
    )


def _steps(steps: list[ExpectedStep]) -> str:
    return ", ".join(
        "parse_error"
        if s.parse_error
        else f"{s.tool}:{s.verdict}" + (f" ({s.reason_contains})" if s.verdict == "deny" else "")
        for s in steps
    )


async def check_after(session: Any, conversation_id: str, after: After) -> list[str]:
    failures: list[str] = []
    conversation = await session.get(Conversation, conversation_id)
    for column, want in after.conversation.items():
        got = _plain(getattr(conversation, column))
        if got != want:
            failures.append(f"conversation.{column} is {got!r}, expected {want!r}")
    for name, expect in after.tables.items():
        table = Base.metadata.tables.get(name)
        if table is None:
            failures.append(f"no table {name!r}")
            continue
        # Creation order where the key is random (confirmations have uuid keys).
        order = [table.c.created_at] if "created_at" in table.c else []
        query = select(table).order_by(*order, *table.primary_key.columns)
        for column, value in expect.where.items():
            query = query.where(table.c[column] == value)
        rows = [dict(r._mapping) for r in (await session.execute(query))]
        if expect.count is not None and len(rows) != expect.count:
            failures.append(
                f"{name}: {len(rows)} rows where {expect.where}, expected {expect.count}"
            )
        if expect.rows is not None:
            got = [
                {k: _plain(row.get(k)) for k in want}
                for row, want in zip(rows, expect.rows, strict=False)
            ]
            if len(rows) != len(expect.rows) or got != expect.rows:
                failures.append(
                    f"{name} where {expect.where}: got {got} ({len(rows)} rows), expected {expect.rows}"
                )
    return failures


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


__all__ = [
    "EmailExpectation",
    "ReplayResult",
    "Script",
    "check_emails",
    "replay",
]
