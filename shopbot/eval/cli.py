"""`shopbot eval`: the scenario suite when given no subcommand; `shopbot eval retrieval` and
other subcommands (registered in `shopbot.cli`) measure parts.

    shopbot eval --model oracle -k 3             # CI: must pass 100%
    shopbot eval --model local -s return -k 1    # the embedded model on one category
    shopbot eval --model openai --judge --json   # any OpenAI-compatible endpoint
    shopbot eval --desk examples/parcel_desk
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine, Generator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.console import Console

if TYPE_CHECKING:
    from shopbot.eval.metrics import Summary
    from shopbot.eval.runner import TrialResult

EvalModel = Literal["oracle", "local", "openai"]
SimulatorKind = Literal["rule", "llm"]
SimulatorBackend = Literal["openai", "local"]
POLICIES = Path("fixtures/policies")

eval_app = typer.Typer(
    help="How good is ShopBot? Measured. With no subcommand: run the scenario suite "
    "(simulated customers against a model; pass^k, policy violations, steps, latency, an "
    "HTML report)."
)
# Messages carry paths: the terminal wraps them; rich would split them at 80 columns when piped.
console = Console(stderr=True, soft_wrap=True)


@eval_app.callback(invoke_without_command=True)
def eval_suite(
    ctx: typer.Context,
    model: Annotated[
        EvalModel, typer.Option(help="oracle (a perfect scripted agent), local or openai.")
    ] = "oracle",
    k: Annotated[int, typer.Option("-k", min=1, help="Trials per scenario.")] = 3,
    scenarios: Annotated[
        Path | None, typer.Option(help="A scenario file or folder (default: the desk's).")
    ] = None,
    desk: Annotated[
        str | None,
        typer.Option(help="The desk (SHOPBOT_DESK): a name, a desk's folder or module:NAME."),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", "-s", help="Scenario ids, id prefixes or categories (repeat)."),
    ] = None,
    simulator: Annotated[
        SimulatorKind, typer.Option(help="rule (persona rules) or llm (a model plays it).")
    ] = "rule",
    simulator_backend: Annotated[
        SimulatorBackend, typer.Option(help="The llm simulator's model: openai or local.")
    ] = "openai",
    judge: Annotated[
        bool, typer.Option(help="Grade replies with an LLM judge (SHOPBOT_LLM_* endpoint).")
    ] = False,
    judge_model: Annotated[
        str | None, typer.Option(help="The judge's model name (default SHOPBOT_LLM_MODEL).")
    ] = None,
    report: Annotated[
        Path, typer.Option(help="The HTML report; the JSON result is written next to it.")
    ] = Path("data/eval/report.html"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    min_pass: Annotated[
        float | None,
        typer.Option(help="Fail (exit 1) below this pass^1; default 1.0 for the oracle, else 0."),
    ] = None,
    max_turns: Annotated[int, typer.Option(help="Customer turns per conversation.")] = 12,
) -> None:
    """Run the scenario suite: k trials per scenario, scored by the shop's state."""
    if ctx.invoked_subcommand is not None:
        return
    from shopbot.config import Settings
    from shopbot.errors import ConfigError
    from shopbot.eval.scenario import load_scenarios
    from tools.desks import load_desk

    settings = Settings() if desk is None else Settings(desk=desk)
    if scenarios is None:
        try:
            scenarios = load_desk(settings.desk).scenarios
        except ConfigError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
        if scenarios is None:
            console.print(
                f"[red]error:[/red] the {settings.desk} desk has no scenarios: --scenarios"
            )
            raise typer.Exit(2)
    found = load_scenarios(scenarios, only)
    if not found:
        console.print("[red]error:[/red] no scenarios match")
        raise typer.Exit(2)
    run = _run(
        found,
        settings,
        model=model,
        k=k,
        simulator=simulator,
        simulator_backend=simulator_backend,
        judge=judge,
        judge_model=judge_model,
        report=report,
        max_turns=max_turns,
    )
    floor = min_pass if min_pass is not None else (1.0 if model == "oracle" else 0.0)
    conclude(run, report=report, as_json=as_json, floor=floor)


