"""The hostile property, a bounded slice of `benchmarks/hostile.py` (10,000 sequences).

Hypothesis draws the randomness of whole sequences (`shopbot.hostile`): a hostile model
proposing any tool with any arguments (other customers' orders and emails, wrong types, huge
integers, deep nesting, NUL characters, lone surrogates, `"action": null`), and customers
writing random messages and approving pending, stale, foreign and forged confirmations, on a
fresh shop. After each sequence, judged from the database: no unauthorised side effect, no
crash (only `ConversationError` refusals), no change outside what was confirmed, no other
customer's order data shown to the model, no tool allowed that the guard did not list.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db.engine import create_engine, session_factory
from db.testing import Template, cloned
from shopbot.config import PolicyConfig
from shopbot.hostile import Outcome, ShopFacts, hostile_services, run_sequence
from tests.plugin import policy_index_dir, settings_for, template

EXAMPLES = {"sqlite": 300, "postgresql": 60}


class Shop:
    """A backend's template and what it holds, read once per session."""

    def __init__(self, config: pytest.Config, backend: str, tmp: Path) -> None:
        self.backend = backend
        self.template: Template = template(config, backend)
        self.data_dir = tmp
        self.policy_dir = policy_index_dir(config)
        with cloned(self.template) as url:
            self.facts = asyncio.run(ShopFacts.read(url, PolicyConfig()))


async def _sequence(shop: Shop, url: str, rng: random.Random) -> Outcome:
    from shopbot.policy import PolicyIndex

    settings_ = settings_for(url, shop.data_dir)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        policy = PolicyIndex.open(shop.policy_dir)
        async with hostile_services(settings_, sessions, policy) as services:
            return await run_sequence(sessions, settings_, shop.facts, rng, services)
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=list(EXAMPLES))
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Shop:
    return Shop(request.config, request.param, tmp_path_factory.mktemp("hostile"))


def test_hostile_sequences_change_nothing_unconfirmed(shop: Shop) -> None:
    totals = Outcome()

    @settings(
        max_examples=EXAMPLES[shop.backend],
        deadline=None,
        database=None,
        # The same seeds every run: about one sequence in eighty ends in a confirmed return
        # (`benchmarks/hostile.py`, 12 in 1,000), so 300 fresh ones would reach none in about
        # one run of forty and fail the depth check below. The benchmark explores new seeds.
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    # A seed, not hypothesis' own randomness: its draws lean to the edges (a coin that lands
    # on 0.0), which keeps a sequence from getting anywhere; a failing seed replays alone with
    # `python benchmarks/hostile.py --first SEED --sequences 1`.
    @given(seed=st.integers(min_value=0, max_value=2**32 - 1))
    def sequence(seed: int) -> None:
        with cloned(shop.template) as url:
            outcome = asyncio.run(_sequence(shop, url, random.Random(seed)))
        assert outcome.problems == []
        totals.steps += outcome.steps
        totals.side_effects += outcome.side_effects

    sequence()
    # The slice must reach deep enough to mean something: it holds confirmed returns (too
    # few on PostgreSQL's 60 to count on one).
    if shop.backend == "sqlite":
        assert totals.side_effects > 0, totals
    assert totals.steps > EXAMPLES[shop.backend] * 5, totals
