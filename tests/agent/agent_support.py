"""Helpers for the loop's tests: scripted steps and turns run to their end."""

from __future__ import annotations

from typing import Any

from db import Staff
from shopbot.events import Event
from shopbot.handoff import StaffMember
from shopbot.loop import Agent, Incoming
from shopbot.models.scripted import ScriptedModel


def act(tool: str, **args: Any) -> dict[str, Any]:
    """A model step proposing `tool` with `args`."""
    return {"thought": "", "action": {"tool": tool, "args": args}}


async def turn(agent: Agent, cid: str, incoming: Incoming, *outputs: Any) -> list[Event]:
    """One turn of `agent` (on a `ScriptedModel`) with these model outputs, all used."""
    model = agent.model
    assert isinstance(model, ScriptedModel)
    model.extend(outputs)
    events = [e async for e in agent.run_turn(cid, incoming)]
    model.assert_complete()
    return events


async def add_staff(agent: Agent, name: str) -> StaffMember:
    """A staff account (no usable password: these tests act for it directly)."""
    async with agent.sessions() as s:
        row = Staff(name=name, login=name.casefold(), password_hash="not used here")
        s.add(row)
        await s.commit()
        return StaffMember(row.id, name)
