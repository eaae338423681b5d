"""The ReAct loop: one customer turn, step by step, as typed events.

    incoming -> state (from the DB) -> prompt -> model -> parse -> guard -> tool -> observation
             -> ... until a reply, a confirmation request, an escalation, or the step budget.

A step is four calls, each with a typed result: `_ask` (the model's `Answer`, streamed or
not), `_parse` (gate 1: an `Action`, or `Invalid`), `_judge` (gate 2: the guard's `Verdict`,
told and recorded as given) and `_act` (gate 3). The step ends in a `StepOutcome`, and
`_react` matches on it: `Replied`, `AskedToConfirm` and `HandedOver` end the turn;
`Observed`, `Lapsed`, `Denied` and `Invalid` go on; `ModelFailed`, or too many denied or
invalid steps in a row, or the step budget spent, end it safely (`_give_up`).

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
from functools import cached_property
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
from shopbot.guard import Guard, Verdict
from shopbot.models.base import (
    ChatModel,
    ModelRequest,
    ModelStep,
    RawText,
    StepDelta,
    StreamingChatModel,
)
from shopbot.outcomes import (
    Answer,
    AskedToConfirm,
    Denied,
    HandedOver,
    Invalid,
    Lapsed,
    ModelFailed,
    Observed,
    Replied,
    StepOutcome,
)
from shopbot.pii import Minimiser
from shopbot.prompts import PromptBuilder, Step
from shopbot.record import Announcer, AuditEntry, Recorder, StoredListener
from shopbot.state import (
    ConversationState,
    HistoryLine,
    known_args,
    load_own_orders,
    load_state,
    load_step_facts,
)
from shopbot.storable import UNSTORABLE_MESSAGE, storable
from shopbot.tracing import Tracing, TurnTrace
from shopbot.turns import Lease, MessageRate, give_back, release, take_lease
from tools import Services, ToolContext

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
LAPSED = "The confirmation was already used or has expired."
YES = frozenset({"y", "yes", "confirm", "ok", "okay", "yes please", "go ahead"})
NO = frozenset({"n", "no", "cancel", "no thanks"})


def asking(summary: str) -> str:
    """What the customer reads when a confirmation is requested."""
    return f"Please confirm: {summary}."


def typed_answer(text: str) -> bool | None:
    """True for a typed yes, False for a no, None for anything else ("Yes, please." counts)."""
    said = " ".join(re.findall(r"[\w']+", text.casefold()))
    return True if said in YES else False if said in NO else None


def _asks(line: HistoryLine) -> bool:
    """Did the assistant end its message with a question?"""
    return line.role is Role.ASSISTANT and line.text.rstrip().endswith("?")


@dataclass(frozen=True)
class TurnContext:
    """What the steps of one turn share."""

    session: AsyncSession
    conversation: Conversation
    state: ConversationState
    rec: Recorder
    trace: TurnTrace
    opening: str | None
    """The customer's message, for the model's first step (`ModelRequest.opening`)."""
    steps: list[Step] = field(default_factory=list[Step])
    """This turn's steps so far, as the model reads them."""


