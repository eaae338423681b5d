"""The shipped student: chosen by default, switched by one setting, clear when it is broken."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from shopbot.actions import Action, ActionSchema
from shopbot.app import adapter_for, build_model
from shopbot.config import Settings
from shopbot.errors import ConfigError
from shopbot.models.base import ModelRequest
from shopbot.models.local import RETURNS_ADAPTER, LocalModel
from shopbot.models.rails import Rails
from tests.plugin import known_for
from tools import TOOLS
from tools.desks import RETAIL, RETURNS


def settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)  # type: ignore[call-arg]


def test_the_adapter_is_shipped_small_with_its_card() -> None:
    assert RETURNS_ADAPTER.is_file()
    assert RETURNS_ADAPTER.stat().st_size <= 25 * 1024 * 1024
    card = (RETURNS_ADAPTER.parent / "MODEL_CARD.md").read_text()
    assert "Apache-2.0" in card and "SmolLM2-135M-Instruct" in card


def test_the_setting_chooses_the_adapter(tmp_path: Path) -> None:
    assert RETURNS.adapter == RETURNS_ADAPTER
    assert adapter_for(settings(), RETURNS) == RETURNS_ADAPTER
    assert adapter_for(settings(model_adapter="none"), RETURNS) is None
    assert adapter_for(settings(model_adapter=" None "), RETURNS) is None
    # Trained for the returns desk over the packaged base: not for another desk or model.
    assert adapter_for(settings(), RETAIL) is None
    assert adapter_for(settings(model_path=tmp_path / "other.gguf"), RETURNS) is None
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(b"x")
    assert adapter_for(settings(model_adapter=str(mine)), RETAIL) == mine


def test_a_missing_adapter_is_one_clear_line_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SHOPBOT_MODEL_ADAPTER: no adapter file at .*nope"):
        build_model(settings(model_adapter=str(tmp_path / "nope.gguf")))


@pytest.mark.parametrize(
    "content",
    [
        b"GGUF" + b"\0" * 64,  # not a GGUF file llama.cpp reads
        RETURNS_ADAPTER.read_bytes()[:5000],  # cut short (llama.cpp loaded this silently)
        b"not a model at all",
    ],
    ids=["version-0", "truncated", "garbage"],
)
def test_a_corrupt_adapter_is_one_clear_line_naming_the_setting(
    tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match="SHOPBOT_MODEL_ADAPTER") as caught:
        build_model(settings(model_adapter=str(bad)))
    assert "\n" not in str(caught.value)


def test_a_whole_model_is_not_an_adapter() -> None:
    from shopbot.models.local import check_adapter, packaged_model_path

    with pytest.raises(ConfigError, match="is not a GGUF LoRA adapter"):
        check_adapter(packaged_model_path())


def test_training_without_the_extra_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from shopbot.distil.train import require_train_extra

    real_import = builtins.__import__

    def no_torch(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "torch" or name.startswith("torch."):
            raise ImportError("No module named 'torch'", name="torch")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(ConfigError, match=r"\[train\] extra \(\w+ is missing\).*\.\[train\]"):
        require_train_extra()


@pytest.fixture(scope="module")
def student() -> LocalModel:
    model = build_model(settings(model="local"))
    # The returns desk's openings with a stock answer are answered before the student.
    assert isinstance(model, Rails) and isinstance(model.inner, LocalModel)
    assert {i.name for i in model.router.intents} >= {"human", "off_topic", "thanks"}
    return model.inner


@pytest.mark.slow
def test_the_default_local_model_is_the_student_without_exemplars(student: LocalModel) -> None:
    assert student.adapter == RETURNS_ADAPTER
    assert student.student and student.exemplars is None
    assert student.name.endswith("+shopbot-returns-lora (merged)")
    # Merged once into the data folder, named by the two files it was made from.
    assert student.merged is not None and student.merged.parent == Path("data/models")
    assert student.merged.name.startswith("student-") and student.merged.is_file()


@pytest.mark.slow
def test_merging_can_be_turned_off() -> None:
    model = build_model(settings(model="local", model_merge=False, intents="none"))
    assert isinstance(model, LocalModel)
    assert model.merged is None and model.adapter == RETURNS_ADAPTER
    assert model.name.endswith("+shopbot-returns-lora")
    model.close()


@pytest.mark.slow
async def test_the_student_verifies_with_what_the_customer_typed(student: LocalModel) -> None:
    schema = ActionSchema(TOOLS)
    allowed = frozenset({"verify_identity", "reply", "escalate", "search_policy"})
    per_step = "\n".join(
        [
            "State: customer NOT verified (failed attempts: 0).",
            "Order numbers the customer wrote: 735112",
            "Emails the customer wrote: kim.lee@example.net",
            'Hint: call verify_identity with order_id "735112" and email "kim.lee@example.net" '
            "before anything about the order.",
            "",
            "Conversation:",
            "Customer: hey, the scarf from 735112 is itchy, can I send it back? kim.lee@example.net",
            "",
            "Allowed now: escalate, reply, search_policy, verify_identity",
            "Your next step, as one JSON object:",
        ]
    )
    request = ModelRequest(
        messages=[SystemMessage("rules"), HumanMessage(per_step)],
        allowed=allowed,
        schema=schema.json_schema(allowed),
        hints={"order_id": ["735112"], "email": ["kim.lee@example.net"]},
        known=known_for(allowed, "the scarf from 735112 is itchy kim.lee@example.net"),
        conversation_id="student-test",
    )
    action = schema.parse(await student.complete(request))
    assert isinstance(action, Action)
    assert action.tool == "verify_identity"
    assert action.arguments == {"order_id": "735112", "email": "kim.lee@example.net"}
