"""The τ²-bench retail files and what they promise: tasks, ground truth, expected outcomes.

The data stays outside the repository (`SHOPBOT_TAU2_DIR`, else `../shared/tau2-retail`
beside it). `expected_outcome(task_id)` is the seam for the benchmark runner: the records
a task's ground-truth actions must leave changed, and which of those actions must fail;
`expected_database` is the whole final database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from db.tau2 import Tau2Error, round_money
from shopbot.errors import ConfigError
from tools.retail.instructions import tau2_dir

Data = dict[str, Any]


def missing_reason(directory: Path | None = None) -> str | None:
    """None when the data is there, else one line saying where it was looked for."""
    directory = directory or tau2_dir()
    for name in ("db.json", "tasks_train.json", "expected_train.json"):
        if not (directory / name).exists():
            return f"tau2 retail data not found: no {name} in {directory} (set SHOPBOT_TAU2_DIR)"
    return None


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist (set SHOPBOT_TAU2_DIR)") from None


@dataclass(frozen=True)
class GroundTruthAction:
    action_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Task:
    id: str
    actions: tuple[GroundTruthAction, ...]
    instructions: dict[str, Any]
    """The simulated customer's brief (`reason_for_call`, `known_info`, ...)."""
    communicate_info: tuple[str, ...]

    @classmethod
    def of(cls, raw: Data) -> Task:
        criteria = raw.get("evaluation_criteria") or {}
        return cls(
            id=str(raw["id"]),
            actions=tuple(
                GroundTruthAction(a["action_id"], a["name"], dict(a.get("arguments") or {}))
                for a in criteria.get("actions") or []
            ),
            instructions=dict((raw.get("user_scenario") or {}).get("instructions") or {}),
            communicate_info=tuple(criteria.get("communicate_info") or []),
        )


@dataclass(frozen=True)
class ExpectedOutcome:
    changed: Data
    """`{"users": {...}, "orders": {...}}`: every record whose final state differs from
    `db.json`, in full, amounts rounded to cents (`db.tau2.round_money`)."""
    errors: frozenset[str]
    """Ids of the ground-truth actions that fail by design (and change nothing)."""


@cache
def load_db(directory: Path | None = None) -> Data:
    return read_json((directory or tau2_dir()) / "db.json")


def load_tasks(directory: Path | None = None) -> list[Task]:
    return [Task.of(t) for t in read_json((directory or tau2_dir()) / "tasks_train.json")]


@cache
def _expected(directory: Path) -> Data:
    return read_json(directory / "expected_train.json")


def expected_outcome(task_id: str, directory: Path | None = None) -> ExpectedOutcome:
    entry = _expected(directory or tau2_dir())[task_id]
    changed = round_money(entry["changed"])
    return ExpectedOutcome(
        changed={"users": changed.get("users", {}), "orders": changed.get("orders", {})},
        errors=frozenset(a["action_id"] for a in entry["actions"] if a["error"]),
    )


def expected_database(task_id: str, directory: Path | None = None) -> Data:
    """The whole database a task must end in: `db.json` with the changed records applied."""
    final = round_money(load_db(directory))
    for table, records in expected_outcome(task_id, directory).changed.items():
        final[table] = {**final[table], **records}
    return final


def changed_records(before: Data, after: Data) -> Data:
    """The users and orders of `after` that differ from `before` (both rounded to cents);
    products must not change at all, and raise when they did."""
    before, after = round_money(before), round_money(after)
    if before["products"] != after["products"]:
        raise Tau2Error("the products changed")
    changed: Data = {}
    for table in ("users", "orders"):
        if set(before[table]) != set(after[table]):
            raise Tau2Error(f"{table} were added or removed")
        changed[table] = {k: v for k, v in after[table].items() if before[table][k] != v}
    return changed