@dataclass(frozen=True, eq=False)
class Agent:
    """Runs turns; everything it needs is passed to its constructor, and nothing is set on it
    afterwards (see `shopbot.app.build_agent`)."""

    sessions: async_sessionmaker[AsyncSession]
    model: ChatModel
    schema: ActionSchema
    guard: Guard
    settings: Settings
    pii: Minimiser
    """Masks the email addresses in what is stored of the agent's work (`shopbot.pii`)."""
    instructions: str
    """The desk's role and rules: the prompt's head (`tools.desk.Desk`)."""
    services: Services = field(default_factory=Services)
    """The outside world the tools reach (`tools.base.Services`)."""
    clock: Callable[[], datetime] = utcnow
    check_reply: Callable[[str, list[dict[str, Any]]], list[str]] | None = None
    """Audit flags for a reply given the turn's retrieved sources (ungrounded policy claims)."""
    on_stored: StoredListener | None = None
    """Told the event rows each commit stored (the web backend hands them to open streams)."""
    announce: Announcer | None = None
    """Adds a statement to each commit that stores events (the web backend's NOTIFY)."""
    message_rate: MessageRate | None = None
    """A turn is refused (`RateLimited`) when the conversation's customer messages in the
    rate's window reached its limit."""
    tracing: Tracing = field(default_factory=Tracing)
    """Each turn's OpenTelemetry spans (`shopbot.tracing`); no-ops unless a provider is set."""

    @cached_property
    def prompts(self) -> PromptBuilder:
        return PromptBuilder(self.schema, instructions=self.instructions)

    async def run_turn(self, conversation_id: str, incoming: Incoming) -> AsyncGenerator[Event]:
        """One customer turn, as the events it yields; traced as one `invoke_agent` span."""
        with self.tracing.turn(conversation_id, self.model.name, self.pii) as trace:
            async with aclosing(self._run_turn(conversation_id, incoming, trace)) as events:
                async for event in events:
                    trace.saw(event)
                    yield event

    def _refuse_unfit(self, incoming: Incoming) -> None:
        """Refuse, before anything is taken or stored, an input no turn may start with."""
        if isinstance(incoming, ConfirmationAnswer):
            if not storable(incoming.confirmation_id):
                raise NoPendingConfirmation("That confirmation is no longer open.")
            return
        if len(incoming.text) > self.settings.max_message_chars:
            raise MessageTooLong(
                f"Messages are limited to {self.settings.max_message_chars} characters."
            )
        if not storable(incoming.text):
            raise ConversationError(UNSTORABLE_MESSAGE)

    async def _run_turn(
        self, conversation_id: str, incoming: Incoming, trace: TurnTrace
    ) -> AsyncGenerator[Event]:
        self._refuse_unfit(incoming)
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
        conversation = lease.conversation
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
        incoming = _as_typed_answer(incoming, state)
        opening = await self._take_in(incoming, state, rec, now)
        await rec.commit()
        for event in rec.drain():
            yield event
        if conversation.held_by is None:  # else a staff member answers (`shopbot.handoff`)
            turn = TurnContext(session, conversation, state, rec, trace, opening)
            async for event in self._react(turn):
                yield event
            trace.end_step()
        if isinstance(incoming, ConfirmationAnswer) and incoming.approve:
            await rec.expire_approved(self.clock())
        rec.emit(TurnEnded(turn=state.turn, steps=rec.model_steps, ms=_ms(started)))
        # Free the conversation in the commit that ends the turn: whoever sees
        # turn_ended may send the next message at once.
        rec.also(release(conversation.id, lease.owner))
        await rec.commit()
        for event in rec.drain():
            yield event

    async def _take_in(
        self, incoming: Incoming, state: ConversationState, rec: Recorder, now: datetime
    ) -> str | None:
        """Record the customer's message or answer; the opening the model's first step may
        be shown (`ModelRequest.opening`): a message that withdrew no request."""
        match incoming:
            case CustomerText(text=text):
                rec.message(Role.CUSTOMER, text)
                rec.emit(CustomerMessage(text=text))
                state.customer_texts.append(text)
                asked = bool(state.history) and _asks(state.history[-1])
                state.history.append(HistoryLine(Role.CUSTOMER, text))
                pending = state.confirmation
                if pending is None or pending.status is not ConfirmationStatus.PENDING:
                    # An answer to the assistant's question ("Shall I return the shirt?" ->
                    # "No, thanks.") is the model's to read, however much it looks like one.
                    return None if asked else text
                # Answered in words: withdrawn, whatever the model makes of the words.
                await rec.withdraw(pending.id, now)
                rec.emit(ConfirmationWithdrawn(confirmation_id=pending.id))
                state.confirmation = None
                return None
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
                return None

    async def _deliver_outbox(self) -> None:
        """Send the emails this turn queued; what fails waits for the next try or worker."""
        outbox = self.services.outbox
        if outbox is None:
            return
        try:
            await outbox.deliver_due()
        except Exception:
            log.exception("outbox delivery after a turn failed; the emails stay queued")

    async def _react(self, turn: TurnContext) -> AsyncIterator[Event]:
        """Step until an outcome ends the turn. Each step that goes on is committed before
        the next; too many invalid or denied steps in a row, a model failure or the step
        budget spent end the turn safely (`_give_up`)."""
        invalid = denied = 0
        for number in range(1, self.settings.max_steps + 1):
            turn.trace.step(number)
            async with aclosing(self._step(turn, number)) as items:
                async for item in items:
                    if not isinstance(item, StepOutcome):
                        yield item
                        continue
                    match item:
                        case Invalid():
                            invalid += 1
                            if invalid > self.settings.max_parse_retries:
                                await self._give_up(
                                    turn, "the model kept producing invalid actions"
                                )
                                return
                        case Denied(reason=reason):
                            invalid, denied = 0, denied + 1
                            if denied >= self.settings.max_denials:
                                await self._give_up(turn, f"denied {denied} times: {reason}")
                                return
                        case Observed() | Lapsed():
                            invalid = denied = 0
                        case ModelFailed(error=error):
                            await self._give_up(turn, f"model error: {error}")
                            return
                        case Replied() | AskedToConfirm() | HandedOver():
                            return
            await turn.rec.commit()
            for event in turn.rec.drain():
                yield event
        await self._give_up(turn, "step budget spent")

    async def _step(self, turn: TurnContext, number: int) -> AsyncGenerator[Event | StepOutcome]:
        """One step, ask -> parse -> guard -> act: its events as they happen, its outcome
        last."""
        async with aclosing(self._ask(turn, number)) as asked:
            async for answer in asked:
                if not isinstance(answer, Answer):
                    yield answer  # a reply's draft as it is written, or the model's failure
                    continue
                action = self._parse(turn, number, answer)
                if isinstance(action, Invalid):
                    yield action
                    return
                verdict, entry = await self._judge(turn, number, action, answer)
                match verdict.decision:
                    case "deny":
                        turn.steps.append(_taken(action, f"DENIED: {verdict.reason}"))
                        yield Denied(verdict.reason)
                    case "confirm":
                        yield await self._ask_confirmation(turn, action)
                    case "allow":
                        async for item in self._act(turn, number, action, entry):
                            yield item

    async def _ask(
        self, turn: TurnContext, number: int
    ) -> AsyncGenerator[ReplyChunk | Answer | ModelFailed]:
        """The model's step, its answer last. A streaming model's reply shows while it is
        written (the step is parsed whole); a model failing is an outcome."""
        request = await self._request(turn, number)
        started = perf_counter()
        looped: str | None = None
        step: ModelStep | None = None
        with turn.trace.chat(request) as call:
            try:
                if isinstance(self.model, StreamingChatModel):
                    written: list[str] = []
                    shown, watch = "", LoopWatch()
                    async with aclosing(self.model.stream(request)) as deltas:
                        async for delta in deltas:
                            if not isinstance(delta, StepDelta):
                                step = delta  # the whole step, last
                                continue
                            written.append(delta.raw)
                            if delta.reply:
                                shown += delta.reply
                                yield ReplyChunk(step=number, text=delta.reply)
                                # Closing the stream stops decoding: a model looping on a
                                # phrase would otherwise write it to its token budget.
                                if looped := watch.check(shown):
                                    step = RawText("".join(written))
                                    break
                    if step is None:
                        raise ModelError(f"{self.model.name} ended its stream without a step")
                else:
                    step = await self.model.complete(request)
            except ScriptError:
                raise
            except ModelError as exc:
                log.warning("model failed in %s: %s", turn.conversation.id, exc)
                call.failed(exc)
                answer: Answer | ModelFailed = ModelFailed(str(exc))
            else:
                call.answered(step.raw)
                answer = Answer(step, _ms(started), looped)
        yield answer

    async def _request(self, turn: TurnContext, number: int) -> ModelRequest:
        """What the model is asked: the prompt (and the situation it tells), the actions the
        guard could allow now, and the values the state knows for their arguments."""
        state = turn.state
        allowed = self.guard.allowed(state)
        await load_own_orders(turn.session, state)
        prompt = self.prompts.build(state, turn.steps, allowed)
        return ModelRequest(
            messages=prompt.messages,
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
            conversation_id=turn.conversation.id,
            opening=turn.opening if number == 1 else None,
            situation=prompt.situation,
        )

    def _parse(self, turn: TurnContext, number: int, answer: Answer) -> Action | Invalid:
        """Gate 1: the answer as an action; a failure is recorded and shown to the model."""
        if answer.looped is None:
            parsed = self.schema.parse(answer.step)
        else:
            parsed = ParseFailure.looping(answer.raw, answer.looped)
        if not isinstance(parsed, ParseFailure):
            return parsed
        turn.trace.parse_failed(parsed.error)
        turn.rec.log(number, answer.raw, parse_error=parsed.error, model_ms=answer.ms)
        turn.rec.emit(ParseFailed(step=number, error=parsed.error))
        if parsed.looped is None:
            turn.steps.append(
                Step(f"(invalid output) {answer.raw[:300]}", f"ERROR: {parsed.error}")
            )
        else:  # shown the loop again, a small model tends to write it again
            turn.steps.append(Step("(a reply saying one thing over and over)", LOOPED))
        return Invalid(parsed.error)

    async def _judge(
        self, turn: TurnContext, number: int, action: Action, answer: Answer
    ) -> tuple[Verdict, AuditEntry]:
        """Gate 2: the guard's verdict, on the state with the facts the action needs loaded;
        told (an event, the trace) and recorded (the step's audit row) as the guard gave it."""
        rec = turn.rec
        if action.thought:
            rec.emit(Thought(step=number, text=action.thought))
        rec.emit(ActionProposed(step=number, tool=action.tool, args=action.arguments))
        started = perf_counter()
        spec = self.guard.tools.get(action.tool)
        await load_step_facts(turn.session, turn.state, action.args, spec)
        verdict = self.guard.check(action, turn.state)
        guard_ms = _ms(started)
        turn.trace.verdict(action.tool, verdict, guard_ms)
        decision, reason = verdict.decision, verdict.reason
        rec.emit(VerdictGiven(step=number, tool=action.tool, decision=decision, reason=reason))
        entry = rec.log(
            number,
            answer.raw,
            thought=action.thought,
            tool=action.tool,
            args=action.arguments,
            verdict=decision,
            reason=reason,
            model_ms=answer.ms,
            guard_ms=guard_ms,
        )
        return verdict, entry

    async def _act(
        self, turn: TurnContext, number: int, action: Action, entry: AuditEntry
    ) -> AsyncIterator[Event | StepOutcome]:
        """Gate 3, for an action the guard allowed: a reply or an escalation ends the turn,
        a tool runs and its observation is shown to the model."""
        match action.args:
            case ReplyArgs(message=message, citations=citations):
                self._reply(turn, message, citations)
                if self.check_reply is not None:
                    entry.flags = self.check_reply(message, turn.state.sources)
                yield Replied(message)
            case EscalateArgs(reason=reason):
                await self._escalate(turn, reason)
                yield HandedOver(reason)
            case _:
                async for item in self._run_tool(turn, number, action, entry):
                    yield item

    async def _run_tool(
        self, turn: TurnContext, number: int, action: Action, entry: AuditEntry
    ) -> AsyncIterator[Event | StepOutcome]:
        spec = self.guard.tools[action.tool]
        state, rec = turn.state, turn.rec
        if spec.side_effect and not await self._spend_confirmation(state, rec):
            yield self._lapsed(turn, number, action, entry)
            return
        rec.emit(ToolStarted(step=number, tool=action.tool, text=spec.activity))
        if spec.side_effect:
            await rec.commit()  # the attempt is on record before it acts
            for event in rec.drain():  # the customer sees it is under way
                yield event
        started = perf_counter()
        ctx = ToolContext(
            turn.session,
            turn.conversation.id,
            state.customer_id,
            self.settings,
            state.now,
            self.services,
        )
        data, error = await turn.trace.execute_tool(
            action.tool, dispatch(ctx, spec, action, turn.conversation)
        )
        entry.observation, entry.tool_ms = data, _ms(started)
        observe(state, turn.conversation, spec, data, error)
        state.done.add(action.digest)
        rec.emit(
            ObservationMade(step=number, tool=action.tool, data=data, error=error, ms=entry.tool_ms)
        )
        turn.steps.append(_taken(action, json.dumps(data, default=str)))
        yield Observed(action.tool, error)

    async def _spend_confirmation(self, state: ConversationState, rec: Recorder) -> bool:
        """Use the approved confirmation once (a guarded UPDATE, in the effect's transaction);
        False when the database says it was used or expired since the state was read."""
        conf = state.confirmation
        ok = conf is not None and await rec.consume(conf.id, state.now)
        state.confirmation = None
        return ok

    def _lapsed(self, turn: TurnContext, number: int, action: Action, entry: AuditEntry) -> Lapsed:
        """A side effect the guard allowed whose confirmation could not be spent.

        The guard judges the state read at the turn's start, and it allowed; spending the
        confirmation is the effect's own first write, and the database may refuse it (used
        or expired meanwhile). That is not a verdict to rewrite: the audit row keeps the
        guard's, and records what happened as the step's observation, an error the model
        reads as it reads any tool's."""
        data = {"error": "confirmation_lapsed", "message": LAPSED}
        entry.observation = data
        turn.rec.emit(ObservationMade(step=number, tool=action.tool, data=data, error=True))
        turn.steps.append(_taken(action, json.dumps(data)))
        return Lapsed(action.tool)

    async def _ask_confirmation(self, turn: TurnContext, action: Action) -> AskedToConfirm:
        spec = self.guard.tools[action.tool]
        summary = spec.confirm_text.format(**action.arguments, items=_items(action, turn.state))
        row = await turn.rec.request_confirmation(
            action, summary, self.clock(), self.settings.policy.confirmation_ttl_minutes
        )
        turn.rec.emit(
            ConfirmationRequested(
                confirmation_id=row.id,
                tool=action.tool,
                args=action.arguments,
                summary=summary,
                expires_at=row.expires_at,
            )
        )
        text = asking(summary)
        turn.rec.message(Role.ASSISTANT, text)
        turn.rec.emit(Reply(text=text))
        return AskedToConfirm(row.id)

    def _reply(self, turn: TurnContext, text: str, anchors: list[str]) -> None:
        retrieved = turn.state.retrieved
        citations = [retrieved[a] for a in anchors if a in retrieved]
        turn.rec.message(Role.ASSISTANT, text, citations)
        turn.rec.emit(Reply(text=text, citations=citations))

    async def _escalate(self, turn: TurnContext, reason: str, apology: str = "") -> None:
        conversation, rec = turn.conversation, turn.rec
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

    async def _give_up(self, turn: TurnContext, reason: str) -> None:
        """End the turn safely: an apology and, when configured, a human takes over."""
        if self.settings.escalate_on_failure:
            await self._escalate(turn, reason, SORRY)
        else:
            text = "I'm sorry, something went wrong on my side. Could you say that again?"
            turn.rec.message(Role.ASSISTANT, text)
            turn.rec.emit(Reply(text=text))


