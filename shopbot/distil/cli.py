"""`shopbot distil`: the embedded student, from training data to the shipped adapter.

    shopbot distil data      synthetic customers x teacher through the real loop -> steps
    shopbot distil train     LoRA on SmolLM2-135M (the [train] extra), checkpointed
    shopbot distil export    the adapter as a GGUF LoRA next to the local backend, the
                             merged student at each quantization level (--levels)
    shopbot distil report    held-out right actions per tool, loss curves: the report

`make distil` runs the four in order. Training writes only under its `--out` folder; the
shipped adapter changes only when `export` finishes.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress

from shopbot.errors import ConfigError

distil_app = typer.Typer(no_args_is_help=True, help="Train and ship the embedded student model.")
console = Console(stderr=True, soft_wrap=True)
DATA = Path("fixtures/distil/steps.jsonl.gz")
RUN = Path("data/distil/run")


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


@distil_app.command("data")
def data_command(
    conversations: Annotated[int, typer.Option(help="Synthetic conversations to play.")] = 1400,
    seed: Annotated[int, typer.Option(help="Draws the scenarios and the customers' words.")] = 7,
    out: Annotated[Path, typer.Option(help="The steps, gzipped JSON lines.")] = DATA,
) -> None:
    """Play synthetic customers against the teacher through the real loop; keep every step."""
    from shopbot.app import open_policy_index
    from shopbot.config import Settings
    from shopbot.distil.generate import generate, write

    with Progress(console=console) as progress:
        task = progress.add_task("conversations", total=conversations)
        rows, counts = asyncio.run(
            generate(
                conversations,
                seed,
                policy_index=open_policy_index(Settings()),
                progress=lambda done, _: progress.update(task, completed=done),
            )
        )
    write(rows, out)
    for key, value in sorted(counts.items()):
        console.print(f"  {key}: {value}")
    console.print(f"wrote {len(rows)} steps to {out}")


@distil_app.command("train")
def train_command(
    data: Annotated[Path, typer.Option(help="Steps from `shopbot distil data`.")] = DATA,
    out: Annotated[Path, typer.Option(help="Checkpoints, log and summary.")] = RUN,
    epochs: Annotated[float, typer.Option(help="Passes over the training split.")] = 1.35,
    minutes: Annotated[float, typer.Option(help="Stop and save after this long.")] = 85.0,
    limit: Annotated[
        int | None, typer.Option(help="Train on the first N steps (a smoke run).")
    ] = None,
    start: Annotated[
        Path | None, typer.Option(help="A GGUF LoRA adapter to go on from (a shipped one).")
    ] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 4e-4,
) -> None:
    """Fine-tune the base with LoRA on the training split (needs the [train] extra)."""
    from shopbot.distil.train import TrainConfig, require_train_extra, train

    try:
        require_train_extra()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    adapter = train(
        TrainConfig(
            data=data, out=out, epochs=epochs, minutes=minutes, limit=limit, start=start, lr=lr
        )
    )
    console.print(f"adapter saved in {adapter}")


@distil_app.command("export")
def export_command(
    run: Annotated[Path, typer.Option(help="The training run to export.")] = RUN,
    levels: Annotated[
        str, typer.Option(help="Also write the merged student at these levels ('' for none).")
    ] = "",
) -> None:
    """Convert the adapter to a GGUF LoRA and install it as the local backend's default."""
    from shopbot.distil.export import lora_to_gguf, merged_to_gguf, quantize, save_base
    from shopbot.distil.train import require_train_extra
    from shopbot.models.local import RETURNS_ADAPTER

    try:
        require_train_extra()
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    adapter = run / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise _fail(f"no trained adapter in {adapter}: run `shopbot distil train` first")
    base = save_base(run.parent / "base")
    out = lora_to_gguf(adapter, RETURNS_ADAPTER, base)
    console.print(f"installed {out} ({out.stat().st_size / 1e6:.1f} MB)")
    if levels:
        f16 = merged_to_gguf(adapter, run, base)
        console.print(f"wrote {f16}")
        for level in [x for x in levels.split(",") if x and x != "F16"]:
            console.print(f"wrote {quantize(f16, level)}")


@distil_app.command("report")
def report_command(
    run: Annotated[Path, typer.Option(help="The training run to report on.")] = RUN,
    data: Annotated[Path, typer.Option(help="The steps it was trained on.")] = DATA,
    split: Annotated[str, typer.Option(help="The held-out split to score.")] = "test",
    limit: Annotated[int, typer.Option(help="Score at most this many held-out steps.")] = 400,
    out: Annotated[Path, typer.Option(help="Where the report and its plots go.")] = Path(
        "shopbot/models/adapters/report"
    ),
) -> None:
    """Score the shipped student on held-out steps and write the report with its plots."""
    from shopbot.distil.report import write_report

    path = write_report(run, data, split, limit, out)
    console.print(f"wrote {path}")
    console.print(
        json.dumps(json.loads((out / "heldout.json").read_text())["summary"], indent=1)[:2000]
    )


__all__ = ["distil_app"]
