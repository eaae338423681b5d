"""What a desk is: one registration holding everything ShopBot needs to run it.

    DESK = Desk(
        name="parcel",
        tools=(verify_identity, track_parcel),
        instructions=INSTRUCTIONS,
    )

A desk is its tools (each carrying its own behaviour, `tools.base.ToolSpec`: what the guard
requires, the facts its rule reads, whether staff may run it), the prompt's role and rules,
and what a local model runs with on it: exemplars, intents, a trained adapter. `shopbot.app`
assembles the agent from the configured desk alone (`SHOPBOT_DESK`, `tools.desks.load_desk`),
so a shop's own desk is a folder outside the package (see `examples/parcel_desk/`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from shopbot.config import Settings
from tools.base import ToolSpec

Instructions = Callable[[Settings], str]
"""A desk's role and rules as the settings give them (the retail desk reads τ²'s policy.md)."""


@dataclass(frozen=True)
class Desk:
    name: str
    tools: tuple[ToolSpec, ...]
    instructions: str | Instructions = field(repr=False)
    """The prompt's head: role and rules (`SHOPBOT_INSTRUCTIONS_FILE` replaces it)."""
    exemplars: Path | None = None
    """Annotated exemplars a bare local model is shown (`shopbot.exemplars`)."""
    intents: Path | None = None
    """Openings answered before the local model is asked (`shopbot.models.rails`)."""
    adapter: Path | None = None
    """The LoRA adapter trained for this desk over the packaged base model."""
    scenarios: Path | None = None
    """The desk's eval scenarios (`shopbot eval` runs them unless told other ones)."""
    oracle: str | None = None
    """`module:NAME` of the scripted agent `shopbot eval --model oracle` runs on this desk: a
    chat model made from a scenario (`shopbot.eval.oracle.Oracle` is the returns desk's)."""

    def __post_init__(self) -> None:
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"desk {self.name}: a tool registered twice in {names}")

    @property
    def registry(self) -> dict[str, ToolSpec]:
        """The desk's tools by name."""
        return {t.name: t for t in self.tools}

    @property
    def staff_tools(self) -> tuple[str, ...]:
        """The tools a staff member who holds a conversation may run by hand."""
        return tuple(t.name for t in self.tools if t.staff)

    def instructions_for(self, settings: Settings) -> str:
        """The role and rules for the prompt: a shop's own file, else the desk's."""
        if settings.instructions_file is not None:
            return settings.instructions_file.read_text()
        if isinstance(self.instructions, str):
            return self.instructions
        return self.instructions(settings)


__all__ = ["Desk", "Instructions"]
