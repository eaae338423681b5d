"""The core names no tool: a tool carries its behaviour (`tools.base.ToolSpec`), so a desk adds
a tool, or a desk, without editing the loop, the guard, dispatch, the state, the prompt or a
model backend. Read from the source: its string literals (docstrings too) and its names."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.test_layers import imported
from tools.desks import DESKS

ROOT = Path(__file__).resolve().parents[1]
CORE = sorted(
    [
        *(
            ROOT / "shopbot" / f"{name}.py"
            for name in ("loop", "outcomes", "guard", "dispatch", "state")
        ),
        *(ROOT / "shopbot" / f"{name}.py" for name in ("prompts", "exemplars")),
        *(ROOT / "shopbot" / "models").glob("*.py"),
    ]
)
TOOL_NAMES = sorted({spec.name for desk in DESKS.values() for spec in desk.tools})


def spellings(tool: str) -> re.Pattern[str]:
    """`tool` as a word, in snake case or as its argument model's camel case."""
    camel = "".join(part.title() for part in tool.split("_"))
    return re.compile(rf"(?<![A-Za-z0-9_])(?:{tool}|{camel}(?:Args|Action)?)(?![A-Za-z0-9_])")


PATTERNS = {tool: spellings(tool) for tool in TOOL_NAMES}


def words(path: Path) -> list[str]:
    """Every string literal and every name a module's source holds."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append(node.value)
        elif isinstance(node, ast.Name):
            found.append(node.id)
        elif isinstance(node, ast.Attribute):
            found.append(node.attr)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.append(node.name)
        elif isinstance(node, ast.arg):
            found.append(node.arg)
        elif isinstance(node, ast.alias):
            found.append(node.asname or node.name)
        elif isinstance(node, ast.keyword) and node.arg is not None:
            found.append(node.arg)
    return found


def test_every_desk_has_tools_to_look_for() -> None:
    assert len(TOOL_NAMES) > 20 and "reply" not in TOOL_NAMES


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_names_no_tool(path: Path) -> None:
    named = sorted(
        {tool for text in words(path) for tool, pattern in PATTERNS.items() if pattern.search(text)}
    )
    assert named == []


DESK_MODULES = ("tools.retail", "tools.instructions", "examples")
"""A desk's own modules, beyond its tools: its rules, facts and instructions."""


@pytest.mark.parametrize(
    "path", [*CORE, ROOT / "shopbot" / "app.py"], ids=lambda p: str(p.relative_to(ROOT))
)
def test_the_core_and_the_assembly_import_no_desk(path: Path) -> None:
    """They read a desk through its registration (`tools.desk.Desk`), never its modules."""
    found = sorted(
        name
        for name in imported(path)
        if any(name == m or name.startswith(m + ".") for m in DESK_MODULES)
    )
    assert found == []


def test_the_scanner_finds_a_tool_in_a_literal_and_a_name(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        'def f(spec):\n    return spec.name == "lookup_order" or VerifyIdentityArgs\n'
        "calculate = 1\n"
    )
    named = {tool for text in words(module) for tool, p in PATTERNS.items() if p.search(text)}
    assert named == {"lookup_order", "verify_identity", "calculate"}
