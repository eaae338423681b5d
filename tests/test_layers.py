"""The dependency rules of ARCHITECTURE.md's invariants, read from the source's imports.

Every `import` and `from ... import` (at any depth: an import inside a function counts) of
each module is checked against what its layer may use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = [
    "actions",
    "dispatch",
    "events",
    "guard",
    "loop",
    "outcomes",
    "prompts",
    "record",
    "state",
    "turns",
]
"""The agent's core: the loop and the gates around it."""
EDGES = (
    "shopbot.models.local",
    "shopbot.models.openai",
    "shopbot.models.scripted",
    "shopbot.models.rails",
    "shopbot.app",
    "shopbot.cli",
    "shopbot.plain_chat",
    "shopbot.tui",
    "shopbot.web",
    "shopbot.replay",
    "shopbot.harness",
    "shopbot.eval",
    "shopbot.tau2",
    "shopbot.distil",
)
"""Concrete model backends and interfaces: chosen at the edge (`shopbot/app.py`)."""
TOOLS_MAY_USE = ("shopbot.config", "shopbot.errors", "shopbot.redact")


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def breaches(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in (ROOT / folder).rglob("*.py")
        for name in imported(path)
        if within(name, forbidden)
    )


def test_db_imports_nothing_of_shopbot_or_tools() -> None:
    assert breaches("db", ("shopbot", "tools")) == []


def test_tools_use_only_the_leaves_of_shopbot() -> None:
    found = [
        line
        for line in breaches("tools", ("shopbot",))
        if not within(line.rsplit(" ", 1)[1], TOOLS_MAY_USE)
    ]
    assert found == []


@pytest.mark.parametrize("module", CORE)
def test_the_core_never_imports_a_backend_or_an_interface(module: str) -> None:
    names = imported(ROOT / "shopbot" / f"{module}.py")
    assert sorted(n for n in names if within(n, EDGES)) == []


def test_only_the_training_pipeline_and_the_cli_import_it() -> None:
    found = [
        line
        for line in breaches("shopbot", ("shopbot.distil",))
        if not line.startswith(("shopbot/distil/", "shopbot/cli.py"))
    ]
    assert found == []


def test_an_outside_desk_uses_only_tools_db_and_shopbot() -> None:
    """A desk in `examples/` is what a shop writes: the tools' and the agent's public parts,
    never the tests' or the benchmarks' helpers."""
    found = breaches("examples", ("tests", "benchmarks", "examples"))
    assert found == []
    assert imported(ROOT / "examples" / "parcel_desk" / "__init__.py") >= {"tools.desk"}


def test_nothing_imports_an_outside_desk() -> None:
    """`SHOPBOT_DESK` loads one by its path (`tools.desks.load_desk`); no module names it."""
    found = [
        line
        for folder in ("shopbot", "tools", "db", "tests", "benchmarks")
        for line in breaches(folder, ("examples",))
    ]
    assert found == []


def test_the_scanner_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from shopbot.web import app\n    import shopbot.cli\n")
    assert imported(module) == {"shopbot.web", "shopbot.cli"}
