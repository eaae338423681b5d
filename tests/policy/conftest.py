"""Fixtures for the policy index: a guard against chromadb's default embedding function,
small throwaway corpora, the full demo index (built once), and a real Chroma server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from chromadb.api.types import DefaultEmbeddingFunction
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2

from shopbot.policy import PolicyIndex
from tests.plugin import policy_index_dir

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "fixtures" / "policies"
QA = ROOT / "fixtures" / "policy_qa.yaml"

SMALL_CORPUS = {
    "returns.md": """# Returns

How returns work.

## Return window

You have 30 days from delivery to return an item.

## Refunds

Refunds reach your card within 7 business days.

### Gift cards

Gift card refunds take 1 business day.
""",
    "shipping.md": """# Shipping

## Rates

Standard delivery is free from $50.

## Tracking

Every parcel has a tracking link.
""",
    "warranty.md": """# Warranty

## Cover

Faults are covered for 12 months.
""",
}


@pytest.fixture(autouse=True)
def no_default_embedding_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """chromadb's default embedding function downloads a model: any call fails the test."""

    # chromadb checks an embedding function's signature, so the stand-in keeps it.
    def refuse(self: object, input: object) -> None:
        raise AssertionError("chromadb's default embedding function ran")

    def refuse_download(self: object) -> None:
        raise AssertionError("chromadb's default embedding function tried to download its model")

    monkeypatch.setattr(DefaultEmbeddingFunction, "__call__", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "__call__", refuse)
    monkeypatch.setattr(ONNXMiniLM_L6_V2, "_download_model_if_not_exists", refuse_download)


@pytest.fixture
def policies_dir() -> Path:
    """The demo shop's policy documents."""
    return POLICIES


@pytest.fixture
def qa_path() -> Path:
    """The retrieval evaluation's questions."""
    return QA


@pytest.fixture
def small_corpus(tmp_path: Path) -> Path:
    """Three short policy documents in a folder of their own."""
    folder = tmp_path / "policies"
    folder.mkdir()
    for name, text in SMALL_CORPUS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def demo_index_dir(request: pytest.FixtureRequest) -> Path:
    """A data directory holding the full demo policy index, built once per session."""
    return policy_index_dir(request.config)


@pytest.fixture
def demo_index(demo_index_dir: Path) -> PolicyIndex:
    return PolicyIndex.open(demo_index_dir)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server (`chroma run`) on a free loopback port; yields its URL."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if chroma is None:
        raise RuntimeError("the `chroma` command (installed with chromadb) is not on PATH")
    port = _free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = (path / "server.log").open("wb")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    server = subprocess.Popen(
        [chroma, "run", "--path", str(path / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(
                    f"chroma run exited with {server.returncode}; see {path}/server.log"
                )
            try:
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chroma run did not answer /api/v2/heartbeat within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
