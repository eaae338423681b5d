"""The `shopbot` command as a user runs it: set-up, replay, retrieval eval, outbox."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopbot.cli import app
from tests.plugin import policy_index_dir

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def data_dir(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A data dir with the policy index already built, as `make db` leaves it."""
    shutil.copytree(policy_index_dir(request.config), tmp_path, dirs_exist_ok=True)
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SHOPBOT_DATABASE_URL", raising=False)
    monkeypatch.chdir(ROOT)
    return tmp_path


def test_setup_commands_migrate_seed_and_refuse_to_seed_twice(data_dir: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    first = runner.invoke(app, ["db", "seed"])
    assert first.exit_code == 0, first.output
    assert "loaded the demo shop" in first.output
    again = runner.invoke(app, ["db", "seed"])
    assert "already loaded" in again.output
    assert (data_dir / "shopbot.db").is_file()


def test_replay_json_reports_every_conversation(data_dir: Path) -> None:
    scripts = [
        "01_order_status_verified.yaml",
        "30_reference_return.yaml",
        "20_policy_question_cited.yaml",
    ]
    result = runner.invoke(
        app, ["replay", *[f"fixtures/conversations/{s}" for s in scripts], "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["passed"], summary["failed"]) == (3, 0)
    assert [r["name"] for r in summary["results"]] == sorted(Path(s).stem for s in scripts)


def test_replay_fails_with_a_readable_report(data_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "title: expects a denial that does not happen\n"
        "turns:\n"
        "  - customer: hello\n"
        "    model: [{action: {tool: reply, args: {message: hi}}}]\n"
        "    expect: {steps: [{tool: reply, verdict: deny}]}\n"
    )
    result = runner.invoke(app, ["replay", str(broken)])
    assert result.exit_code == 1
    assert "FAIL broken" in result.stdout
    assert "expected reply:deny" in result.stdout


def test_eval_retrieval_json(data_dir: Path) -> None:
    result = runner.invoke(app, ["eval", "retrieval", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["recall_at_3"] >= 0.95
    assert set(report) >= {"recall_at_1", "recall_at_3", "recall_at_5", "mrr"}


def test_outbox_once_on_an_empty_outbox(data_dir: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    result = runner.invoke(app, ["outbox", "run", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent=0" in result.output


def test_an_unavailable_model_is_one_clear_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    monkeypatch.setenv("SHOPBOT_MODEL", "openai")
    result = runner.invoke(app, ["chat", "--plain"], input="")
    assert result.exit_code == 2
    assert "SHOPBOT_LLM_BASE_URL is not set" in result.output
    monkeypatch.setenv("SHOPBOT_LLM_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens
    result = runner.invoke(app, ["chat", "--plain"], input="")
    assert result.exit_code == 2
    assert "cannot reach the model" in result.output
    assert "Traceback" not in result.output


def test_chat_and_serve_on_a_database_behind_the_code_say_to_upgrade(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from db.engine import upgrade
    from shopbot.web import server

    monkeypatch.setattr(server.uvicorn, "run", lambda *_a, **_k: pytest.fail("served"))  # pyright: ignore[reportUnknownLambdaType]
    for command in (["chat", "--plain", "--model", "scripted"], ["serve"]):
        result = runner.invoke(app, command, input="")
        assert result.exit_code == 2
        assert "the database is not created" in result.output
        assert "run `shopbot db upgrade`" in result.output
    upgrade(f"sqlite:///{data_dir / 'shopbot.db'}", "0006")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2 and "is at migration 0006" in result.output


def test_serve_refuses_a_placeholder_secret_off_loopback_in_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shopbot.web import server

    served: list[str] = []

    def run(target: str, **_options: object) -> None:
        served.append(target)

    monkeypatch.setattr(server.uvicorn, "run", run)
    monkeypatch.setenv(server.SETTINGS_ENV, "")  # serve sets it; restored afterwards
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    monkeypatch.setenv("SHOPBOT_IDENTITY_SECRET", "change-me-in-production")
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    (error,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "SHOPBOT_IDENTITY_SECRET is a placeholder" in error
    assert served == []
    assert runner.invoke(app, ["serve"]).exit_code == 0, "on loopback it only warns"
    monkeypatch.delenv("SHOPBOT_IDENTITY_SECRET")
    assert runner.invoke(app, ["serve", "--host", "0.0.0.0"]).exit_code == 0, "none: generated"
    assert served == ["shopbot.web.app:app_from_env"] * 2


def test_purge_says_what_it_would_delete_then_deletes_it_once(data_dir: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from db import Conversation, ConversationStats, Message, Role, utcnow
    from db.engine import sync_engine

    def count(model: type[Conversation] | type[ConversationStats]) -> int:
        with Session(engine) as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    refused = runner.invoke(app, ["purge", "--older-than", "30d"])
    assert refused.exit_code == 2 and "run `shopbot db upgrade`" in refused.output
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    engine = sync_engine(f"sqlite:///{data_dir / 'shopbot.db'}")
    long_ago = utcnow() - timedelta(days=45)
    with Session(engine) as session:
        session.add(Conversation(id="c-old", created_at=long_ago, updated_at=long_ago))
        session.add(Conversation(id="c-new"))
        session.flush()
        session.add(Message(conversation_id="c-old", turn=1, role=Role.CUSTOMER, content="hi"))
        session.commit()

    for bad, said in [("30", "not an age"), ("a month", "not an age"), ("0d", "more than zero")]:
        result = runner.invoke(app, ["purge", "--older-than", bad])
        assert result.exit_code == 2, bad
        assert said in result.output and "Traceback" not in result.output
    dry = runner.invoke(app, ["purge", "--older-than", "30d", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete the conversations last active before" in dry.stdout
    assert "conversations 1, events 0, messages 1" in dry.stdout
    assert (count(Conversation), count(ConversationStats)) == (2, 0), "a dry run changes nothing"

    done = runner.invoke(app, ["purge", "--older-than", "4w"])
    assert done.exit_code == 0, done.output
    assert "deleted the conversations" in done.stdout and "1 conversations" in done.stdout
    assert (count(Conversation), count(ConversationStats)) == (1, 1)
    again = runner.invoke(app, ["purge", "--older-than", "4w"])
    assert "nothing to purge" in again.stdout
    engine.dispose()


@pytest.mark.slow
def test_prepare_merges_the_student_once(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPBOT_MODEL", "local")
    first = runner.invoke(app, ["prepare"])
    assert first.exit_code == 0, first.output
    made = list((data_dir / "models").glob("student-*.Q8_0.gguf"))
    assert len(made) == 1 and str(made[0].name) in first.output.replace("\n", "")
    assert [p.name for p in (data_dir / "models").iterdir()] == [made[0].name]  # no leftovers
    stamp = made[0].stat().st_mtime_ns
    again = runner.invoke(app, ["prepare"])
    assert again.exit_code == 0 and made[0].stat().st_mtime_ns == stamp  # the cache, untouched
    monkeypatch.setenv("SHOPBOT_MODEL_MERGE", "false")
    assert "nothing to prepare" in runner.invoke(app, ["prepare"]).output
