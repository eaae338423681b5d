"""The ReAct loop: one customer turn, step by step, as typed events.

    incoming -> state (from the DB) -> prompt -> model -> parse -> guard -> tool -> observation
             -> ... until a reply, a confirmation request, an escalation, or the step budget.

Every step is committed before the next one starts, so another process can pick the
conversation up at any point. The loop never imports a concrete model backend or interface.

A confirmation request ends with the customer's answer (approved, then consumed or expired
with its turn; cancelled), with its expiry, with a newer request (superseded), or withdrawn:
the customer's next message, when it is not a bare yes or no right after the request
(`typed_answer`), answers it in words, and the request is withdrawn before the model reads
the message. So a request is pending only while it is the last thing ShopBot said: a turn
that replies without asking again leaves none open, and a later approval of a withdrawn one
is refused (`WithdrawnConfirmation`) and runs nothing.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from time import perf_counter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db import ConfirmationStatus, Conversation, ConversationStatus, Role, utcnow
from db.engine import bound_engine
from shopbot.actions import (
    Action,
    ActionSchema,
    EscalateArgs,
    LoopWatch,
    ParseFailure,
    ReplyArgs,
)
from shopbot.config import Settings
from shopbot.dispatch import dispatch, observe
from shopbot.errors import (
    ConversationError,
    MessageTooLong,
    ModelError,
    NoPendingConfirmation,
    ScriptError,
    WithdrawnConfirmation,
)
from shopbot.escalation import hand_to_a_person
from shopbot.events import (
    ActionProposed,
    ConfirmationDecided,
    ConfirmationRequested,
    ConfirmationWithdrawn,
    CustomerMessage,
    Escalated,
    Event,
    ObservationMade,
    ParseFailed,
    Reply,
    ReplyChunk,
    Thought,
    ToolStarted,
    TurnEnded,
    VerdictGiven,
)
from shopbot.guard import Guard
from shopbot.models.base import ChatModel, ModelRequest, StreamingChatModel
from shopbot.pii import Minimiser
from shopbot.prompts import PromptBuilder, Step
from shopbot.record import Announcer, Recorder, StoredListener
from shopbot.state import (
    ConversationState,
    HistoryLine,
    known_args,
    load_own_orders,
    load_state,
    load_step_facts,
)
from shopbot.storable import UNSTORABLE_MESSAGE, storable
from shopbot.streaming import ReplyDraft
from shopbot.tracing import Tracing, TurnTrace
from shopbot.turns import Lease, MessageRate, give_back, release, take_lease
from tools import Needs, ToolContext

log = logging.getLogger(__name__)

SORRY = "I'm sorry, I couldn't finish that. "


@dataclass(frozen=True)
class CustomerText:
    text: str


@dataclass(frozen=True)
class ConfirmationAnswer:
    confirmation_id: str
    approve: bool


Incoming = CustomerText | ConfirmationAnswer

WITHDRAWN = (
    "That request was withdrawn when you wrote instead of confirming it; nothing was done. "
    "Ask again if you still want it."
)
LOOPED = "ERROR: say it once, in a sentence or two, or take another action."
YES = frozenset({"y", "yes", "confirm", "ok", "okay", "yes please", "go ahead"})
NO = frozenset({"n", "no", "cancel", "no thanks"})


def asking(summary: str) -> str:
    """What the customer reads when a confirmation is requested."""
    return f"Please confirm: {summary}."


def typed_answer(text: str) -> bool | None:
    """True for a typed yes, False for a no, None for anything else ("Yes, please." counts)."""
    said = " ".join(re.findall(r"[\w']+", text.casefold()))
    return True if said in YES else False if said in NO else None


@dataclass
class Agent:
    """Runs turns; everything it needs is passed in (see `shopbot.app.build_agent`)."""

    sessions: async_sessionmaker[AsyncSession]
    model: ChatModel
    schema: ActionSchema
    guard: Guard
    settings: Settings
    pii: Minimiser
    """Masks the email addresses in what is stored of the agent's work (`shopbot.pii`)."""
    services: dict[str, Any] = field(default_factory=dict[str, Any])
    clock: Callable[[], datetime] = utcnow
    check_reply: Callable[[str, list[dict[str, Any]]], list[str]] | None = None
    """Audit flags for a reply given the turn's retrieved sources (ungrounded policy claims)."""
    on_stored: StoredListener | None = None
    """Told the event rows each commit stored (the web backend hands them to open streams)."""
    announce: Announcer | None = None
    """Adds a statement to each commit that stores events (the web backend's NOTIFY)."""
    instructions: str | None = None
    """The desk's role and rules for the prompt; None: the returns desk's own."""
    message_rate: MessageRate | None = None
    """A turn is refused (`RateLimited`) when the conversation's customer messages in the
    rate's window reached its limit."""
    tracing: Tracing = field(default_factory=Tracing)
    """Each turn's OpenTelemetry spans (`shopbot.tracing`); no-ops unless a provider is set."""

    def __post_init__(self) -> None:
        self.prompts = PromptBuilder(self.schema, instructions=self.instructions)

    async def run_turn(self, conversation_id: str, incoming: Incoming) -> AsyncGenerator[Event]:
        """One customer turn, as the events it yields; traced as one `invoke_agent` span."""
        with self.tracing.turn(conversation_id, self.model.name, self.pii) as trace:
            async with aclosing(self._run_turn(conversation_id, incoming, trace)) as events:
                async for event in events:
                    trace.saw(event)
                    yield event

    async def _run_turn(
        self, conversation_id: str, incoming: Incoming, trace: TurnTrace
    ) -> AsyncGenerator[Event]:
        if (
            isinstance(incoming, CustomerText)
            and len(incoming.text) > self.settings.max_message_chars
        ):
            raise MessageTooLong(
                f"Messages are limited to {self.settings.max_message_chars} characters."
            )
        if isinstance(incoming, CustomerText) and not storable(incoming.text):
            raise ConversationError(UNSTORABLE_MESSAGE)
        if isinstance(incoming, ConfirmationAnswer) and not storable(incoming.confirmation_id):
            raise NoPendingConfirmation("That confirmation is no longer open.")
        released = False
        owner = str(uuid.uuid4())
        async with self._turn_session() as session:
            now = self.clock()
            # Each step's rows go to the database at its commit (`Recorder`); tools that
            # need ids flush themselves.
            session.sync_session.autoflush = False
            title = (
                self.pii.text(incoming.text)[:60] if isinstance(incoming, CustomerText) else None
            )
            refused = False
            try:
                try:
                    lease = await take_lease(
                        session,
                        conversation_id,
                        now,
                        self.settings.turn_lease_seconds,
                        title,
                        self.message_rate,
                        owner=owner,
                        # An answer to a confirmation may be refused in the turn's first
                        # transaction; a refused one should count no turn.
                        commit_alone=isinstance(incoming, CustomerText),
                    )
                except ConversationError:
                    refused = True  # busy, rate-limited, unknown: nothing was taken
                    raise
                async for event in self._turn(session, lease, incoming, now, trace):
                    yield event
                released = True  # in the turn's last commit
            finally:
                if not released and not refused:
                    if session.in_transaction():
                        try:  # also frees SQLite's write lock for the give-back
                            await session.rollback()
                        except Exception:  # a lost connection: the lease is given back below
                            log.exception("rolling back the turn of %s failed", conversation_id)
                    # Stopped half-way, even in the lease's statement: the lease stands if it
                    # was committed (alone, or with a step); if not, this finds nothing to free.
                    await self._give_back(conversation_id, owner)
        await self._deliver_outbox()

    async def _give_back(self, conversation_id: str, owner: str) -> None:
        try:
            await give_back(self.sessions, conversation_id, owner)
        except Exception:  # the error that brought us here matters more
            log.exception("giving back the lease of %s failed", conversation_id)

    @asynccontextmanager
    async def _turn_session(self) -> AsyncGenerator[AsyncSession]:
        """A session on one connection, held for the turn: a turn commits every step, and
        each commit would hand the connection back to the pool and the next step take one
        again (a checkout, a reset and their bookkeeping, several times a turn)."""
        engine = bound_engine(self.sessions)
        if engine is None:
            async with self.sessions() as session:
                yield session
            return
        async with engine.connect() as conn, self.sessions(bind=conn) as session:
            yield session

    async def _turn(
        self,
        session: AsyncSession,
        lease: Lease,
        incoming: Incoming,
        now: datetime,
        trace: TurnTrace,
    ) -> AsyncIterator[Event]:
        started = perf_counter()
        conversation, owner = lease.conversation, lease.owner
        state = await load_state(session, conversation, now, facts=lease.facts)
        rec = Recorder(
            session,
            conversation.id,
            state.turn,
            state.last_seq + 1,
            self.pii,
            self.on_stored,
            self.announce,
        )
        steps: list[Step] = []
        opening: str | None = None
        pending = state.confirmation
        if (
            isinstance(incoming, CustomerText)
            and pending is not None
            and pending.status is ConfirmationStatus.PENDING
            and state.history
            and state.history[-1] == HistoryLine(Role.ASSISTANT, asking(pending.summary))
            and (approve := typed_answer(incoming.text)) is not None
        ):
            # A yes / no typed right after the request answers it, as the buttons do, in every
            # interface: left to the model, "yes" is a message with nothing to act on. After
            # anything else was said, "yes" may answer that instead, so it stays a message.
            incoming = ConfirmationAnswer(pending.id, approve)
        match incoming:
            case CustomerText(text=text):
                rec.message(Role.CUSTOMER, text)
                rec.emit(CustomerMessage(text=text))
                state.customer_texts.append(text)
                state.history.append(HistoryLine(Role.CUSTOMER, text))
                opening = text
                if pending is not None and pending.status is ConfirmationStatus.PENDING:
                    # Answered in words: withdrawn, whatever the model makes of the words.
                    await rec.withdraw(pending.id, now)
                    rec.emit(ConfirmationWithdrawn(confirmation_id=pending.id))
                    state.confirmation = None
                    opening = None
            case ConfirmationAnswer(confirmation_id=cid, approve=approve):
                conf = state.confirmation
                if conf is None or conf.id != cid or not await rec.decide(cid, approve, now):
                    if await rec.status_of(cid) is ConfirmationStatus.WITHDRAWN:
                        raise WithdrawnConfirmation(WITHDRAWN)
                    raise NoPendingConfirmation("That confirmation is no longer open.")
                said = f"{'Yes, go ahead' if approve else 'No, cancel'}: {conf.summary}"
                rec.message(Role.CUSTOMER, said)
                rec.emit(ConfirmationDecided(confirmation_id=cid, approved=approve))
                state.history.append(HistoryLine(Role.CUSTOMER, said))
                status = ConfirmationStatus.APPROVED if approve else None
                state.confirmation = replace(conf, status=status) if status else None
        await rec.commit()
        for event in rec.drain():
            yield event
        if conversation.held_by is None:  # else a staff member answers (`shopbot.handoff`)
            async for event in self._react(
                session, conversation, state, rec, steps, opening, trace
            ):
                yield event
        if isinstance(incoming, ConfirmationAnswer) and incoming.approve:
            await rec.expire_approved(self.clock())
        rec.emit(TurnEnded(turn=state.turn, steps=rec.model_steps, ms=_ms(started)))
        # Free the conversation in the commit that ends the turn: whoever sees
        # turn_ended may send the next message at once.
        rec.also(release(conversation.id, owner))
        await rec.commit()
        for event in rec.drain():
            yield event

    async def _deliver_outbox(self) -> None:
        """Send the emails this turn queued; what fails waits for the next try or worker."""
        outbox = self.services.get("outbox")
        if outbox is None:
            return
        try:
            await outbox.deliver_due()
        except Exception:
            log.exception("outbox delivery after a turn failed; the emails stay queued")

    async def _react(
        self,
        session: AsyncSession,
        conversation: Conversation,
        state: ConversationState,
        rec: Recorder,
        steps: list[Step],
        opening: str | None,
        trace: TurnTrace,
    ) -> AsyncIterator[Event]:
        parse_failures = denials = 0
        for step in range(1, self.settings.max_steps + 1):
            trace.step(step)
            allowed = self.guard.allowed(state)
            await load_own_orders(session, state)
            request = ModelRequest(
                messages=self.prompts.build(state, steps, allowed),
                allowed=allowed,
                schema=self.schema.json_schema(allowed),
                hints={
                    "order_id": state.mentioned_order_ids,
                    "email": state.mentioned_emails,
                    "citation": list(state.retrieved),
                    "lines": [
                        f"{oid}:{n}" for oid, lines in state.named_items().items() for n in lines
                    ],
                },
                known=known_args(self.guard.tools, allowed, state),
                conversation_id=conversation.id,
                opening=opening if step == 1 else None,
            )
            t0 = perf_counter()
            looped: str | None = None
            with trace.chat(request) as call:
                try:
                    if isinstance(self.model, StreamingChatModel):
                        # A reply shows while it is written; the step is parsed whole below.
                        draft, watch = ReplyDraft(), LoopWatch()
                        async with aclosing(self.model.stream(request)) as pieces:
                            async for piece in pieces:
                                if text := draft.feed(piece):
                                    yield ReplyChunk(step=step, text=text)
                                    # Closing the stream stops decoding: a model looping on a
                                    # phrase would otherwise write it to its token budget.
                                    if looped := watch.check(draft.shown):
                                        break
                        raw = draft.raw
                    else:
                        raw = await self.model.complete(request)
                except ScriptError:
                    raise
                except ModelError as exc:
                    log.warning("model failed in %s: %s", conversation.id, exc)
                    call.failed(exc)
                    await self._give_up(conversation, rec, f"model error: {exc}")
                    break
                call.answered(raw)
            model_ms = _ms(t0)
            parsed = self.schema.parse(raw) if looped is None else ParseFailure.looping(raw, looped)
            if isinstance(parsed, ParseFailure):
                parse_failures += 1
                trace.parse_failed(parsed.error)
                rec.log(step, raw, parse_error=parsed.error, model_ms=model_ms)
                rec.emit(ParseFailed(step=step, error=parsed.error))
                if parsed.looped is None:
                    steps.append(Step(f"(invalid output) {raw[:300]}", f"ERROR: {parsed.error}"))
                else:  # shown the loop again, a small model tends to write it again
                    steps.append(Step("(a reply saying one thing over and over)", LOOPED))
                if parse_failures > self.settings.max_parse_retries:
                    await self._give_up(
                        conversation, rec, "the model kept producing invalid actions"
                    )
                    break
                await rec.commit()
                for event in rec.drain():
                    yield event
                continue
            parse_failures = 0
            action = parsed
            if action.thought:
                rec.emit(Thought(step=step, text=action.thought))
            rec.emit(ActionProposed(step=step, tool=action.tool, args=action.arguments))
            t1 = perf_counter()
            known = self.guard.tools.get(action.tool)
            needs = known.needs if known is not None else Needs.NOTHING
            await load_step_facts(session, state, action.args, needs)
            verdict = self.guard.check(action, state)
            guard_ms = _ms(t1)
            trace.verdict(action.tool, verdict, guard_ms)
            rec.emit(
                VerdictGiven(
                    step=step, tool=action.tool, decision=verdict.decision, reason=verdict.reason
                )
            )
            entry = rec.log(
                step,
                raw,
                thought=action.thought,
                tool=action.tool,
                args=action.arguments,
                verdict=verdict.decision,
                reason=verdict.reason,
                model_ms=model_ms,
                guard_ms=guard_ms,
            )
            if verdict.decision == "deny":
                denials += 1
                steps.append(Step(_render(action), f"DENIED: {verdict.reason}"))
                if denials >= self.settings.max_denials:
                    await self._give_up(
                        conversation, rec, f"denied {denials} times: {verdict.reason}"
                    )
                    break
            elif verdict.decision == "confirm":
                await self._ask_confirmation(action, rec, state)
                break
            elif isinstance(action.args, ReplyArgs):
                self._reply(rec, action.args.message, state, action.args.citations)
                if self.check_reply is not None:
                    entry.flags = self.check_reply(action.args.message, state.sources)
                break
            elif isinstance(action.args, EscalateArgs):
                await self._escalate(conversation, rec, action.args.reason)
                break
            else:
                denials = 0
                spec = self.guard.tools[action.tool]
                if spec.side_effect and not await self._consume(state, rec):
                    entry.verdict, entry.reason = (
                        "deny",
                        "The confirmation was already used or has expired.",
                    )
                    steps.append(Step(_render(action), f"DENIED: {entry.reason}"))
                else:
                    rec.emit(ToolStarted(step=step, tool=action.tool, text=spec.activity))
                    if spec.side_effect:
                        await rec.commit()  # the attempt is on record before it acts
                        for event in rec.drain():  # the customer sees it is under way
                            yield event
                    t2 = perf_counter()
                    ctx = ToolContext(
                        session,
                        conversation.id,
                        state.customer_id,
                        self.settings,
                        state.now,
                        self.services,
                    )
                    data, error = await trace.execute_tool(
                        action.tool, dispatch(ctx, spec, action, conversation)
                    )
                    entry.observation, entry.tool_ms = data, _ms(t2)
                    observe(state, conversation, spec, data, error)
                    state.done.add(action.digest)
                    rec.emit(
                        ObservationMade(
                            step=step, tool=action.tool, data=data, error=error, ms=entry.tool_ms
                        )
                    )
                    steps.append(Step(_render(action), json.dumps(data, default=str)))
            await rec.commit()
            for event in rec.drain():
                yield event
        else:
            await self._give_up(conversation, rec, "step budget spent")
        trace.end_step()

    async def _consume(self, state: ConversationState, rec: Recorder) -> bool:
        conf = state.confirmation
        ok = conf is not None and await rec.consume(conf.id, state.now)
        state.confirmation = None
        return ok

    async def _ask_confirmation(
        self, action: Action, rec: Recorder, state: ConversationState
    ) -> None:
        spec = self.guard.tools[action.tool]
        summary = spec.confirm_text.format(**action.arguments, items=_items(action, state))
        row = await rec.request_confirmation(
            action, summary, self.clock(), self.settings.policy.confirmation_ttl_minutes
        )
        rec.emit(
            ConfirmationRequested(
                confirmation_id=row.id,
                tool=action.tool,
                args=action.arguments,
                summary=summary,
                expires_at=row.expires_at,
            )
        )
        text = asking(summary)
        rec.message(Role.ASSISTANT, text)
        rec.emit(Reply(text=text))

    def _reply(
        self, rec: Recorder, text: str, state: ConversationState, anchors: list[str]
    ) -> None:
        citations = [state.retrieved[a] for a in anchors if a in state.retrieved]
        rec.message(Role.ASSISTANT, text, citations)
        rec.emit(Reply(text=text, citations=citations))

    async def _escalate(
        self, conversation: Conversation, rec: Recorder, reason: str, apology: str = ""
    ) -> None:
        conversation.status = ConversationStatus.ESCALATED
        rec.emit(Escalated(reason=reason))
        # Support is emailed in this step's commit; the customer is told when to expect whom.
        text = apology + await hand_to_a_person(
            rec.session,
            self.settings,
            conversation.id,
            self.pii.text(reason),
            self.clock(),
            known=conversation.customer_id is not None,
        )
        rec.message(Role.ASSISTANT, text)
        rec.emit(Reply(text=text))

    async def _give_up(self, conversation: Conversation, rec: Recorder, reason: str) -> None:
        """End the turn safely: an apology and, when configured, a human takes over."""
        if self.settings.escalate_on_failure:
            await self._escalate(conversation, rec, reason, SORRY)
        else:
            text = "I'm sorry, something went wrong on my side. Could you say that again?"
            rec.message(Role.ASSISTANT, text)
            rec.emit(Reply(text=text))


def _items(action: Action, state: ConversationState) -> str:
    """The order lines an action names, as the customer knows them: "Slim Fit Jeans (line 1)"."""
    lines: list[int] = getattr(action.args, "lines", None) or []
    order = state.orders.get(str(getattr(action.args, "order_id", "")))
    if order is None:
        return ", ".join(f"line {n}" for n in lines)
    return ", ".join(
        f"{order.lines[n].name} (line {n})" if n in order.lines else f"line {n}" for n in lines
    )


def _render(action: Action) -> str:
    return json.dumps({"tool": action.tool, "args": action.arguments})


def _ms(since: float) -> float:
    return round((perf_counter() - since) * 1000, 3)
