"""`shopbot tau2 import PATH` and `shopbot tau2 export [PATH]`: τ²-bench retail data in and out
of the configured database (`SHOPBOT_DATABASE_URL`).

Import refuses to mix into a shop that holds data unless `--replace` (which clears the shop's
tables first, as `shopbot db seed --reset` does); an export of an import is the same data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from shopbot.config import Settings

tau2_app = typer.Typer(no_args_is_help=True, help="τ²-bench retail data: import and export.")
# Messages carry paths: the terminal wraps them; rich would split them at 80 columns when piped.
console = Console(stderr=True, soft_wrap=True)


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


@tau2_app.command("import")
def tau2_import(
    path: Annotated[Path, typer.Argument(help="A τ²-bench retail db.json.")],
    replace: Annotated[
        bool, typer.Option(help="Clear the shop's tables first, when they hold data.")
    ] = False,
) -> None:
    """Load a τ²-bench retail db.json (products, users, orders) into the shop's tables."""
    from sqlalchemy.orm import Session

    from db.engine import sync_engine, upgrade
    from db.seed import clear_shop, is_seeded
    from db.tau2 import Tau2Error, import_tau2
    from shopbot.app import forget_sandbox_labels

    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise _fail(f"cannot read {path}: {exc}") from None
    settings = Settings()
    upgrade(settings.db_url)
    engine = sync_engine(settings.db_url)
    cleared = False
    with Session(engine) as session:
        if is_seeded(session):
            if not replace:
                raise _fail("the shop already holds data: use --replace to clear it first")
            clear_shop(session)
            cleared = True
        try:
            import_tau2(session, data)
        except (Tau2Error, KeyError, TypeError) as exc:
            raise _fail(f"{path} is not τ²-bench retail data: {exc}") from None
        session.commit()
    engine.dispose()
    if cleared:
        forget_sandbox_labels(settings)
    counts = {table: len(data[table]) for table in ("products", "users", "orders")}
    console.print(f"imported {path}: " + ", ".join(f"{n} {t}" for t, n in counts.items()))


@tau2_app.command("export")
def tau2_export(
    path: Annotated[
        Path | None, typer.Argument(help="Where to write the JSON; stdout when absent.")
    ] = None,
) -> None:
    """Write the shop's tables as a τ²-bench retail db.json."""
    from sqlalchemy.orm import Session

    from db.engine import sync_engine
    from db.tau2 import Tau2Error, export_tau2

    settings = Settings()
    engine = sync_engine(settings.db_url)
    with Session(engine) as session:
        try:
            data = export_tau2(session)
        except Tau2Error as exc:
            raise _fail(f"the shop cannot be written as τ²-bench data: {exc}") from None
    engine.dispose()
    text = json.dumps(data, indent=2) + "\n"
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text)
        console.print(f"exported to {path}")
