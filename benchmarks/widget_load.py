"""The widget backend under concurrent conversations, over real HTTP on loopback.

N simulated widget clients each hold one conversation open at a time: start it, open its
event stream, send a few messages, each about `--think` seconds after the previous reply (as
a customer reads and types), then start the next conversation, until `--seconds` have passed.
So N conversations are open at every moment, and new ones start as old ones end, as on a
shop's site. A scripted model answers (verify_identity, lookup_order, reply; then
lookup_order, reply; then replies). A turn's latency runs from sending the message to seeing
the turn's `turn_ended` event on the stream; the turns counted are those sent after a
warm-up (`--warmup` seconds) and before the end. The offered load is N / (think + latency)
turns a second: 200 conversations with a 0.8 s mean think offer at most 250 turns/s.

The server is `uvicorn --workers W` in its own processes; the clients (bare HTTP/1.1 on
asyncio streams, ~1 ms of CPU a turn) share the same cores. `--think 0` sends back to back:
throughput at saturation, where latency is mostly queueing. Each server process logs its
garbage collections (`log_gc_pauses`): the table gives their CPU a turn and how many
stopped a worker for over 20 ms.

    python benchmarks/widget_load.py [--clients 50,200] [--workers 1,2] [--turns 4]
                                     [--think 0.8] [--seconds 20] [--warmup 3]
                                     [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, percentile
from db.testing import PostgresTemplate, SqliteTemplate, Template, postgres_reachable
from shopbot.config import Settings
from shopbot.models.base import ModelRequest, ToolCall
from tools import Services

TURNS = [
    "Hi, where is my order 482913? My email is jane.doe@example.com",
    "Thanks! And order 482914?",
    "Great, that's all I needed.",
    "Have a nice day.",
]
TURN_TIMEOUT = 30.0
RUN_TIMEOUT = 300.0


class BenchModel:
    """Decides each step from the request alone, so any worker can serve any turn."""

    name = "bench-script"

    async def complete(self, request: ModelRequest) -> ToolCall:
        prompt = str(request.messages[-1].content)
        done = prompt.split("This turn so far:", 1)[1] if "This turn so far:" in prompt else ""
        said = [line for line in prompt.splitlines() if line.startswith("Customer: ")]
        latest = said[-1] if said else ""
        orders, emails = request.hints.get("order_id", []), request.hints.get("email", [])
        if "State: customer NOT verified" in prompt and orders and emails and not done:
            return ToolCall("verify_identity", {"order_id": orders[-1], "email": emails[-1]})
        if orders and orders[-1] in latest and '"lookup_order"' not in done:
            return ToolCall("lookup_order", {"order_id": orders[-1]})
        return ToolCall("reply", {"message": "Glad to help!"})


def bench_app() -> FastAPI:
    """The uvicorn factory: settings from the environment, the scripted model, no services."""
    from shopbot.web import create_app

    log_gc_pauses()
    return create_app(Settings(), model=BenchModel(), services=Services(), tune_gc=True)


GC_LOG = "BENCH_GC_LOG"
"""The folder where each server process writes how long its garbage collections took."""
LONG_PAUSE_MS = 20.0


def log_gc_pauses() -> None:
    """In a server process: write each garbage collection as a line (its generation, its
    length by the clock and its CPU time, in ms) of a file of its own that the driver reads
    (`gc_pauses`). A collection stops the worker: a long one delays every turn in flight."""
    folder = os.environ.get(GC_LOG)
    if not folder:
        return
    out = (Path(folder) / str(os.getpid())).open("a", buffering=1)
    started = (0.0, 0.0)

    def timed(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if phase == "start":
            started = (time.perf_counter(), time.thread_time())
        else:
            clock = (time.perf_counter() - started[0]) * 1000
            cpu = (time.thread_time() - started[1]) * 1000
            out.write(f"{info['generation']} {clock:.3f} {cpu:.3f}\n")

    gc.callbacks.append(timed)


def gc_pauses(folder: Path) -> dict[str, float]:
    """The server's collections so far: their CPU seconds in all, and how many stopped a
    worker for longer than `LONG_PAUSE_MS` by the clock (on busy cores a short collection
    can last that long)."""
    # Only whole lines: a worker may be writing the last one.
    lines = [line.split() for log in folder.iterdir() for line in log.read_text().split("\n")[:-1]]
    return {
        "gc": sum(float(cpu) for _generation, _clock, cpu in lines) / 1000,
        "long pauses": sum(float(clock) > LONG_PAUSE_MS for _generation, clock, _cpu in lines),
    }


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list[float])
    errors: dict[str, int] = field(default_factory=dict[str, int])
    conversations: int = 0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    @property
    def turns(self) -> int:
        return len(self.latencies)


@dataclass(frozen=True)
class Window:
    """The measured part of a run: turns sent from `start` (after the warm-up) to `end`."""

    start: float
    end: float

    def counts(self, at: float) -> bool:
        return self.start <= at < self.end


class Http:
    """A bare HTTP/1.1 keep-alive connection: the load generator shares the server's two
    cores, so it spends as little CPU per request as it can (httpx costs ~8 ms a turn)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Http:
        return cls(*await asyncio.open_connection(host, port))

    def close(self) -> None:
        self.writer.close()

    async def send(self, method: str, path: str, body: object, token: str | None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)
        await self.writer.drain()

    async def head(self) -> tuple[int, dict[str, str]]:
        line = await self.reader.readline()
        if not line:
            raise ConnectionResetError("the server closed the connection")
        status = int(line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def request(
        self, method: str, path: str, body: object = None, token: str | None = None
    ) -> tuple[int, Any]:
        await self.send(method, path, body, token)
        status, headers = await self.head()
        data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, json.loads(data) if data else None

    async def events(self, path: str, token: str) -> AsyncIterator[dict[str, Any]]:
        """The SSE body (chunked), event by event."""
        await self.send("GET", path, None, token)
        status, _ = await self.head()
        if status != 200:
            raise RuntimeError(f"stream {status}")
        buffer = b""
        while size := int((await self.reader.readline()).strip(), 16):
            buffer += await self.reader.readexactly(size)
            await self.reader.readexactly(2)
            *blocks, buffer = buffer.split(b"\r\n\r\n")
            for block in blocks:
                for line in block.split(b"\r\n"):
                    if line.startswith(b"data:"):
                        yield json.loads(line[5:])


@dataclass(frozen=True)
class Run:
    """What every simulated customer of a run shares."""

    host: str
    port: int
    turns: int
    think: float
    window: Window
    results: Results
    rng: random.Random


async def conversation(run: Run) -> bool:
    """One widget: a conversation, its stream, and `run.turns` messages, each sent
    `run.think` seconds (on average) after the previous reply. False when it failed."""
    host, port, results, window = run.host, run.port, run.results, run.window
    api = await Http.open(host, port)
    stream = await Http.open(host, port)
    listener: asyncio.Task[None] | None = None
    try:
        status, created = await api.request("POST", "/v1/conversations", {})
        if status != 201:
            results.error(f"create {status}")
            return False
        cid, token = created["conversation_id"], created["token"]
        ended: dict[int, asyncio.Future[float]] = {}

        def waiter(turn: int) -> asyncio.Future[float]:
            return ended.setdefault(turn, asyncio.get_running_loop().create_future())

        async def listen() -> None:
            async for event in stream.events(f"/v1/conversations/{cid}/events", token):
                if event["kind"] == "turn_ended" and not waiter(event["turn"]).done():
                    waiter(event["turn"]).set_result(time.perf_counter())

        listener = asyncio.create_task(listen())
        for text in TURNS[: run.turns]:
            await asyncio.sleep(run.think * run.rng.uniform(0.5, 1.5))
            started = time.perf_counter()
            if started >= window.end:
                return True
            status, sent = await api.request(
                "POST", f"/v1/conversations/{cid}/messages", {"text": text}, token
            )
            if status != 202:
                results.error(f"message {status}")
                return False
            try:
                done_at = await asyncio.wait_for(waiter(sent["turn"]), TURN_TIMEOUT)
            except TimeoutError:
                results.error("turn timeout")
                return False
            if window.counts(started):
                results.latencies.append((done_at - started) * 1000)
        results.conversations += 1
        return True
    except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
        results.error(type(exc).__name__)
        return False
    finally:
        if listener is not None:
            listener.cancel()
            with suppress(asyncio.CancelledError, OSError, asyncio.IncompleteReadError):
                await listener
        api.close()
        stream.close()


async def customer(run: Run) -> None:
    """One seat on the site: a conversation after another until the window ends."""
    # Spread the first conversations' starts over one think time, as a site's would be.
    await asyncio.sleep(run.think * run.rng.random())
    while time.perf_counter() < run.window.end:
        if not await conversation(run):
            await asyncio.sleep(0.5)  # an error: do not hammer


async def load(
    url: str,
    clients: int,
    turns: int,
    think: float,
    seconds: float,
    warmup: float,
    sample: Callable[[], dict[str, float]],
    seed: int = 7,
) -> tuple[Results, dict[str, float]]:
    """The results, and the CPU seconds `sample` saw spent during the measured window."""
    host, port = url.removeprefix("http://").split(":")
    results = Results()
    rng = random.Random(seed)
    now = time.perf_counter()
    window = Window(now + warmup, now + warmup + seconds)

    async def measure_cpu() -> dict[str, float]:
        await asyncio.sleep(window.start - time.perf_counter())
        before = sample()
        await asyncio.sleep(window.end - time.perf_counter())
        after = sample()
        return {k: after[k] - before[k] for k in after}

    cpu = asyncio.create_task(measure_cpu())
    run = Run(host, int(port), turns, think, window, results, rng)
    await asyncio.wait_for(
        asyncio.gather(*(customer(run) for _ in range(clients))),
        warmup + seconds + RUN_TIMEOUT,
    )
    return results, await cpu


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    base: str
    pid: int
    """Its workers are this process's children."""
    gc_log: Path
    """Where its processes log their garbage collections (`log_gc_pauses`)."""

    def sample(self) -> dict[str, float]:
        """CPU seconds so far (`cpu_seconds`, and the clients': this process's), and the
        server's collections (`gc_pauses`)."""
        return {
            **cpu_seconds(self.pid),
            "clients": time.process_time(),
            **gc_pauses(self.gc_log),
        }


@contextmanager
def server(
    url: str, data_dir: Path, workers: int, factory: str = "benchmarks.widget_load:bench_app"
) -> Generator[Server]:
    """`shopbot serve`'s app, or the one `factory` names, under uvicorn until the block ends."""
    port = free_port()
    gc_log = Path(tempfile.mkdtemp(prefix="gc-", dir=data_dir))
    env = {
        **os.environ,
        "SHOPBOT_DATABASE_URL": url,
        "SHOPBOT_DATA_DIR": str(data_dir),
        "SHOPBOT_WEB__CONVERSATIONS_PER_IP_PER_MINUTE": "100000",
        "SHOPBOT_WEB__MESSAGES_PER_CONVERSATION_PER_MINUTE": "100000",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        GC_LOG: str(gc_log),
    }
    command = [
        sys.executable, "-m", "uvicorn", factory, "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "5",
        "--timeout-keep-alive", "120",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        give_up = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > give_up:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)
        time.sleep(0.5 * workers)  # every worker up, not just the first to answer
        yield Server(base, process.pid, gc_log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        # The command name may hold spaces: the fields follow its closing parenthesis.
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def cpu_seconds(root: int) -> dict[str, float]:
    """CPU time (user + system) so far of the server's process tree and of PostgreSQL's
    processes. Unlike throughput it is not inflated by a busy host stealing the cores."""
    stats = {int(d.name): _stat(int(d.name)) for d in Path("/proc").iterdir() if d.name.isdigit()}
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(pid)
    tree, todo = set[int](), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(children.get(pid, []))
    totals = {"server": 0.0, "postgres": 0.0}
    for pid, fields in stats.items():
        if fields is None:
            continue
        used = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        if pid in tree:
            totals["server"] += used
        elif Path(f"/proc/{pid}/comm").exists() and _comm(pid) == "postgres":
            totals["postgres"] += used
    return totals


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def report(
    backend: str,
    workers: int,
    clients: int,
    results: Results,
    seconds: float,
    cpu: dict[str, float],
) -> str:
    lat = results.latencies or [float("nan")]
    errors = sum(results.errors.values())
    detail = f" {results.errors}" if results.errors else ""
    per_turn = {k: 1000 * v / max(results.turns, 1) for k, v in cpu.items()}
    return (
        f"| {backend} | {workers} | {clients} | {results.turns} | {results.turns / seconds:.1f} "
        f"| {statistics.median(lat):.1f} | {percentile(lat, 0.99):.1f} "
        f"| {per_turn['server']:.1f} | {per_turn['postgres']:.1f} | {per_turn['clients']:.1f} "
        f"| {per_turn['gc']:.2f} | {cpu['long pauses']:.0f} | {errors}{detail} |"
    )


HEADER = (
    "| {what} | workers | conversations | turns | turns/s | p50 ms | p99 ms | CPU server "
    "| CPU postgres | CPU clients | GC CPU | GC pauses > 20 ms | errors |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
"""The table `report` writes rows of: CPU in ms a turn, the garbage collector's included in the
server's and shown apart; pauses counted in the window."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", default="50,200")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--turns", type=int, default=4, choices=range(1, len(TURNS) + 1))
    parser.add_argument(
        "--think", type=float, default=0.8, help="Mean seconds between a reply and the next."
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="The measured window.")
    parser.add_argument("--warmup", type=float, default=3.0, help="Seconds before it.")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    clients = [min(int(c), 500) for c in args.clients.split(",")]
    workers = [min(int(w), 8) for w in args.workers.split(",")]
    print(f"widget backend under load — {machine()}, load average {os.getloadavg()[0]:.1f}")
    print(
        f"{args.turns} turns per conversation, {args.think:.2f} s mean think time between them, "
        f"{args.seconds:.0f} s measured after {args.warmup:.0f} s of warm-up"
    )
    print("CPU ms/turn: user + system time of the server's processes, PostgreSQL's, the clients'")
    print(HEADER.format(what="backend"))
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            template: Template
            if backend == "sqlite":
                template = SqliteTemplate(Path(tmp) / "db")
            elif why := postgres_reachable():
                print(f"postgresql: skipped ({why})")
                continue
            else:
                template = PostgresTemplate()
            try:
                for n_workers in workers:
                    for n_clients in clients:
                        url = template.clone()
                        try:
                            with server(url, Path(tmp), n_workers) as running:
                                results, cpu = asyncio.run(
                                    load(
                                        running.base,
                                        n_clients,
                                        args.turns,
                                        args.think,
                                        args.seconds,
                                        args.warmup,
                                        running.sample,
                                    )
                                )
                        finally:
                            template.drop(url)
                        print(
                            report(backend, n_workers, n_clients, results, args.seconds, cpu),
                            flush=True,
                        )
            finally:
                template.close()


if __name__ == "__main__":
    main()
