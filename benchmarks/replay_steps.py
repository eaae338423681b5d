"""The replay suite's steps as the scripted model saw them: each request, the scripted output
and what the guard made of it. The local-model benchmarks replay these requests (teacher
forcing: every step's prompt is the one the scripted conversation produced).

Each script of `fixtures/conversations/` runs once on a fresh copy of the demo shop (SQLite)
with a scripted model that records its calls; the audit log gives each output's verdict.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

from sqlalchemy import select

import shopbot.replay
from db import ActionLog
from db.testing import SqliteTemplate, cloned
from shopbot.actions import Action, ActionSchema
from shopbot.app import open_database
from shopbot.config import Settings
from shopbot.models.base import ModelRequest, ModelStep, read_step
from shopbot.models.scripted import ScriptedModel
from shopbot.replay import Script, replay
from tools import TOOLS

ROOT = Path(__file__).resolve().parents[1]
CONVERSATIONS = ROOT / "fixtures" / "conversations"
POLICIES = ROOT / "fixtures" / "policies"


@dataclass(frozen=True)
class RecordedStep:
    conversation: str
    """The script's file stem, e.g. 30_reference_return."""
    index: int
    """The step's number within the conversation, from 0."""
    request: ModelRequest
    output: str
    """What the scripted model answered."""
    verdict: str | None
    """The guard's verdict on it (None when it did not parse)."""

    @property
    def expected(self) -> Action | None:
        """The scripted action when it is one to learn from: it parses, names a tool the
        request allowed, and the guard did not deny it (scripts also play a wrong or
        manipulated model on purpose)."""
        parsed = ActionSchema(TOOLS).parse(read_step(self.output))
        if not isinstance(parsed, Action) or parsed.tool not in self.request.allowed:
            return None
        return parsed if self.verdict in ("allow", "confirm") else None


class _Recording(ScriptedModel):
    log: ClassVar[list[tuple[ModelRequest, str]]] = []

    async def complete(self, request: ModelRequest) -> ModelStep:
        output = await super().complete(request)
        self.log.append((request, output.raw))
        return output


async def _verdicts(settings: Settings) -> list[str | None]:
    engine, sessions = open_database(settings)
    try:
        async with sessions() as session:
            rows = await session.scalars(select(ActionLog).order_by(ActionLog.id))
            return [row.verdict for row in rows]
    finally:
        await engine.dispose()


def record(work: Path, names: list[str] | None = None) -> list[RecordedStep]:
    """Replays the suite (or the scripts named) and returns every model call, in order."""
    from shopbot.policy import PolicyIndex

    policy: Any = None
    steps: list[RecordedStep] = []
    template = SqliteTemplate(work / "template")
    try:
        for path in sorted(CONVERSATIONS.glob("*.yaml")):
            if names is not None and path.stem not in names:
                continue
            script = Script.load(path)
            if script.uses("search_policy") and policy is None:
                policy = PolicyIndex.open(work / "policy")
                policy.sync(POLICIES)
            _Recording.log = []
            with cloned(template) as url:
                settings = Settings(_env_file=None, database_url=url, data_dir=work)  # type: ignore[call-arg]
                with mock.patch.object(shopbot.replay, "ScriptedModel", _Recording):
                    result = asyncio.run(replay(script, settings, name=path.stem, policy=policy))
                verdicts = asyncio.run(_verdicts(settings))
            if not result.passed:
                raise SystemExit(f"{path.stem} fails with the scripted model: {result.failures}")
            if len(verdicts) != len(_Recording.log):
                raise SystemExit(
                    f"{path.stem}: {len(verdicts)} audit rows for {len(_Recording.log)} calls"
                )
            steps += [
                RecordedStep(path.stem, i, request, output, verdict)
                for i, ((request, output), verdict) in enumerate(
                    zip(_Recording.log, verdicts, strict=True)
                )
            ]
    finally:
        template.close()
    return steps


def describe(step: RecordedStep) -> str:
    """One line for a step: conversation, number and the scripted action."""
    return f"{step.conversation}#{step.index} {json.dumps(step.output)[:80]}"
