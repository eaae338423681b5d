"""The returns desk's intents (`shopbot/models/rails.py`): how often they answer, and at what cost.

The measuring set is every turn-opening customer message of the generated conversations
(`fixtures/distil/steps.jsonl.gz`), labelled by what the teacher did with it: an escalation
for a person, one of the oracle's stock replies, or anything else (the model's). For each
`floor` and `margin` it counts the stock openings matched to their intent (hits), the other
openings matched to an intent (false answers, the costly kind) and the stock openings left to
the model (misses), then times `IntentRouter.match`.

    python benchmarks/intents.py [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine
from shopbot.eval.oracle import STOCK_REPLIES
from shopbot.models.rails import FACTS, FLOOR, MARGIN, RETURNS_INTENTS, IntentRouter
from shopbot.policy.embeddings import MiniLMEmbedding

STEPS = Path(__file__).resolve().parents[1] / "fixtures" / "distil" / "steps.jsonl.gz"
SETTINGS = [(0.25, 0.1), (FLOOR, MARGIN), (0.4, 0.1), (0.3, 0.05), (0.3, 0.15), (0.5, 0.1)]


def openings() -> dict[str, str]:
    """Each distinct turn-opening customer message and what the teacher did with it."""
    stock = {text: name for name, text in STOCK_REPLIES.items()}
    found: dict[str, str] = {}
    with gzip.open(STEPS, "rt", encoding="utf-8") as f:
        for line in f:
            step = json.loads(line)
            conversation = step["prompt"].split("\n\n")[0].splitlines()
            if "\nThis turn:" in step["prompt"] or not conversation[-1].startswith("Customer: "):
                continue
            action = json.loads(step["target"])["action"]
            if action["tool"] == "escalate" and "person" in action["args"].get("reason", ""):
                label = "human"
            elif action["tool"] == "reply":
                label = stock.get(action["args"]["message"], "model")
            else:
                label = "model"
            found[conversation[-1].removeprefix("Customer: ")] = label
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description="The returns desk's intents: answered, false, missed."
    )
    parser.add_argument("--json", action="store_true", help="Print the result as JSON.")
    options = parser.parse_args()
    router = IntentRouter.load(RETURNS_INTENTS, MiniLMEmbedding().embed_batch)
    answered = {i.name for i in router.intents}
    labelled = openings()
    rows: list[dict[str, object]] = []
    for floor, margin in SETTINGS:
        router.floor, router.margin = floor, margin
        hits = false = misses = 0
        for text, label in labelled.items():
            found = router.match(text)
            got = found.intent.name if found else None
            hits += got is not None and got == label
            false += got is not None and got != label
            misses += got is None and label in answered
        rows.append(
            {"floor": floor, "margin": margin, "hits": hits, "false": false, "misses": misses}
        )
    router.floor, router.margin = FLOOR, MARGIN
    texts = [t for t in labelled if not FACTS.search(t)][:300]  # the rest are not embedded
    times: list[float] = []
    for text in texts:
        t0 = time.perf_counter()
        router.match(text)
        times.append((time.perf_counter() - t0) * 1000)
    counts = Counter(labelled.values())
    result = {
        "machine": machine(),
        "openings": len(labelled),
        "answerable": sum(n for label, n in counts.items() if label in answered),
        "labels": dict(counts),
        "settings": rows,
        "match_median_ms": round(statistics.median(times), 2),
    }
    if options.json:
        print(json.dumps(result, indent=2))
        return
    print(result["machine"])
    print(f"{result['openings']} openings, {result['answerable']} of them an intent's")
    print("floor margin  hits  false answers  misses")
    for row in rows:
        print(
            f"{row['floor']:5} {row['margin']:6} {row['hits']:5} {row['false']:14} {row['misses']:7}"
        )
    print(f"IntentRouter.match median {result['match_median_ms']} ms over {len(texts)} messages")


if __name__ == "__main__":
    main()
