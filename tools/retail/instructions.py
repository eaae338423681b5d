"""The retail desk's role and rules: τ²-bench retail's own `policy.md`, read from its data."""

from __future__ import annotations

import os
from pathlib import Path

from shopbot.config import Settings

ROLE = """You are a customer-service agent of an online retail shop. You help users
cancel or modify pending orders, return or exchange delivered orders, change their default
address, and answer questions about their profile, orders and products. Authenticate the user
first (find_user_id_by_email, or find_user_id_by_name_zip), then act only for that user.
Before any change, list what will happen and get the user's explicit yes; the shop asks them
to confirm it. Transfer to a human agent only when the request is outside what you can do."""

REPO = Path(__file__).resolve().parents[2]


def tau2_dir() -> Path:
    """Where the data is: `SHOPBOT_TAU2_DIR`, else `../shared/tau2-retail` beside the repo."""
    configured = os.environ.get("SHOPBOT_TAU2_DIR")
    return Path(configured) if configured else (REPO.parent / "shared" / "tau2-retail")


def instructions(settings: Settings) -> str:
    """The role, then policy.md when the data is there."""
    policy = tau2_dir() / "policy.md"
    return f"{ROLE}\n\n{policy.read_text()}" if policy.exists() else ROLE


__all__ = ["ROLE", "instructions", "tau2_dir"]
