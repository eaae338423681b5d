"""The desks `SHOPBOT_DESK` chooses from: the two registered here, or a shop's own, outside
the package, named by its folder or module (`load_desk`).

    SHOPBOT_DESK=returns                      # the shop's return desk (the default)
    SHOPBOT_DESK=retail                       # τ²-bench retail's operations under its policy
    SHOPBOT_DESK=examples/parcel_desk         # a folder whose __init__.py holds DESK
    SHOPBOT_DESK=examples/parcel_desk:DESK    # the same, the object named
    SHOPBOT_DESK=shop_desks.parcel:DESK       # an importable module

A folder or file is loaded by its path (relative to the working directory), whatever is on
`sys.path`; the desk's own modules import each other relatively (`from .track import ...`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from shopbot.errors import ConfigError
from tools import TOOLS
from tools.desk import Desk
from tools.instructions import INSTRUCTIONS
from tools.retail import RETAIL_TOOLS
from tools.retail.instructions import instructions as retail_instructions

REPO = Path(__file__).resolve().parents[1]
EXEMPLARS = REPO / "fixtures" / "exemplars.yaml"

RETURNS = Desk(
    name="returns",
    tools=TOOLS,
    instructions=INSTRUCTIONS,
    exemplars=EXEMPLARS,
    intents=REPO / "fixtures" / "intents" / "returns.yaml",
    adapter=REPO / "shopbot" / "models" / "adapters" / "shopbot-returns-lora.gguf",
    scenarios=REPO / "fixtures" / "scenarios",
    oracle="shopbot.eval.oracle:Oracle",
)
RETAIL = Desk(
    name="retail",
    tools=RETAIL_TOOLS,
    instructions=retail_instructions,
    # The shared file: of its exemplars only the replies and escalations fit this desk's
    # allowed set, and those are all a bare local model is shown here.
    exemplars=EXEMPLARS,
)
DESKS: dict[str, Desk] = {desk.name: desk for desk in (RETURNS, RETAIL)}
"""The registered desks by name: every identity check among their tools is counted toward
`max_verification_attempts` (`shopbot.state.FAILED_CHECK`)."""

SETTING = "SHOPBOT_DESK"
_REF = re.compile(r"(?P<target>.+?)(?::(?P<name>[A-Za-z_]\w*))?")


@cache
def load_desk(setting: str) -> Desk:
    """The desk `SHOPBOT_DESK` names; a `ConfigError` line when there is none."""
    if setting in DESKS:
        return DESKS[setting]
    found = load_object(setting, SETTING, default="DESK")
    if not isinstance(found, Desk):
        raise ConfigError(f"{SETTING}={setting}: {type(found).__name__} is not a tools.desk.Desk")
    _counted_checks(found, setting)
    return found


def load_object(ref: str, setting: str, *, default: str) -> object:
    """What `ref` names: `[folder | file.py | dotted.module][:NAME]` (NAME: `default`)."""
    match = _REF.fullmatch(ref.strip())
    if match is None:
        raise ConfigError(f"{setting} is empty: {_CHOICES}")
    target, name = match["target"], match["name"] or default
    if "/" in target or target.endswith(".py") or Path(target).exists():
        module = _module_at(Path(target).expanduser(), ref, setting)
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"{setting}={ref}: no desk or module {exc.name}: {_CHOICES}"
            ) from None
    if not hasattr(module, name):
        raise ConfigError(f"{setting}={ref}: {target} defines no {name}")
    return getattr(module, name)


_CHOICES = "give returns, retail, a desk's folder or file (path/to/desk) or module:NAME"


def _module_at(path: Path, ref: str, setting: str) -> ModuleType:
    """The module at a file, or the package in a folder, loaded once per path under a name
    of its own (so two desks' folders of one name never meet)."""
    path = path.resolve()
    source = path / "__init__.py" if path.is_dir() else path
    if not source.is_file():
        raise ConfigError(f"{setting}={ref}: no desk at {source}: {_CHOICES}")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"shopbot_desk_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    package = [str(path)] if path.is_dir() else None
    spec = importlib.util.spec_from_file_location(name, source, submodule_search_locations=package)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _counted_checks(desk: Desk, setting: str) -> None:
    """An outside desk's identity checks must be registered ones: failed checks are counted
    by a statement built once for the registered desks' checks (`shopbot.state`)."""
    known = {t.name: t.proves for d in DESKS.values() for t in d.tools if t.proves is not None}
    for spec in desk.tools:
        if spec.proves is not None and known.get(spec.name) != spec.proves:
            raise ConfigError(
                f"{SETTING}={setting}: its identity check {spec.name} is not a registered one "
                f"({', '.join(sorted(known))}), so its failures would go uncounted"
            )


__all__ = ["DESKS", "RETAIL", "RETURNS", "Desk", "load_desk", "load_object"]
