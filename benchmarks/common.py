"""Shared by the benchmarks: the machine line and timing helpers."""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from db.testing import PostgresTemplate, SqliteTemplate, Template, cloned, postgres_reachable


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (
        f"n={len(values)} median={statistics.median(values):.2f} ms "
        f"p95={percentile(values, 0.95):.2f} ms p99={percentile(values, 0.99):.2f} ms"
    )


def templates(choice: str, tmp: Path) -> Iterator[tuple[str, Template]]:
    """Seeded database templates for `choice` (sqlite, postgresql or both), closed after use;
    an unreachable PostgreSQL is reported and skipped."""
    for backend in ["sqlite", "postgresql"] if choice == "both" else [choice]:
        template: Template
        if backend == "sqlite":
            template = SqliteTemplate(tmp / "db")
        elif why := postgres_reachable():
            print(f"postgresql: skipped ({why})")
            continue
        else:
            template = PostgresTemplate()
        try:
            yield backend, template
        finally:
            template.close()


def libpq(url: str) -> str:
    """A SQLAlchemy URL (`postgresql+psycopg://...`) as psycopg takes it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def on_postgres(measure: Callable[[str], Coroutine[Any, Any, None]]) -> None:
    """Run `measure` on a fresh seeded PostgreSQL database; an unreachable server is reported."""
    if why := postgres_reachable():
        print(f"postgresql: skipped ({why})")
        return
    template = PostgresTemplate()
    try:
        with cloned(template) as url:
            asyncio.run(measure(url))
    finally:
        template.close()
