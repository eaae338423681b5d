"""Training data from the real loop: synthetic customers talk to the teacher through parse ->
guard -> tools on fresh copies of the demo shop; every model step is recorded.

A conversation is kept only when none of the teacher's steps was denied or failed to parse
(the teacher is right by construction; a denial means a scenario the teacher does not
handle, and its steps would teach nothing good). The simulated customer is the eval's
`RuleSimulator`, with its answers to "order number?", "email?" and "Shall I return ...?"
phrased from `shopbot.distil.phrasing` instead of one fixed sentence (the fixed ones, "Yes,
please." and "No, thanks.", are suite lines, so conversations that used them were dropped and
the offer was never taught); asked for an email, a customer with several in mind sometimes
gives two, or all of them, in one message.

    shopbot distil data [--conversations 1300] [--seed 7] [--out fixtures/distil/steps.jsonl.gz]
"""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopbot.actions import ActionSchema
from shopbot.distil import phrasing as P
from shopbot.distil.scenarios import Drawn, draw
from shopbot.distil.teacher import Recorder, Teacher
from shopbot.eval.scenario import Scenario
from shopbot.eval.simulator import RuleSimulator, styled
from shopbot.loop import Incoming
from tools import TOOLS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@dataclass
class VariedSimulator(RuleSimulator):
    """The rule simulator, with the order number and email given in many phrasings."""

    rng: random.Random = random.Random(0)  # noqa: RUF009 - replaced per scenario

    def _answer_offer(self) -> Incoming:
        # No typos here: a slip in "nope" or "forget it" would turn a no into a yes.
        bank = P.OFFER_YES if self.scenario.persona.agrees else P.OFFER_NO
        return self._say(self.rng.choice(bank))

    def _restate(self) -> Incoming | None:
        """Say the request again, once: the goal's line, which a scenario that opens with
        small talk says second."""
        if self._restated:
            return None
        self._restated = True
        persona = self.scenario.persona
        said = next((s for s in [persona.opening, *persona.then] if s.intent == "goal"), None)
        return self._say((said or persona.opening).text)

    def _identify(self, wants_order: bool, wants_email: bool) -> Incoming | None:
        persona = self.scenario.persona
        said = " ".join(self.said).casefold()
        fresh = [e for e in persona.emails if e.casefold() not in said]
        if (wants_order and not persona.orders) or (wants_email and not fresh):
            return None
        order = persona.orders[0] if persona.orders else ""
        email = fresh[0] if fresh else ""
        if wants_email and not wants_order and len(fresh) > 1 and self.rng.random() < 0.6:
            # Several emails at once: two as a guess, or a whole list until the desk stops.
            if len(fresh) == 2:
                template = self.rng.choice(P.GIVE_EMAILS)
                text = template.format(email=fresh[0], email2=fresh[1])
            else:
                text = self.rng.choice(P.GIVE_MANY_EMAILS).format(emails=", ".join(fresh))
            return self._say(P.typo(styled(persona.style, text), self.rng))
        bank = (
            P.GIVE_BOTH
            if wants_order and wants_email
            else P.GIVE_ORDER
            if wants_order
            else P.GIVE_EMAIL
        )
        text = self.rng.choice(bank).format(order=order, email=email)
        return self._say(P.typo(styled(persona.style, text), self.rng))


def fixture_lines(root: Path = FIXTURES) -> set[str]:
    """Every customer line of the eval scenarios and the replay conversations: none may be
    in the training data, or those suites would test what the student memorised."""
    import yaml

    found: set[str] = set()
    for path in [*(root / "scenarios").glob("*.yaml"), *(root / "conversations").glob("*.yaml")]:
        data = yaml.safe_load(path.read_text())
        for scenario in data.get("scenarios", []) if isinstance(data, dict) else []:
            persona = scenario["persona"]
            says = [persona["opening"], *persona.get("then", [])]
            found |= {s if isinstance(s, str) else s["text"] for s in says}
            if persona.get("items"):
                found.add(persona["items"])
        for turn in data.get("turns", []) if isinstance(data, dict) else []:
            if isinstance(turn.get("customer"), str):
                found.add(turn["customer"])
    return {" ".join(line.split()).casefold() for line in found}


SUITE_LINE_CHARS = 25
"""A suite's line this long is not taught even inside a longer one ("I've waited long enough.
<the line>"); shorter ones ("Thanks!") are everyday words."""


def holds_a_suite_line(said: str, suite_lines: set[str]) -> bool:
    """Is `said` one of the suites' lines, or has one of the longer ones inside it?"""
    text = " ".join(said.split()).casefold()
    return text in suite_lines or any(
        len(line) > SUITE_LINE_CHARS and line in text for line in suite_lines
    )


def _clean(result: Any) -> bool:
    return not result.error and result.denials == 0 and result.parse_failures == 0


async def generate(
    n: int,
    seed: int,
    *,
    policy_index: Any,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], Counter[str]]:
    """Plays `n` drawn scenarios with the teacher; returns the kept steps and the counts."""
    from shopbot.eval.runner import ScenarioTrials

    drawn = draw(n, seed)
    by_id: dict[str, Drawn] = {d.scenario.id: d for d in drawn}
    schema = ActionSchema(TOOLS)
    recorders: dict[str, Recorder] = {}
    rng = random.Random(seed + 1)

    def model_for(scenario: Scenario) -> Recorder:
        recorder = Recorder(Teacher(scenario), schema, scenario.id)
        recorders[scenario.id] = recorder
        return recorder

    def simulator_for(scenario: Scenario) -> VariedSimulator:
        return VariedSimulator(scenario, rng=random.Random(rng.random()))

    rows: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    forbidden = fixture_lines()
    async with ScenarioTrials(model_for, simulator_for, policy_index=policy_index) as trials:
        for i, d in enumerate(drawn):
            result = await trials(d.scenario, 1)
            recorder = recorders.pop(d.scenario.id)
            if progress is not None:
                progress(i + 1, n)
            if not _clean(result):
                counts["conversations dropped"] += 1
                continue
            said = customer_lines(recorder.rows)
            if d.split == "train" and any(holds_a_suite_line(s, forbidden) for s in said):
                counts["conversations dropped (a suite's line)"] += 1
                continue
            counts["conversations"] += 1
            counts[f"category {d.scenario.category}"] += 1
            for row in recorder.rows:
                row["split"] = by_id[row["scenario"]].split
                row["families"] = list(by_id[row["scenario"]].families)
                counts[f"steps {row['split']}"] += 1
                counts[f"tool {row['tool']}"] += 1
                rows.append(row)
    return rows, counts


def write(rows: list[dict[str, Any]], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        for row in rows:
            if row["split"] == "train":  # the request is needed only to replay held-out steps
                row = {k: v for k, v in row.items() if k not in ("per_step", "hints")}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(out)


def read(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def customer_lines(rows: list[dict[str, Any]]) -> set[str]:
    """Every customer line the data shows the student."""
    found: set[str] = set()
    for row in rows:
        for line in row["prompt"].splitlines():
            if line.startswith("Customer: "):
                found.add(line.removeprefix("Customer: ").strip())
    return found


__all__ = ["VariedSimulator", "customer_lines", "fixture_lines", "generate", "read", "write"]
