"""The `shopbot` command: chat, serve, replay, purge, and the plumbing (database, index, eval)."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from db.engine import schema_behind
from shopbot.config import ModelName, Settings
from shopbot.distil.cli import distil_app
from shopbot.errors import ConfigError
from shopbot.eval.cli import eval_app
from shopbot.tau2.bench_cli import eval_tau2
from shopbot.tau2.cli import tau2_app
from shopbot.web.staff_cli import staff_app

app = typer.Typer(no_args_is_help=True, help="ShopBot: the customer-service agent shops trust.")
db_app = typer.Typer(no_args_is_help=True, help="The database: migrations and demo data.")
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")  # the scenario suite; subcommands below
POLICIES = Path("fixtures/policies")
sandbox_app = typer.Typer(no_args_is_help=True, help="Test-mode stand-ins for outside services.")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(tau2_app, name="tau2")
app.add_typer(distil_app, name="distil")
app.add_typer(staff_app, name="staff")
eval_app.command("tau2")(eval_tau2)  # the τ²-bench retail benchmark
# Messages carry paths: the terminal wraps them; rich would split them at 80 columns when piped.
console = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the latest schema."""
    from db.engine import upgrade

    settings = Settings()
    upgrade(settings.db_url)
    console.print(f"database at {settings.db_url} is up to date")


@db_app.command("seed")
def db_seed(
    reset: Annotated[
        bool,
        typer.Option(
            help="Delete the shop's data first (and the sandbox carrier's labels); "
            "conversations stay, unverified."
        ),
    ] = False,
) -> None:
    """Load the demo shop (customers, products, orders) from fixtures/shop."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from db.engine import upgrade
    from db.seed import clear_shop, is_seeded, load_demo_shop
    from shopbot.app import forget_sandbox_labels

    settings = Settings()
    upgrade(settings.db_url)
    engine = create_engine(settings.db_url.replace("postgresql://", "postgresql+psycopg://"))
    with Session(engine) as session:
        if reset:
            clear_shop(session)
        elif is_seeded(session):
            console.print("the demo shop is already loaded (use --reset to reload it)")
            return
        summary = load_demo_shop(session, zone=settings.policy.zone)
        session.commit()
    engine.dispose()
    if reset and forget_sandbox_labels(settings):
        console.print(f"cleared the sandbox carrier's labels in {settings.sandbox_carrier_dir}")
    console.print(f"loaded the demo shop: {summary}")


outbox_app = typer.Typer(no_args_is_help=True, help="The email outbox.")
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("run")
def outbox_run(
    once: Annotated[bool, typer.Option(help="Deliver what is due, then stop.")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between looks at the outbox.")] = 5.0,
) -> None:
    """Deliver queued emails (label emails): retries with backoff, never sends twice."""
    import signal

    from shopbot.app import open_database
    from tools.mailer import Dispatcher

    settings = Settings()

    async def run() -> None:
        engine, sessions = open_database(settings)
        dispatcher = Dispatcher.from_settings(settings, sessions)
        try:
            if once:
                console.print(f"outbox: {await dispatcher.deliver_due()}")
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            console.print("delivering the outbox; Ctrl-C to stop")
            await dispatcher.run_forever(stop_event=stop, poll_interval=poll)
        finally:
            await engine.dispose()

    asyncio.run(run())


@app.command("index")
def index_command(
    documents: Annotated[
        Path, typer.Option(help="Folder of Markdown policy documents.")
    ] = POLICIES,
) -> None:
    """Build or update the policy index: embeds only new or changed sections."""
    from rich.progress import Progress

    from shopbot.app import open_policy_index
    from shopbot.policy import check_policy_numbers

    settings = Settings()
    for problem in check_policy_numbers(documents, settings.policy):
        console.print(f"[yellow]warning:[/yellow] {problem}")
    index = open_policy_index(settings)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("embedding policy sections", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        summary = index.sync(documents, progress=advance)
    console.print(
        f"policy index: {summary.added} added, {summary.updated} updated, "
        f"{summary.removed} removed, {summary.unchanged} unchanged in {summary.seconds:.1f} s"
    )


@app.command("prepare")
def prepare_command() -> None:
    """Prepare the configured model: merge the local student into its base (once, cached)."""
    from shopbot.app import prepare_model

    with console.status("merging the student into its base model (once)"):
        path = prepare_model(Settings())
    console.print(f"local model: {path}" if path else "local model: nothing to prepare")


@eval_app.command("retrieval")
def eval_retrieval(
    qa: Annotated[Path, typer.Option(help="Questions with expected sections.")] = Path(
        "fixtures/policy_qa.yaml"
    ),
    mode: Annotated[str, typer.Option(help="hybrid or dense.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Recall@1/3/5 and MRR of policy search on the question set."""
    from shopbot.app import open_policy_index
    from shopbot.policy import DENSE, HYBRID, evaluate_retrieval

    if mode not in ("hybrid", "dense"):
        raise fail("--mode is hybrid or dense")
    index = open_policy_index(Settings())
    index.sync(POLICIES)
    report = evaluate_retrieval(index, qa, HYBRID if mode == "hybrid" else DENSE)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        print(report.summary())


