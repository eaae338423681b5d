"""How the policy chunks are laid out in chromadb, and how ShopBot connects to it.

One collection (`shop_policies`, cosine space) holds up to three kinds of records per
chunk, tied together by the chunk's content-hash id:

    <chunk id>        kind=section   the section under its heading path; carries the
                                     citation metadata (document, title, section, anchor)
    <chunk id>-w<n>   kind=window    a passage of a long section
    <chunk id>-h      kind=heading   the heading path alone

The record id says what a record is, so a query need not fetch metadata (~1.5 ms saved).
Every create and get passes `MiniLMEmbedding`, and a collection whose stored embedding
function is another one is refused: chromadb's default would download a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings

from shopbot.errors import ConfigError
from shopbot.policy.corpus import PolicyChunk
from shopbot.policy.embeddings import MiniLMEmbedding
from shopbot.policy.retrieval import Kind

COLLECTION = "shop_policies"


def connect(data_dir: Path, chroma_url: str | None = None) -> ClientAPI:
    """A chromadb client: the server at `chroma_url`, else a local store in `data_dir`."""
    settings = Settings(anonymized_telemetry=False)
    if not chroma_url:
        return chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=settings)
    url = urlsplit(chroma_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(f"SHOPBOT_CHROMA_URL must look like http://host:port, not {chroma_url!r}")
    ssl = url.scheme == "https"
    port = url.port or (443 if ssl else 8000)
    return chromadb.HttpClient(host=url.hostname, port=port, ssl=ssl, settings=settings)


def open_collection(client: ClientAPI, name: str, embedding: MiniLMEmbedding) -> Collection:
    """Get or create the policy collection, always with ShopBot's embedding function."""
    collection = client.get_or_create_collection(
        name,
        embedding_function=embedding,  # type: ignore[arg-type]  # chromadb's generic is invariant
        configuration={"hnsw": {"space": "cosine"}},
    )
    stored = (collection.configuration_json.get("embedding_function") or {}).get("name")
    if stored != MiniLMEmbedding.name():
        raise ConfigError(
            f"collection {name!r} was built with embedding function {stored!r}, not "
            f"{MiniLMEmbedding.name()!r}; delete it and run `shopbot index` again"
        )
    return collection


@dataclass(frozen=True)
class Record:
    """One row of the collection, before it is embedded."""

    id: str
    kind: Kind
    text: str
    metadata: dict[str, str | int]


def parse_id(record_id: str) -> tuple[str, Kind]:
    """The chunk id and kind of a record: `<chunk id>`, `<chunk id>-w<n>`, `<chunk id>-h`."""
    chunk_id, _, suffix = record_id.partition("-")
    return chunk_id, "section" if not suffix else "heading" if suffix == "h" else "window"


def records_of(chunk: PolicyChunk) -> tuple[list[Record], Record]:
    """A chunk's passage and heading records, and its section record (to be stored last)."""
    windows = chunk.windows()
    tie: dict[str, str | int] = {"section_id": chunk.id}
    extra = [
        Record(f"{chunk.id}-w{i}", "window", text, {**tie, "kind": "window"})
        for i, text in enumerate(windows)
    ]
    extra.append(Record(f"{chunk.id}-h", "heading", chunk.heading, {**tie, "kind": "heading"}))
    section = {**chunk.metadata(), **tie, "kind": "section", "windows": len(windows)}
    return extra, Record(chunk.id, "section", chunk.embedded_text, section)
