"""The evaluation report: one self-contained HTML page (plots as inline SVG, no network
assets) and a JSON result (the summary and every trial)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

from shopbot.eval.metrics import Summary
from shopbot.eval.runner import TrialResult

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2430}
h1{font-size:1.5rem} h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0} td,th{padding:.25rem .6rem;text-align:left;
border-bottom:1px solid #e3e6ea;vertical-align:top} th{background:#f4f6f8}
.pass{color:#1a7f37} .fail{color:#c62828} .num{text-align:right;font-variant-numeric:tabular-nums}
.plots{display:flex;gap:2rem;flex-wrap:wrap} details{margin:.2rem 0}
.who{color:#667;width:5rem} small{color:#667}
"""


def bar_chart(values: dict[str, float], *, title: str, width: int = 520) -> str:
    """Horizontal bars for shares between 0 and 1."""
    bar_h, label_w, top = 22, 150, 28
    height = top + bar_h * len(values) + 24
    span = width - label_w - 60
    parts = [
        f'<svg class="plot" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (name, value) in enumerate(values.items()):
        y = top + i * bar_h
        w = max(0.0, min(1.0, value)) * span
        colour = "#2e7d32" if value >= 0.999 else "#f9a825" if value >= 0.5 else "#c62828"
        parts += [
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12">'
            f"{escape(name)}</text>",
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="{colour}"/>',
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="12">{value:.2f}</text>',
        ]
    axis_y = top + bar_h * len(values) + 4
    parts.append(
        f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + span}" y2="{axis_y}" stroke="#999"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def histogram(values: Sequence[float], *, title: str, unit: str, bins: int = 20) -> str:
    """A histogram of `values` (latencies)."""
    width, height, left, bottom, top = 520, 220, 40, 30, 28
    parts = [
        f'<svg class="plot" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
    ]
    if values:
        lo, hi = min(values), max(values)
        step = (hi - lo) / bins or 1.0
        counts = [0] * bins
        for v in values:
            counts[min(bins - 1, int((v - lo) / step))] += 1
        tallest = max(counts)
        plot_w, plot_h = width - left - 10, height - top - bottom
        bar_w = plot_w / bins
        for i, count in enumerate(counts):
            h = plot_h * count / tallest
            x = left + i * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" '
                f'height="{h:.1f}" fill="#1565c0"><title>{count}</title></rect>'
            )
        base = top + plot_h
        parts += [
            f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#999"/>',
            f'<text x="{left}" y="{base + 16}" font-size="11">{lo:.0f} {unit}</text>',
            f'<text x="{left + plot_w}" y="{base + 16}" font-size="11" text-anchor="end">'
            f"{hi:.0f} {unit}</text>",
            f'<text x="4" y="{top + 10}" font-size="11">{tallest}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def render_html(summary: Summary, results: Sequence[TrialResult]) -> str:
    k = summary.k
    rows = [
        ("model", summary.model),
        ("simulator", summary.simulator),
        ("tasks x trials", f"{summary.tasks} x {k} = {summary.trials}"),
        *((f"pass^{j}", f"{v:.3f}") for j, v in summary.pass_hat.items()),
        ("policy violations (must be 0)", str(summary.violations)),
        ("guard denials", str(summary.denials)),
        ("unparsable outputs", str(summary.parse_failures)),
        ("errors", str(summary.errors)),
        ("steps / conversation", f"{summary.avg_steps:.2f}"),
        ("model calls / conversation", f"{summary.avg_model_calls:.2f}"),
        ("customer turns / conversation", f"{summary.avg_turns:.2f}"),
        (
            "agent turn latency p50 / p95",
            f"{summary.turn_ms_p50:.0f} / {summary.turn_ms_p95:.0f} ms",
        ),
        ("time in the model", f"{summary.model_ms_share:.0%}"),
        ("wall time", f"{summary.seconds:.1f} s"),
    ]
    if summary.judge:
        rows += [(f"judge: {name}", f"{v:.2f} / 5") for name, v in summary.judge.items()]
    by_task: dict[str, list[TrialResult]] = defaultdict(list)
    for r in results:
        by_task[r.task_id].append(r)
    categories = {name: c.pass_1 for name, c in summary.by_category.items()}
    html = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>ShopBot evaluation: {escape(summary.model)}</title><style>{_CSS}</style>",
        "</head><body>",
        f"<h1>ShopBot evaluation — {escape(summary.model)}</h1>",
        "<table>",
        *(f"<tr><th>{escape(a)}</th><td class='num'>{escape(b)}</td></tr>" for a, b in rows),
        "</table>",
        "<h2>Plots</h2><div class='plots'>",
        bar_chart(categories, title="Success (pass^1) by category"),
        histogram([ms for r in results for ms in r.turn_ms], title="Agent turn latency", unit="ms"),
        "</div>",
        "<h2>By category</h2><table><tr><th>category</th><th>tasks</th>"
        f"<th>pass^1</th>{f'<th>pass^{k}</th>' if k > 1 else ''}</tr>",
        *(
            f"<tr><td>{escape(n)}</td><td class='num'>{c.tasks}</td>"
            f"<td class='num'>{c.pass_1:.3f}</td>"
            f"{f'<td class=num>{c.pass_k:.3f}</td>' if k > 1 else ''}</tr>"
            for n, c in summary.by_category.items()
        ),
        "</table>",
        "<h2>Scenarios</h2><table><tr><th>scenario</th><th>category</th><th>passed</th>"
        "<th>steps</th><th>why not</th></tr>",
    ]
    for task_id, trials in by_task.items():
        passed = sum(t.passed for t in trials)
        mark = "pass" if passed == len(trials) else "fail"
        why = next((t for t in trials if not t.passed), None)
        html.append(
            f"<tr><td><b>{escape(task_id)}</b><br><small>{escape(trials[0].title)}</small></td>"
            f"<td>{escape(trials[0].category)}</td>"
            f"<td class='{mark} num'>{passed}/{len(trials)}</td>"
            f"<td class='num'>{sum(t.steps for t in trials) / len(trials):.1f}</td>"
            f"<td>{_why(why)}</td></tr>"
        )
    html.append("</table><h2>Transcripts (first trial of each scenario)</h2>")
    for task_id, trials in by_task.items():
        lines = "".join(
            f"<tr><td class='who'>{escape(who)}</td><td>{escape(text)}</td></tr>"
            for who, text in trials[0].transcript
        )
        html.append(
            f"<details><summary>{escape(task_id)}</summary><table>{lines}</table></details>"
        )
    html.append("</body></html>")
    return "\n".join(html)


def _why(trial: TrialResult | None) -> str:
    if trial is None:
        return ""
    reasons = [*trial.violations, *trial.failures]
    return "<br>".join(escape(r.splitlines()[0] if r else r)[:240] for r in reasons[:4])


def result_json(summary: Summary, results: Sequence[TrialResult]) -> dict[str, Any]:
    return {
        "summary": summary.model_dump(mode="json"),
        "trials": [r.model_dump(mode="json") for r in results],
    }


def write_report(
    summary: Summary,
    results: Sequence[TrialResult],
    *,
    html: Path | None = None,
    json_path: Path | None = None,
) -> None:
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(summary, results))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result_json(summary, results), indent=2))


__all__ = ["bar_chart", "histogram", "render_html", "result_json", "write_report"]
