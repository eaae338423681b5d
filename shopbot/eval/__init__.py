"""Evaluation: simulated customers with goals against any model, scored by the shop's state.

    scenario (fixtures/scenarios/*.yaml: persona, goal, expected outcome)
      -> simulator (rule-based persona, or an LLM playing it) <-> agent (any model)
      -> a fresh copy of the demo shop per trial (carrier sandbox, loopback SMTP)
      -> scoring: the world tables diffed against the seeded state, the outbox, the facts said
      -> metrics (pass^k the tau2 way, violations, steps, calls, latency) -> HTML + JSON report

| module | what it holds |
|---|---|
| `scenario.py` | the scenario format (pydantic) and `load_scenarios` |
| `simulator.py` | `RuleSimulator` (default), `LlmSimulator` and its chat backends |
| `oracle.py` | `Oracle`: a `ChatModel` playing a perfect agent through the real loop (the returns desk's; another desk names its own, `Desk.oracle`) |
| `runner.py` | `run_suite` (tasks x k trials, pluggable trial function), `ScenarioTrials` |
| `scoring.py` | world snapshots, their difference as `Effects`, `score` and `violations` |
| `metrics.py` | `pass_hat_k`, `summarize` |
| `report.py` | the HTML report with inline SVG plots, the JSON result |
| `judge.py` | the optional LLM judge of reply quality |
| `cli.py` | `shopbot eval` |

Decisions:

- **Scored like tau2-bench, by the state reached.** A run passes when the returns and
  emails it produced are exactly the expected ones, every other change in the shop is one a
  return implies, the identity and escalation are as expected, the carrier issued only the
  labels recorded, and every required fact was said. What the agent said on the way, or which
  tools it used, does not matter.
- **Violations are judged independently of the guard** (`scoring.violations`): side effects
  a policy forbids or phrases the scenario says must never be said. Guard denials are
  counted separately: they show the guard working, not the agent failing.
- **The oracle proves the harness.** It goes through parse, guard and tools like any model,
  reading only the request and the conversation's events; its 100% pass (CI) shows the
  scenarios, the simulator and the scorer agree.
- **Pluggable.** `run_suite`, `metrics` and `report` see only tasks (id, title, category)
  and `TrialResult`s; another task source (tau2-bench) brings its own trial function.
- **Trials run one after another** on SQLite copies of one seeded template; one loopback
  SMTP server serves them all. This package's `__init__` imports nothing, so the `shopbot`
  command starts fast: import from the submodules.
"""
