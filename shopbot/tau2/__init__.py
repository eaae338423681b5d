"""τ²-bench retail in ShopBot: its data, its ground truth, and replaying it.

- `data`: where the files are (`SHOPBOT_TAU2_DIR`), the tasks, and what a task must end in:
  `expected_outcome(task_id)` (changed records, actions that must fail) and
  `expected_database(task_id)`, the seam for the benchmark runner (`shopbot/eval/`).
- `replay`: `Replayer` runs ground-truth actions through the retail desk's schema, guard
  and tools (`tools.retail`), each in its own transaction.
- `cli`: `shopbot tau2 import|export`.
- `bench`, `customer`, `oracle`, `bench_cli`: the benchmark runner (`shopbot eval tau2`):
  τ² tasks and trials for `shopbot.eval`, the LLM customer of a task's user scenario, the
  ground-truth oracle that proves the scorer.

The retail desk itself is `SHOPBOT_DESK=retail` (`tools.desks.DESKS`). Nothing is
imported here: the `shopbot` command imports `cli` at start-up, and must not pull in the
agent for it.
"""