@sandbox_app.command("carrier")
def sandbox_carrier(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8040,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    keep: Annotated[bool, typer.Option(help="Keep labels in the data dir across restarts.")] = True,
    latency: Annotated[float, typer.Option(help="Seconds added to every request.")] = 0.0,
    error_rate: Annotated[float, typer.Option(help="Share of requests answered 500/503.")] = 0.0,
    rate_limit_rate: Annotated[float, typer.Option(help="Share answered 429.")] = 0.0,
) -> None:
    """Serve the Parcelo carrier sandbox (the label API, with OpenAPI docs at /docs)."""
    from tools.carrier import Faults, serve_sandbox

    settings = Settings()
    faults = Faults(
        latency=latency, error_rate=error_rate, rate_limit_rate=rate_limit_rate, seed=None
    )
    console.print(f"Parcelo sandbox on http://{host}:{port} (API key from SHOPBOT_CARRIER_API_KEY)")
    asyncio.run(
        serve_sandbox(
            port,
            host,
            faults=faults,
            api_key=settings.carrier_api_key.get_secret_value(),
            data_dir=settings.data_dir / "carrier" if keep else None,
        )
    )


@app.command("chat")
def chat(
    plain: Annotated[bool, typer.Option(help="Line-by-line chat, for any terminal.")] = False,
    model: Annotated[ModelName | None, typer.Option(help="local, openai or scripted.")] = None,
    script: Annotated[
        Path | None, typer.Option(help="Outputs for the scripted model (YAML list).")
    ] = None,
    steps: Annotated[bool, typer.Option(help="Show the guard's verdicts (line chat).")] = False,
    resume: Annotated[str | None, typer.Option(help="Conversation id to continue.")] = None,
) -> None:
    """Chat with ShopBot: full screen in a terminal, line by line with --plain or a pipe."""
    from shopbot.app import (
        build_agent,
        build_model,
        open_database,
        open_services,
        start_conversation,
    )
    from shopbot.plain_chat import chat as plain_chat

    settings = Settings() if model is None else Settings(model=model)
    if behind := schema_behind(settings.db_url):
        raise fail(behind)
    outputs: list[Any] = yaml.safe_load(script.read_text()) if script else []
    try:
        chat_model = build_model(settings, script=outputs)
    except ConfigError as exc:
        raise fail(str(exc)) from None

    async def run() -> None:
        engine, sessions = open_database(settings)
        try:
            async with open_services(settings, sessions) as services:
                agent = build_agent(settings, chat_model, sessions, services)
                cid = await start_conversation(sessions, settings)
                await plain_chat(agent, cid, steps=steps)
        finally:
            await engine.dispose()

    from shopbot.otlp import exporting
    from shopbot.tui import can_run_full_screen, run_tui

    with exporting(settings):  # traces, when SHOPBOT_OTEL_ENDPOINT is set
        if plain or not can_run_full_screen():  # pipes and dumb terminals get the line chat
            asyncio.run(run())
        else:
            run_tui(settings, chat_model, conversation_id=resume)


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (use PostgreSQL past 1).")] = 1,
) -> None:
    """Serve the chat-widget backend: the API, the widget script and the demo shop at /demo.

    Unset signing secrets are generated into the data dir on the first run; weak ones given
    explicitly are refused off loopback (`shopbot.signing_keys`)."""
    from shopbot.web.server import serve

    settings = Settings()
    if behind := schema_behind(settings.db_url):
        raise fail(behind)
    console.print(f"ShopBot on http://{host}:{port} (demo shop: /demo, API docs: /docs)")
    try:
        serve(settings, host, port, workers)
    except ConfigError as exc:
        raise fail(str(exc)) from None


