"""Carrier benchmark: LabelClient round trips in process and over loopback, PDF rendering.

    .venv/bin/python benchmarks/carrier.py [--n 200]

Reports median and p95 milliseconds per operation, measured in one run so the in-process
and loopback numbers compare on the same machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from tools.carrier import SANDBOX_API_KEY, LabelClient, create_sandbox_app
from tools.carrier.client import idempotency_key_for_return
from tools.carrier.pdf import render_label_pdf
from tools.carrier.testing import example_label_request, serve_in_thread
from tools.carrier.transport import carrier_http_client


def summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * len(ms)))]
    return f"{name:<34} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   n={len(ms)}"


async def timed(n: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    samples: list[float] = []
    for i in range(1, n + 1):
        started = time.perf_counter()
        await call(i)
        samples.append(time.perf_counter() - started)
    return samples


async def round_trips(client: LabelClient, n: int, where: str) -> list[str]:
    request = example_label_request()
    ids: list[str] = []
    run = uuid.uuid4().hex  # as a return's uid: this run's keys are its own

    async def create(i: int) -> None:
        key = idempotency_key_for_return(i, run, namespace=f"bench-{where.replace(' ', '-')}")
        ids.append((await client.create_label(request, idempotency_key=key)).id)

    async def replay(i: int) -> None:
        key = idempotency_key_for_return(i, run, namespace=f"bench-{where.replace(' ', '-')}")
        await client.create_label(request, idempotency_key=key)

    creates = await timed(n, create)
    replays = await timed(n, replay)
    gets = await timed(n, lambda i: client.get_label(ids[i - 1]))
    pdfs = await timed(n, lambda i: client.label_pdf(ids[i - 1]))
    return [
        summary(f"create_label ({where})", creates),
        summary(f"create_label replay ({where})", replays),
        summary(f"get_label ({where})", gets),
        summary(f"label_pdf ({where})", pdfs),
    ]


async def main(n: int) -> None:
    label = None
    async with carrier_http_client(None) as http:
        client = LabelClient(http, api_key=SANDBOX_API_KEY)
        lines = await round_trips(client, n, "in process")
        label = await client.get_label(
            (await client.create_label(example_label_request(), idempotency_key="bench-pdf-1")).id
        )
    with serve_in_thread(create_sandbox_app()) as url:
        async with carrier_http_client(url) as http:
            lines += await round_trips(LabelClient(http, api_key=SANDBOX_API_KEY), n, "loopback")
    renders: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        render_label_pdf(label)
        renders.append(time.perf_counter() - started)
    lines.append(summary("render_label_pdf", renders))
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Carrier benchmark.")
    parser.add_argument("--n", type=int, default=200, help="operations per measurement")
    asyncio.run(main(parser.parse_args().n))
