"""Traces over OTLP/HTTP to a collector on loopback, and the endpoint setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from agent_support import act, turn
from pydantic import ValidationError

from shopbot.app import start_conversation
from shopbot.config import Settings
from shopbot.loop import Agent, CustomerText
from shopbot.otlp import tracer_provider, traces_url
from shopbot.tracing import Tracing
from tests.tracing_support import Collector, running_collector


@pytest.fixture
def collector() -> Iterator[Collector]:
    with running_collector() as found:
        yield found


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


async def test_a_turn_reaches_the_collector_as_shopbot_when_the_provider_shuts_down(
    agent: Agent, collector: Collector
) -> None:
    provider = tracer_provider(settings(otel_endpoint=collector.url + "/"))
    assert provider is not None
    agent = replace(agent, tracing=Tracing(provider.get_tracer("shopbot")))
    cid = await start_conversation(agent.sessions, agent.settings)
    verify = act("verify_identity", order_id="482913", email="jane.doe@example.com")
    await turn(
        agent,
        cid,
        CustomerText("482913, jane.doe@example.com"),
        verify,
        act("reply", message="Hi."),
    )
    provider.shutdown()  # sends what is still queued

    assert {(path, kind) for path, kind, _ in collector.posts} == {
        ("/v1/traces", "application/x-protobuf")
    }
    names = [
        "invoke_agent shopbot",
        "step",
        "chat scripted",
        "guard verify_identity",
        "execute_tool verify_identity",
        "step",
        "chat scripted",
        "guard reply",
    ]
    assert collector.spans() == sorted(("shopbot", name) for name in names)


def test_shopbot_chat_sends_its_spans_before_it_exits(
    sqlite_url: str, collector: Collector, tmp_path: Path
) -> None:
    script = tmp_path / "script.yaml"
    script.write_text(json.dumps([{"action": {"tool": "reply", "args": {"message": "Hello!"}}}]))
    env = os.environ | {
        "SHOPBOT_DATABASE_URL": sqlite_url,
        "SHOPBOT_DATA_DIR": str(tmp_path),
        "SHOPBOT_OTEL_ENDPOINT": collector.url,
    }
    command = [sys.executable, "-c", "from shopbot.cli import app; app()", "chat", "--plain"]
    done = subprocess.run(
        [*command, "--model", "scripted", "--script", str(script)],
        input="Hi there\n",
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Hello!" in done.stdout
    names = ["chat scripted", "guard reply", "invoke_agent shopbot", "step"]
    assert collector.spans() == [("shopbot", name) for name in names]


def test_no_endpoint_no_provider() -> None:
    assert tracer_provider(settings()) is None
    assert tracer_provider(settings(otel_endpoint="")) is None  # set but empty, as in compose


def test_the_traces_path_is_added_to_a_base_url_once() -> None:
    assert traces_url("http://localhost:4318") == "http://localhost:4318/v1/traces"
    assert traces_url("http://otel:4318/v1/traces") == "http://otel:4318/v1/traces"


@pytest.mark.parametrize("bad", ["localhost:4318", "grpc://otel:4317", "http://"])
def test_an_endpoint_that_is_not_an_http_url_is_refused_with_an_example(bad: str) -> None:
    with pytest.raises(ValidationError, match="http://localhost:4318"):
        settings(otel_endpoint=bad)
