"""The `shopbot` command: chat, replay, and the plumbing (database, later index and eval)."""

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

from shopbot.config import ModelName, Settings
from shopbot.errors import ConfigError

app = typer.Typer(no_args_is_help=True, help="ShopBot: the customer-service agent shops trust.")
db_app = typer.Typer(no_args_is_help=True, help="The database: migrations and demo data.")
app.add_typer(db_app, name="db")
sandbox_app = typer.Typer(no_args_is_help=True, help="Test-mode stand-ins for outside services.")
app.add_typer(sandbox_app, name="sandbox")
console = Console(stderr=True)


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
    reset: Annotated[bool, typer.Option(help="Delete the shop's data first.")] = False,
) -> None:
    """Load the demo shop (customers, products, orders) from fixtures/shop."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from db.engine import upgrade
    from db.seed import clear_shop, is_seeded, load_demo_shop

    settings = Settings()
    upgrade(settings.db_url)
    engine = create_engine(settings.db_url.replace("postgresql://", "postgresql+psycopg://"))
    with Session(engine) as session:
        if reset:
            clear_shop(session)
        elif is_seeded(session):
            console.print("the demo shop is already loaded (use --reset to reload it)")
            return
        summary = load_demo_shop(session)
        session.commit()
    console.print(f"loaded the demo shop: {summary}")


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
    steps: Annotated[bool, typer.Option(help="Show the guard's verdicts.")] = False,
) -> None:
    """Chat with ShopBot."""
    from shopbot.app import build_agent, build_model, open_database, start_conversation
    from shopbot.plain_chat import chat as plain_chat

    settings = Settings() if model is None else Settings(model=model)
    outputs: list[Any] = yaml.safe_load(script.read_text()) if script else []
    try:
        chat_model = build_model(settings, script=outputs)
    except ConfigError as exc:
        raise fail(str(exc)) from None

    async def run() -> None:
        engine, sessions = open_database(settings)
        try:
            agent = build_agent(settings, chat_model, sessions)
            cid = await start_conversation(sessions, settings)
            await plain_chat(agent, cid, steps=steps)
        finally:
            await engine.dispose()

    if not plain:
        console.print("the full-screen chat is not built yet: using --plain")
    asyncio.run(run())


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
    with tempfile.TemporaryDirectory() as tmp:
        template = SqliteTemplate(Path(tmp) / "db")
        for file in files:
            with cloned(template) as url:
                settings = Settings(database_url=url, data_dir=Path(tmp))
                results.append(asyncio.run(replay(Script.load(file), settings, name=file.stem)))
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
