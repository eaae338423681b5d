"""`shopbot eval` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shopbot.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, eval_policy: Any) -> Path:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path))

    def open_policy_index(settings: Any) -> Any:
        return eval_policy  # the session's index: building one takes ~15 s

    monkeypatch.setattr("shopbot.app.open_policy_index", open_policy_index)
    return tmp_path


def test_eval_runs_the_suite_and_writes_the_report(in_repo: Path) -> None:
    report = in_repo / "out" / "report.html"
    args = ["eval", "--model", "oracle", "-k", "2", "-s", "status_shipped", "-s", "policy"]
    result = runner.invoke(app, [*args, "--report", str(report), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["tasks"] == 7 and summary["trials"] == 14  # status_shipped*: 2
    assert summary["pass_hat"] == {"1": 1.0, "2": 1.0}
    assert summary["violations"] == 0
    assert "<svg" in report.read_text()
    trials = json.loads(report.with_suffix(".json").read_text())["trials"]
    assert {t["task_id"] for t in trials} >= {"status_shipped", "policy_swimwear"}


def test_eval_fails_below_the_pass_floor_and_on_no_match(in_repo: Path) -> None:
    missing = runner.invoke(app, ["eval", "-s", "no_such_scenario"])
    assert missing.exit_code == 2
    assert "no scenarios match" in missing.output
    scenarios = in_repo / "broken.yaml"
    text = (ROOT / "fixtures" / "scenarios" / "status.yaml").read_text()
    scenarios.write_text(text.replace('"PX482914001"', '"PX000000000"'))
    args = ["eval", "-k", "1", "-s", "status_shipped", "--scenarios", str(scenarios)]
    failed = runner.invoke(app, [*args, "--report", str(in_repo / "r.html")])
    assert failed.exit_code == 1  # status_shipped fails, status_shipped_chen passes
    assert "2 tasks x 1: pass^1 0.500, violations 0" in " ".join(failed.output.split())


def test_eval_retrieval_is_still_a_subcommand() -> None:
    result = runner.invoke(app, ["eval", "retrieval", "--help"])
    assert result.exit_code == 0
    assert "Recall@1/3/5" in result.output
