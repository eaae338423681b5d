"""The training report: data counts, hyperparameters, loss curves and held-out right actions
per tool, as Markdown with plots (matplotlib, from the [train] extra)."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from shopbot.actions import ActionSchema
from shopbot.distil.generate import read
from shopbot.distil.heldout import score, summary, unseen
from tools import TOOLS


def heldout(rows: list[dict[str, Any]], split: str, limit: int, seed: int = 7) -> dict[str, Any]:
    """The shipped student (packaged base + adapter, merged as the app runs it) on `limit`
    steps of a held-out split."""
    from shopbot.models.local import RETURNS_ADAPTER, LocalModel

    fresh = unseen(rows, split)
    chosen = list(fresh)
    random.Random(seed).shuffle(chosen)
    chosen = sorted(chosen[:limit], key=lambda r: (r["scenario"], r["step"]))
    from shopbot.config import Settings

    model = LocalModel(adapter=RETURNS_ADAPTER, n_threads=2, merge_dir=Settings().merged_models_dir)
    scored = asyncio.run(score(model, chosen, ActionSchema(TOOLS)))
    held = sum(r["split"] == split for r in rows)
    return {
        "split": split,
        "held_out": held,
        "unseen": len(unseen(rows, split)),
        "summary": summary(scored),
    }


def _plots(log: list[dict[str, Any]], tools: dict[str, dict[str, int]], out: Path) -> list[str]:
    import matplotlib  # pyright: ignore[reportMissingImports]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pyright: ignore[reportMissingImports]

    names: list[str] = []
    fig, ax = plt.subplots(figsize=(7, 3.5))
    steps = [e["step"] + 1 for e in log]
    losses = [e["loss"] for e in log]
    window = 20
    smooth = [
        sum(losses[max(0, i - window + 1) : i + 1]) / len(losses[max(0, i - window + 1) : i + 1])
        for i in range(len(losses))
    ]
    ax.plot(steps, losses, color="#bbb", linewidth=0.6, label="train (per batch)")
    ax.plot(steps, smooth, color="#1f77b4", label=f"train (mean of {window})")
    dev = [(e["step"] + 1, e["dev_loss"]) for e in log if "dev_loss" in e]
    if dev:
        ax.plot(*zip(*dev, strict=True), "o-", color="#d62728", label="dev")
    ax.set_xlabel("batch")
    ax.set_ylabel("loss on action tokens")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "loss.png", dpi=110)
    names.append("loss.png")
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = list(tools)
    shares = [tools[t]["right"] / tools[t]["n"] for t in labels]
    bars = ax.barh(labels, shares, color="#2ca02c")
    for bar, t in zip(bars, labels, strict=True):
        ax.text(
            bar.get_width() + 0.01,
            bar.get_y() + bar.get_height() / 2,
            f"{tools[t]['right']}/{tools[t]['n']}",
            va="center",
            fontsize=8,
        )
    ax.set_xlim(0, 1.15)
    ax.set_xlabel("right actions (held-out test split)")
    fig.tight_layout()
    fig.savefig(out / "per_tool.png", dpi=110)
    names.append("per_tool.png")
    plt.close(fig)
    return names


def write_report(run: Path, data: Path, split: str, limit: int, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    rows = read(data)
    result = heldout(rows, split, limit)
    (out / "heldout.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line]
    run_summary = json.loads((run / "summary.json").read_text())
    _plots(log, result["summary"]["by_tool"], out)
    splits = Counter(r["split"] for r in rows)
    conversations = Counter((r["split"], r["scenario"]) for r in rows)
    tools = Counter((r["tool"], r["split"]) for r in rows)
    s = result["summary"]
    lines = [
        "# Training report: the returns desk's student",
        "",
        "Written by `shopbot distil report`.",
        "",
        "## Data",
        "",
        "| split | conversations | steps |",
        "|---|---|---|",
        *(
            f"| {name} | {sum(1 for k in conversations if k[0] == name)} | {splits[name]} |"
            for name in ("train", "dev", "test")
        ),
        "",
        "| teacher's tool | train | dev | test |",
        "|---|---|---|---|",
        *(
            f"| {tool} | {tools[(tool, 'train')]} | {tools[(tool, 'dev')]} | {tools[(tool, 'test')]} |"
            for tool in sorted({t for t, _ in tools})
        ),
        "",
        "## Training",
        "",
        "| setting | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in run_summary["config"].items() if k not in ("data", "out")),
        f"| trainable parameters | {run_summary['trainable_parameters']:,} |",
        f"| batches | {run_summary['steps']} of {run_summary['planned_steps']} planned |",
        f"| tokens seen | {run_summary['tokens']:,} |",
        f"| wall time | {run_summary['seconds'] / 60:.1f} min |",
        "",
        "![loss](loss.png)",
        "",
        f"## Held-out right actions ({split} split, {s['steps']} steps, teacher-forced)",
        "",
        f"Scored on a sample of the {result['unseen']} {split} steps (of {result['held_out']}) "
        "none of whose customer lines of four words or more occurs in training.",
        "",
        f"Right: {s['right']}/{s['steps']} ({s['right'] / max(1, s['steps']):.1%}); parse failures: "
        f"{s['parse_failures']}; step median {s['step_ms_median']} ms.",
        "",
        "![per tool](per_tool.png)",
        "",
        "| tool | right |",
        "|---|---|",
        *(f"| {t} | {c['right']}/{c['n']} |" for t, c in s["by_tool"].items()),
        "",
    ]
    path = out / "README.md"
    path.write_text("\n".join(lines))
    return path


__all__ = ["heldout", "write_report"]
