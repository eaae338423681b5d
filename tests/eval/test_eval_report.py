"""The HTML report holds its plots inline; the JSON result holds every trial."""

from __future__ import annotations

import json
from pathlib import Path

from shopbot.eval.metrics import summarize
from shopbot.eval.report import bar_chart, histogram, write_report
from shopbot.eval.runner import TrialResult


def results() -> list[TrialResult]:
    return [
        TrialResult(
            task_id=f"t{i}",
            title=f"Task <{i}>",
            category="return" if i % 2 else "policy",
            trial=1,
            passed=i != 3,
            failures=[] if i != 3 else ["returns [] expected [('1', [1])]"],
            turn_ms=[10.0 * i, 12.0 * i],
            transcript=[("customer", "hi <b>"), ("agent", "hello")],
        )
        for i in range(1, 6)
    ]


def test_report_has_the_plots_and_escapes_text(tmp_path: Path) -> None:
    trials = results()
    summary = summarize(trials, model="oracle", simulator="rule", k=1, seconds=0.5)
    write_report(summary, trials, html=tmp_path / "r.html", json_path=tmp_path / "r.json")
    html = (tmp_path / "r.html").read_text()
    assert html.count("<svg") == 2
    assert 'aria-label="Success (pass^1) by category"' in html
    assert 'aria-label="Agent turn latency"' in html
    assert "Task &lt;3&gt;" in html and "hi &lt;b&gt;" in html
    assert "http" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["summary"]["pass_hat"] == {"1": 0.8}
    assert len(data["trials"]) == 5


def test_plots_draw_one_bar_per_category_and_survive_no_data() -> None:
    svg = bar_chart({"a": 1.0, "b": 0.5}, title="t")
    assert svg.count("<rect") == 2
    assert "<rect" not in histogram([], title="empty", unit="ms")
    assert histogram([5.0, 5.0], title="flat", unit="ms").count("<rect") == 20