@app.command("purge")
def purge_command(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="How long a conversation must have been idle: 12h, 30d, 2w.",
            show_default=False,
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go; change nothing.")
    ] = False,
) -> None:
    """Delete the conversations idle for longer than --older-than; keep their counts.

    Their messages, events, audit rows and confirmations go too; orders, returns and labels
    stay (a return loses only its link to the conversation). Counts per day go into
    conversation_stats. One transaction: safe while serving, and a second run changes
    nothing. Schedule it daily, e.g. from cron (README: what ShopBot keeps)."""
    from sqlalchemy import inspect

    from db import ConversationStats
    from shopbot.app import open_database
    from shopbot.retention import PurgeReport, parse_age, purge

    try:
        age = parse_age(older_than)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    settings = Settings()

    async def run() -> PurgeReport | None:
        engine, sessions = open_database(settings)
        try:
            async with engine.connect() as conn:
                table = ConversationStats.__tablename__
                if not await conn.run_sync(lambda sync: inspect(sync).has_table(table)):
                    return None
            return await purge(sessions, age, settings.policy.zone, dry_run=dry_run)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    if report is None:
        raise fail(f"the database at {settings.db_url} predates purging: run `shopbot db upgrade`")
    print("\n".join(report.lines()))  # whole lines: cron mails and logs them as they are


@app.command("replay")
def replay_command(
    paths: Annotated[list[Path], typer.Argument(help="Conversation scripts or folders of them.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Run scripted conversations against a fresh demo shop and report what differs."""
    from db.testing import SqliteTemplate, cloned
    from shopbot.replay import ReplayResult, Script, replay

    files = sorted(f for p in paths for f in ([p] if p.is_file() else p.glob("*.yaml")))
    if not files:
        raise fail("no conversation scripts found")
    results: list[ReplayResult] = []
    scripts = {file: Script.load(file) for file in files}
    from shopbot.app import open_policy_index

    policy = open_policy_index(Settings())
    policy.sync(POLICIES)  # quick when the index is up to date
    with tempfile.TemporaryDirectory() as tmp:
        template = SqliteTemplate(Path(tmp) / "db")
        for file, script in scripts.items():
            with cloned(template) as url:
                settings = Settings(database_url=url, data_dir=Path(tmp))
                result = asyncio.run(replay(script, settings, name=file.stem, policy=policy))
                results.append(result)
    passed = sum(r.passed for r in results)
    if as_json:
        summary = {
            "passed": passed,
            "failed": len(results) - passed,
            "results": [r.model_dump() for r in results],
        }
        print(json.dumps(summary, indent=2))
    else:
        out = Console()
        for r in results:
            mark = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
            out.print(f"{mark} {r.name}: {r.title}")
            for failure in r.failures:
                out.print(f"     {failure}", markup=False)
        out.print(f"{passed} passed, {len(results) - passed} failed")
    if passed != len(results):
        sys.exit(1)


if __name__ == "__main__":
    app()
