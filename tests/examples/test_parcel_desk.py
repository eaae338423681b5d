"""The parcel desk (`examples/parcel_desk`): a third desk in one folder, chosen by its path,
run through replay and eval as a user runs them (scripted models and its oracle only), and
named nowhere in ShopBot's own code."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shopbot.app import build_agent, build_model
from shopbot.cli import app
from shopbot.config import Settings
from shopbot.errors import ConfigError
from shopbot.models.scripted import ScriptedModel
from tests.plugin import policy_index_dir
from tools.desks import DESKS, load_desk

ROOT = Path(__file__).resolve().parents[2]
PARCEL = ROOT / "examples" / "parcel_desk"
runner = CliRunner()
OWN = ("parcel_desk", "track_parcel", "ParcelOracle", "ParcelTracking")
"""The desk's folder and its own names."""


@pytest.fixture
def in_repo(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Path:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SHOPBOT_DATABASE_URL", raising=False)
    monkeypatch.delenv("SHOPBOT_DESK", raising=False)
    from shopbot.policy import PolicyIndex

    index = PolicyIndex.open(policy_index_dir(request.config))  # building one takes ~15 s
    monkeypatch.setattr("shopbot.app.open_policy_index", lambda settings: index)  # pyright: ignore[reportUnknownLambdaType]
    return tmp_path


def test_the_desk_is_its_folder_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    desk = load_desk(str(PARCEL))
    assert desk.name == "parcel"
    assert [t.name for t in desk.tools] == ["verify_identity", "track_parcel"]
    assert load_desk(f"{PARCEL}:DESK") is desk  # one module per folder, however it is named
    settings = Settings(_env_file=None, desk=str(PARCEL))  # type: ignore[call-arg]
    agent = build_agent(settings, ScriptedModel(), None)  # type: ignore[arg-type]
    prompt = str(agent.prompts.system.content)
    assert prompt.startswith("You are ShopBot, the parcel desk")
    assert "track_parcel(" in prompt and "create_return" not in prompt


def test_an_unknown_desk_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^SHOPBOT_DESK=nowhere/desk: no desk at .*: give "):
        load_desk("nowhere/desk")
    with pytest.raises(ConfigError, match=r"^SHOPBOT_DESK=parcels: no desk or module parcels"):
        load_desk("parcels")
    with pytest.raises(ConfigError, match=r"^SHOPBOT_DESK=.*:PARCEL: .* defines no PARCEL"):
        load_desk(f"{PARCEL}:PARCEL")
    with pytest.raises(ConfigError, match=r"^SHOPBOT_DESK=parcels"):
        build_model(Settings(_env_file=None, model="scripted", desk="parcels"))  # type: ignore[call-arg]


def test_an_outside_desk_may_not_bring_an_uncounted_identity_check(tmp_path: Path) -> None:
    desk = tmp_path / "mine.py"
    desk.write_text(
        "from tools.base import Observation, Proof, ToolContext, Typed, tool\n"
        "from tools.desk import Desk\n\n\n"
        '@tool(proves=Proof(typed={"email": Typed.EMAIL}, ask="Ask for the email."))\n'
        "async def check_email(ctx: ToolContext, email: str) -> Observation:\n"
        '    """Check."""\n'
        "    return Observation()\n\n\n"
        'DESK = Desk(name="mine", tools=(check_email,), instructions="Help.")\n'
    )
    with pytest.raises(ConfigError, match="its identity check check_email is not a registered"):
        load_desk(str(desk))


def code(path: Path) -> list[str]:
    """A module's names and string literals, its docstrings left out (they may cite examples)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    documents = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found += [] if id(node) in documents else [node.value]
        elif isinstance(node, ast.Name | ast.alias):
            found.append(node.id if isinstance(node, ast.Name) else node.name)
        elif isinstance(node, ast.Attribute):
            found.append(node.attr)
    return found


def test_shopbot_names_it_nowhere() -> None:
    assert "parcel" not in DESKS
    found = sorted(
        str(path.relative_to(ROOT))
        for folder in ("shopbot", "tools", "db")
        for path in (ROOT / folder).rglob("*.py")
        if any(own in word for word in code(path) for own in OWN)
    )
    assert found == []


def test_its_conversations_replay(in_repo: Path) -> None:
    result = runner.invoke(app, ["replay", str(PARCEL / "conversations"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["passed"], summary["failed"]) == (4, 0)


def test_its_scenarios_pass_with_its_oracle(in_repo: Path) -> None:
    report = in_repo / "report.html"
    # Its own scenarios, without being told where they are (`Desk.scenarios`).
    args = ["eval", "--desk", "examples/parcel_desk"]
    result = runner.invoke(app, [*args, "-k", "1", "--report", str(report), "--json"])
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["tasks"] == 4 and summary["pass_hat"] == {"1": 1.0}
    assert summary["violations"] == 0
    trials = json.loads(report.with_suffix(".json").read_text())["trials"]
    assert all(t["denials"] == 0 and t["parse_failures"] == 0 for t in trials)


def test_a_desk_without_an_oracle_says_so(in_repo: Path) -> None:
    args = ["eval", "--desk", "retail", "--scenarios", str(PARCEL / "scenarios"), "-k", "1"]
    result = runner.invoke(app, [*args, "--report", str(in_repo / "r.html")])
    assert result.exit_code == 2
    assert "the retail desk has no oracle" in " ".join(result.output.split())


def test_a_desk_without_scenarios_says_so(in_repo: Path) -> None:
    result = runner.invoke(app, ["eval", "--desk", "retail", "--report", str(in_repo / "r.html")])
    assert result.exit_code == 2
    assert "the retail desk has no scenarios" in " ".join(result.output.split())
