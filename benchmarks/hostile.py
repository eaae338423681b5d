"""10,000 hostile sequences (issue 18): a hostile model and customers against a fresh shop.

Each sequence (`shopbot.hostile`) runs on its own copy of the seeded shop, from seed
`--seed + i`, so any finding replays alone (`--first I --sequences 1`). Workers each keep a
template database, the policy index and the carrier sandbox; no LLM is involved. It prints
the counts the property is about (unauthorised side effects, crashes and changes outside
what was confirmed must be 0) and the first findings with their seeds; the exit status is 1
when there is any.

    python benchmarks/hostile.py [--sequences 10000] [--workers 2] [--backend sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.progress import Progress

from benchmarks.common import machine
from db.engine import create_engine, session_factory
from db.testing import PostgresTemplate, SqliteTemplate, Template, cloned
from shopbot.config import PolicyConfig, Settings
from shopbot.hostile import Outcome, ShopFacts, hostile_services, run_sequence

CHUNK = 25


@dataclass
class Tally:
    sequences: int = 0
    steps: int = 0
    side_effects: int = 0
    unauthorised: int = 0
    crashes: int = 0
    outside: int = 0
    leaks: int = 0
    unlisted: int = 0
    denials: int = 0
    parse_failures: int = 0
    refused: int = 0
    findings: list[str] = field(default_factory=list[str])

    def add(self, seed: int, out: Outcome) -> None:
        self.sequences += 1
        self.steps += out.steps
        self.side_effects += out.side_effects
        self.unauthorised += len(out.unauthorised)
        self.crashes += len(out.crashes)
        self.outside += len(out.outside)
        self.leaks += len(out.leaks)
        self.unlisted += len(out.unlisted)
        self.denials += out.denials
        self.parse_failures += out.parse_failures
        self.refused += out.refused
        self.findings += [f"seed {seed}: {p}" for p in out.problems][: 20 - len(self.findings)]

    def counts(self, wall: float) -> str:
        return (
            f"sequences {self.sequences}, steps {self.steps}, side effects confirmed "
            f"{self.side_effects}, unauthorised side effects {self.unauthorised}, crashes "
            f"{self.crashes}, changes outside what was confirmed {self.outside}, other "
            f"customers' data shown {self.leaks}, tools allowed but not offered "
            f"{self.unlisted}, guard denials {self.denials}, parse failures "
            f"{self.parse_failures}, turns refused (ConversationError) {self.refused}, "
            f"wall time {wall:.0f} s"
        )

    def merge(self, other: Tally) -> None:
        for name, value in vars(other).items():
            if name == "findings":
                self.findings += other.findings[: 20 - len(self.findings)]
            else:
                setattr(self, name, getattr(self, name) + value)


_worker: dict[str, object] = {}


def _start(templates: multiprocessing.Queue[Template], policy_dir: str) -> None:
    """A worker's own template, its facts (each template's returns have their own random
    uids) and a copy of the policy index, kept for all its chunks."""
    # Inside the run's directory, which the main process removes at the end.
    tmp = Path(tempfile.mkdtemp(prefix="worker-", dir=Path(policy_dir).parent))
    shutil.copytree(policy_dir, tmp / "policy")
    template = templates.get()
    with cloned(template) as url:
        facts = asyncio.run(ShopFacts.read(url, PolicyConfig()))
    _worker.update(template=template, tmp=tmp, facts=facts)


def _chunk(seeds: range) -> Tally:
    return asyncio.run(_run_chunk(seeds))


async def _run_chunk(seeds: range) -> Tally:
    from shopbot.policy import PolicyIndex

    template, tmp, facts = _worker["template"], _worker["tmp"], _worker["facts"]
    assert isinstance(template, SqliteTemplate | PostgresTemplate)
    assert isinstance(tmp, Path) and isinstance(facts, ShopFacts)
    tally = Tally()
    policy = PolicyIndex.open(tmp / "policy")
    base = Settings(_env_file=None, data_dir=tmp)  # type: ignore[call-arg]
    engine = create_engine(template.clone())  # the services need sessions; none are used
    async with hostile_services(base, session_factory(engine), policy) as services:
        for seed in seeds:
            with cloned(template) as url:
                settings = base.model_copy(update={"database_url": url})
                db = create_engine(url)
                try:
                    out = await run_sequence(
                        session_factory(db), settings, facts, random.Random(seed), services
                    )
                finally:
                    await db.dispose()
            tally.add(seed, out)
    await engine.dispose()
    return tally


def _chunks(first: int, count: int) -> Iterator[range]:
    for start in range(first, first + count, CHUNK):
        yield range(start, min(start + CHUNK, first + count))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequences", type=int, default=10_000)
    parser.add_argument("--first", type=int, default=0, help="seed of the first sequence")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--log", type=Path, help="the running counts, a line per chunk")
    args = parser.parse_args()
    print(f"hostile sequences on {args.backend} — {machine()}")
    from shopbot.policy import PolicyIndex

    started = time.perf_counter()
    total = Tally()
    with tempfile.TemporaryDirectory() as tmp:
        policy_dir = Path(tmp) / "policy"
        PolicyIndex.open(policy_dir).sync(Path(__file__).resolve().parents[1] / "fixtures/policies")
        made: list[Template] = [
            SqliteTemplate(Path(tmp) / f"db{i}") if args.backend == "sqlite" else PostgresTemplate()
            for i in range(args.workers)
        ]
        try:
            context = multiprocessing.get_context("spawn")
            templates: multiprocessing.Queue[Template] = context.Queue()
            for template in made:
                templates.put(template)
            with (
                context.Pool(args.workers, _start, (templates, str(policy_dir))) as pool,
                Progress() as progress,
            ):
                bar = progress.add_task("sequences", total=args.sequences)
                for tally in pool.imap_unordered(_chunk, _chunks(args.first, args.sequences)):
                    total.merge(tally)
                    progress.update(bar, advance=tally.sequences)
                    if args.log:
                        with args.log.open("a") as log:
                            print(total.counts(time.perf_counter() - started), file=log)
        finally:
            for template in made:
                template.close()
    print(total.counts(time.perf_counter() - started))
    for finding in total.findings:
        print(finding)
    sys.exit(1 if total.findings else 0)


if __name__ == "__main__":
    main()
