"""`shopbot eval tau2`: the τ²-bench retail benchmark against a model.

    shopbot eval tau2 --model scripted-oracle -k 2   # the scorer itself: must pass 100%
    shopbot eval tau2 --model local --only 0 -k 1     # the embedded model as agent and user
    shopbot eval tau2 --model openai --user-model openai -k 4 --json

Registered in `shopbot.cli`; everything heavy is imported when the command runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from shopbot.eval.cli import conclude

AgentModel = Literal["local", "openai", "scripted-oracle"]
UserModel = Literal["local", "openai"]
# Messages carry paths: the terminal wraps them; rich would split them at 80 columns when piped.
console = Console(stderr=True, soft_wrap=True)


def eval_tau2(
    tasks: Annotated[
        Path | None,
        typer.Option(help="A τ² tasks file (default: tasks_train.json in SHOPBOT_TAU2_DIR)."),
    ] = None,
    model: Annotated[
        AgentModel,
        typer.Option(help="The agent's model: local, openai, or scripted-oracle (ground truth)."),
    ] = "local",
    user_model: Annotated[
        UserModel, typer.Option(help="The simulated customer's model: local or openai.")
    ] = "local",
    k: Annotated[int, typer.Option("-k", min=1, help="Trials per task.")] = 1,
    only: Annotated[
        list[str] | None, typer.Option("--only", "-s", help="Task ids or categories (repeat).")
    ] = None,
    max_turns: Annotated[int, typer.Option(min=1, help="Customer turns per conversation.")] = 20,
    report: Annotated[
        Path, typer.Option(help="The HTML report; the JSON result is written next to it.")
    ] = Path("data/eval/tau2.html"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    min_pass: Annotated[
        float | None,
        typer.Option(help="Fail (exit 1) below this pass^1; default 1.0 for the oracle, else 0."),
    ] = None,
) -> None:
    """τ²-bench retail: simulated customers with the tasks' scenarios against a model, scored
    by the final database against the ground truth's and the facts said; pass^1..pass^k."""
    from shopbot.errors import ConfigError
    from shopbot.tau2.bench import load_bench_tasks
    from shopbot.tau2.data import missing_reason, tau2_dir

    path = tasks or tau2_dir() / "tasks_train.json"
    if tasks is None and (why := missing_reason()):
        console.print(f"[red]error:[/red] {why}")
        raise typer.Exit(2)
    try:
        found = load_bench_tasks(path, only)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not found:
        console.print("[red]error:[/red] no tasks match")
        raise typer.Exit(2)
    run = _run(
        found,
        path.parent,
        model=model,
        user_model=user_model,
        k=k,
        max_turns=max_turns,
        report=report,
    )
    floor = min_pass if min_pass is not None else (1.0 if model == "scripted-oracle" else 0.0)
    conclude(run, report=report, as_json=as_json, floor=floor)


async def _run(
    found: list[Any],
    directory: Path,
    *,
    model: AgentModel,
    user_model: UserModel,
    k: int,
    max_turns: int,
    report: Path,
) -> Any:

    from shopbot.app import build_model
    from shopbot.config import Settings
    from shopbot.eval.metrics import summarize
    from shopbot.eval.report import write_report
    from shopbot.eval.runner import run_suite
    from shopbot.eval.simulator import Simulator, local_chat, openai_chat
    from shopbot.models.base import ChatModel
    from shopbot.tau2.bench import BenchTask, Tau2Trials
    from shopbot.tau2.customer import Tau2Customer
    from shopbot.tau2.oracle import GroundTruthAgent, OracleCustomer

    settings = Settings()
    if model == "scripted-oracle":
        label, user = "oracle (ground truth)", "oracle"

        def agent_for(task: BenchTask) -> ChatModel:
            return GroundTruthAgent(task.task)

        def customer_for(task: BenchTask, agent: ChatModel) -> Simulator:
            assert isinstance(agent, GroundTruthAgent)
            return OracleCustomer(task.task, agent)

    else:
        shared = build_model(settings.model_copy(update={"model": model, "desk": "retail"}))
        label, user = shared.name, f"llm ({user_model})"
        chat = local_chat(settings) if user_model == "local" else openai_chat(settings)

        def agent_for(task: BenchTask) -> ChatModel:
            return shared  # loaded once; it keeps each conversation's state apart

        def customer_for(task: BenchTask, agent: ChatModel) -> Simulator:
            return Tau2Customer(task.user_scenario, chat)

    started = time.perf_counter()
    from shopbot.eval.cli import trial_progress

    with trial_progress(f"tau2 {model}", len(found) * k) as advance:
        async with Tau2Trials(
            agent_for,
            customer_for,
            directory,
            settings={"model": "scripted" if model == "scripted-oracle" else model},
            max_turns=max_turns,
        ) as trials:
            results = await run_suite(found, trials, k=k, on_result=advance)
    summary = summarize(
        results, model=label, simulator=user, k=k, seconds=time.perf_counter() - started
    )
    write_report(summary, results, html=report, json_path=report.with_suffix(".json"))
    return summary


__all__ = ["eval_tau2"]