def _as_typed_answer(incoming: Incoming, state: ConversationState) -> Incoming:
    """A yes / no typed right after the request answers it, as the buttons do, in every
    interface: left to the model, "yes" is a message with nothing to act on. After anything
    else was said, "yes" may answer that instead, so it stays a message."""
    pending = state.confirmation
    if (
        isinstance(incoming, CustomerText)
        and pending is not None
        and pending.status is ConfirmationStatus.PENDING
        and state.history
        and state.history[-1] == HistoryLine(Role.ASSISTANT, asking(pending.summary))
        and (approve := typed_answer(incoming.text)) is not None
    ):
        return ConfirmationAnswer(pending.id, approve)
    return incoming


def _items(action: Action, state: ConversationState) -> str:
    """The order lines an action names, as the customer knows them: "Slim Fit Jeans (line 1)"."""
    lines: list[int] = getattr(action.args, "lines", None) or []
    order = state.orders.get(str(getattr(action.args, "order_id", "")))
    if order is None:
        return ", ".join(f"line {n}" for n in lines)
    return ", ".join(
        f"{order.lines[n].name} (line {n})" if n in order.lines else f"line {n}" for n in lines
    )


def _taken(action: Action, outcome: str) -> Step:
    """A step of the turn as the model reads it next: the action it took, what came of it."""
    return Step(json.dumps({"tool": action.tool, "args": action.arguments}), outcome, action.tool)


def _ms(since: float) -> float:
    return round((perf_counter() - since) * 1000, 3)
