"""Every train task's ground-truth actions, replayed through the retail desk on a fresh
import, give exactly the records `expected_train.json` promises; the actions marked as
errors fail (denied by the guard or refused by the tool) and change nothing: neither the
records they name (looked at before and after) nor, by the final comparison of the whole
database, anything else."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.engine import create_engine, session_factory
from shopbot.tau2.data import Task, changed_records, expected_outcome, load_db, load_tasks
from shopbot.tau2.data import missing_reason as data_missing
from shopbot.tau2.replay import Replayer
from tests.plugin import settings_for

TASKS = {t.id: t for t in load_tasks()} if data_missing() is None else {}


def covering(tasks: dict[str, Task]) -> set[str]:
    """Tasks that together use every tool and hold every action that must fail: what
    PostgreSQL replays (all 74 there would double the run for little news)."""
    chosen: set[str] = set()
    seen: set[str] = set()
    for task_id in sorted(tasks, key=int):
        task = tasks[task_id]
        names = {a.name for a in task.actions}
        if names - seen or expected_outcome(task_id).errors:
            chosen.add(task_id)
            seen |= names
    return chosen


ON_POSTGRES = covering(TASKS)


def test_all_train_tasks_are_here() -> None:
    if why := data_missing():
        pytest.skip(why)
    assert len(TASKS) == 74


CASES = [
    pytest.param(backend, task_id, id=f"{backend}-{task_id}")
    for backend in ("sqlite", "postgresql")
    for task_id in sorted(TASKS, key=int)
    if backend == "sqlite" or task_id in ON_POSTGRES
]


@pytest.mark.parametrize(
    ("tau2_url", "task_id"),
    CASES or [pytest.param("sqlite", "-", id="no-data")],
    indirect=["tau2_url"],
)
async def test_ground_truth_replay_gives_the_expected_records(
    tau2_url: str, task_id: str, tmp_path: Path
) -> None:
    task: Task = TASKS[task_id]
    expected = expected_outcome(task_id)
    engine = create_engine(tau2_url)
    replayer = Replayer(session_factory(engine), settings_for(tau2_url, tmp_path))
    try:
        conversation_id = await replayer.start(task)
        for action in task.actions:
            must_fail = action.action_id in expected.errors
            before = await replayer.records_named(action) if must_fail else None
            outcome = await replayer.run(conversation_id, action)
            assert outcome.error == must_fail, outcome
            if before is not None:
                assert await replayer.records_named(action) == before, f"{action.action_id}"
        assert changed_records(load_db(), await replayer.export()) == expected.changed
    finally:
        await engine.dispose()