def conclude(
    run: Coroutine[Any, Any, Summary], *, report: Path, as_json: bool, floor: float
) -> None:
    """Run the trials, print the summary (or its JSON) and where the report is; exit 1 on a
    policy violation or when pass^1 is under `floor`, 2 on a configuration error."""
    from shopbot.errors import ConfigError

    try:
        summary = asyncio.run(run)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(summary.model_dump(mode="json"), indent=2))
    else:
        console.print(summary.line())
        console.print(f"report: {report} (JSON: {report.with_suffix('.json')})")
    if summary.violations or summary.pass_hat[1] < floor:
        sys.exit(1)


async def _run(
    found: list[Any],
    settings: Any,
    *,
    model: EvalModel,
    k: int,
    simulator: SimulatorKind,
    simulator_backend: SimulatorBackend,
    judge: bool,
    judge_model: str | None,
    report: Path,
    max_turns: int,
) -> Any:

    from shopbot.app import build_model, open_policy_index
    from shopbot.eval.judge import make_judge
    from shopbot.eval.metrics import summarize
    from shopbot.eval.report import write_report
    from shopbot.eval.runner import ScenarioTrials, run_suite
    from shopbot.eval.scenario import Scenario
    from shopbot.eval.simulator import (
        LlmSimulator,
        RuleSimulator,
        Simulator,
        local_chat,
        openai_chat,
    )
    from shopbot.models.base import ChatModel

    policy = open_policy_index(settings)
    policy.sync(POLICIES)  # quick when the index is up to date
    label: str = model
    if model == "oracle":
        oracle = desk_oracle(settings.desk)

        def model_for(scenario: Scenario) -> ChatModel:
            return oracle(scenario)

    else:
        shared = build_model(settings.model_copy(update={"model": model}))
        label = shared.name  # "local:SmolLM2-135M-Instruct.Q4_1", "openai:gpt-4o-mini"

        def model_for(scenario: Scenario) -> ChatModel:
            return shared  # loaded once; it keeps each conversation's state apart

    if simulator == "rule":

        def simulator_for(scenario: Scenario) -> Simulator:
            return RuleSimulator(scenario)

    else:
        chat = openai_chat(settings) if simulator_backend == "openai" else local_chat(settings)

        def simulator_for(scenario: Scenario) -> Simulator:
            return LlmSimulator(scenario, chat)

    grader = make_judge(openai_chat(settings, model=judge_model)) if judge else None
    started = time.perf_counter()
    with trial_progress(f"eval {model}", len(found) * k) as advance:
        async with ScenarioTrials(
            model_for=model_for,
            simulator_for=simulator_for,
            policy_index=policy,
            settings={"model": "scripted" if model == "oracle" else model, "desk": settings.desk},
            max_turns=max_turns,
            judge=grader,
        ) as trials:
            results = await run_suite(found, trials, k=k, on_result=advance)
    summary = summarize(
        results,
        model=label,
        simulator=simulator if simulator == "rule" else f"llm ({simulator_backend})",
        k=k,
        seconds=time.perf_counter() - started,
    )
    write_report(summary, results, html=report, json_path=report.with_suffix(".json"))
    return summary


def desk_oracle(setting: str) -> Callable[[Any], Any]:
    """The scripted agent that plays the desk's scenarios perfectly (`Desk.oracle`): given a
    scenario, a chat model."""
    from shopbot.errors import ConfigError
    from tools.desks import load_desk, load_object

    desk = load_desk(setting)
    if desk.oracle is None:
        raise ConfigError(f"the {desk.name} desk has no oracle (Desk.oracle): choose a --model")
    found = load_object(desk.oracle, f"the {desk.name} desk's oracle", default="Oracle")
    if not callable(found):
        raise ConfigError(f"the {desk.name} desk's oracle {desk.oracle} is not a class")
    return found


@contextmanager
def trial_progress(label: str, total: int) -> Generator[Callable[[TrialResult], None]]:
    """A progress bar over `total` trials; the callback moves it on by one result."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[passed]} passed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task(label, total=total, passed=0)
        passed = 0

        def advance(result: TrialResult) -> None:
            nonlocal passed
            passed += result.passed
            progress.update(
                bar, advance=1, passed=passed, description=f"{result.task_id} #{result.trial}"
            )

        yield advance


__all__ = ["desk_oracle", "eval_app", "trial_progress"]
