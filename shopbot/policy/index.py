"""`PolicyIndex`: the policy documents in chromadb, kept in sync and searched with citations.

Storage is chromadb: a `PersistentClient` under `<data_dir>/chroma` by default, or a Chroma
server (`HttpClient`) when a URL is given (`SHOPBOT_CHROMA_URL`); `shopbot.policy.store`
describes the records. The vectors are computed here by `MiniLMEmbedding`, offline.

`sync` makes the collection match a documents folder, embedding only chunks whose content
hash is new and deleting the records of chunks that are gone. `search` is hybrid by
default: chromadb's nearest records of all kinds plus BM25 over the sections, fused per
section (`shopbot.policy.retrieval`); `mode="dense"` ranks by the section vectors alone,
the baseline the evaluation compares against. The BM25 twin and the chunks' citation data
are held in memory, rebuilt from the collection on open and after each sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, cast

from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from pydantic import BaseModel, ConfigDict, computed_field

from shopbot.policy.corpus import PolicyChunk, load_chunks
from shopbot.policy.embeddings import MiniLMEmbedding
from shopbot.policy.lexical import BM25
from shopbot.policy.retrieval import DENSE, HYBRID, Fusion, Kind, fuse
from shopbot.policy.store import COLLECTION, Record, connect, open_collection, parse_id, records_of

DENSE_CANDIDATES = 64
"""Nearest records (of all kinds) a query reads from chromadb before fusion."""
LEXICAL_CANDIDATES = 20
SearchMode = Literal["hybrid", "dense"]
Progress = Callable[[int, int], None]
"""Called as `progress(texts_embedded, texts_to_embed)` while a sync embeds."""


class PolicyHit(BaseModel):
    """One retrieved chunk and where it comes from: what a citation shows."""

    model_config = ConfigDict(frozen=True)

    document: str
    """The document's slug, e.g. `returns-and-refunds`."""
    title: str
    """The document's title, e.g. `Returns and refunds`."""
    section: str
    """Heading path below the title, e.g. `Refund timing`; empty for a document's intro."""
    anchor: str
    """Stable citation target, e.g. `returns-and-refunds#refund-timing`."""
    text: str
    score: float
    """Higher is better: the fused score (hybrid) or the cosine similarity (dense)."""

    @computed_field
    @property
    def citation(self) -> str:
        """How a reply names its source: `Returns and refunds > Refund timing`."""
        return f"{self.title} > {self.section}" if self.section else self.title


class IndexSummary(BaseModel):
    """What one `sync` did, counted in chunks (sections)."""

    added: int
    updated: int
    """Chunks whose place (anchor and part) was indexed before with other text."""
    removed: int
    unchanged: int
    seconds: float

    @property
    def embedded(self) -> int:
        return self.added + self.updated


class PolicyIndex:
    """The shop's policy chunks in a chromadb collection, with a BM25 twin in memory."""

    def __init__(self, collection: Collection, embedding: MiniLMEmbedding) -> None:
        self.collection = collection
        self.embedding = embedding
        self._chunks: dict[str, PolicyChunk] = {}
        self._with_windows: set[str] = set()
        self._record_count = 0
        self._lexical = BM25([])
        self._reload()

    @classmethod
    def open(
        cls,
        data_dir: Path,
        chroma_url: str | None = None,
        *,
        collection: str = COLLECTION,
        client: ClientAPI | None = None,
    ) -> PolicyIndex:
        """Open (creating if needed) the policy collection; pass `client` to reuse one."""
        embedding = MiniLMEmbedding()
        store = open_collection(client or connect(data_dir, chroma_url), collection, embedding)
        return cls(store, embedding)

    def __len__(self) -> int:
        """Chunks (sections) in the index."""
        return len(self._chunks)

    def sync(self, documents_dir: Path, progress: Progress | None = None) -> IndexSummary:
        """Make the collection hold exactly the chunks of `documents_dir`, embedding only new text."""
        started = time.perf_counter()
        chunks = {chunk.id: chunk for chunk in load_chunks(documents_dir)}
        stored = self.collection.get(include=["metadatas"])
        owners = {
            record_id: meta
            for record_id, meta in zip(stored["ids"], stored["metadatas"] or [], strict=True)
        }
        stored_keys = {
            str(meta["section_id"]): str(meta["key"])
            for meta in owners.values()
            if meta["kind"] == "section"
        }
        new = [chunk for chunk_id, chunk in chunks.items() if chunk_id not in stored_keys]
        gone = {key for chunk_id, key in stored_keys.items() if chunk_id not in chunks}
        updated = sum(1 for chunk in new if chunk.key in gone)
        self._embed_and_store(new, progress)
        stale = [rid for rid, meta in owners.items() if str(meta["section_id"]) not in chunks]
        if stale:
            self.collection.delete(ids=stale)
        self._reload()
        return IndexSummary(
            added=len(new) - updated,
            updated=updated,
            removed=len(gone) - updated,
            unchanged=len(chunks) - len(new),
            seconds=time.perf_counter() - started,
        )

    def _embed_and_store(self, chunks: list[PolicyChunk], progress: Progress | None) -> None:
        extra: list[Record] = []
        sections: list[Record] = []
        for chunk in chunks:
            records, section = records_of(chunk)
            extra.extend(records)
            sections.append(section)
        # Sections go last: a sync cut short leaves no section without its passages. Similar
        # lengths batch together, since a batch is padded to its longest text.
        todo = sorted(extra, key=lambda r: len(r.text)) + sorted(
            sections, key=lambda r: len(r.text)
        )
        size = self.embedding.batch_size
        if progress:
            progress(0, len(todo))
        for start in range(0, len(todo), size):
            batch = todo[start : start + size]
            self.collection.upsert(
                ids=[r.id for r in batch],
                documents=[r.text for r in batch],
                metadatas=[r.metadata for r in batch],
                embeddings=list(self.embedding.embed_batch([r.text for r in batch])),
            )
            if progress:
                progress(start + len(batch), len(todo))

    def _reload(self) -> None:
        stored = self.collection.get(where={"kind": "section"}, include=["documents", "metadatas"])
        self._chunks = {}
        self._with_windows = set()
        for chunk_id, text, meta in zip(
            stored["ids"], stored["documents"] or [], stored["metadatas"] or [], strict=True
        ):
            self._chunks[chunk_id] = PolicyChunk.from_stored(dict(meta), text)
            if int(cast(int, meta["windows"])):
                self._with_windows.add(chunk_id)
        self._record_count = self.collection.count()
        self._lexical = BM25((chunk_id, c.embedded_text) for chunk_id, c in self._chunks.items())

    def search(self, query: str, k: int = 3, mode: SearchMode = "hybrid") -> list[PolicyHit]:
        """The `k` chunks that best answer `query`, best first."""
        return self.search_with(query, k, HYBRID if mode == "hybrid" else DENSE)

    def search_with(self, query: str, k: int, fusion: Fusion) -> list[PolicyHit]:
        """`search` with explicit fusion weights (the evaluation compares settings)."""
        if not self._chunks:
            self._reload()  # an index opened before the first sync picks it up
        if not self._chunks or not query.strip():
            return []
        lexical = self._lexical.search(query, LEXICAL_CANDIDATES) if fusion.lexical_weight else []
        ranked = fuse(self._dense(query, fusion), lexical, self._with_windows, fusion)
        if any(chunk_id not in self._chunks for chunk_id, _ in ranked[:k]):
            self._reload()  # another process synced since: read its chunks
        hits = [self._hit(cid, score) for cid, score in ranked if cid in self._chunks]
        return hits[:k]

    def _dense(self, query: str, fusion: Fusion) -> list[tuple[str, Kind, float]]:
        sections_only = fusion.kinds == ("section",)
        result = self.collection.query(
            query_embeddings=list(self.embedding.embed_batch([query])),
            n_results=min(
                DENSE_CANDIDATES, len(self._chunks) if sections_only else self._record_count
            ),
            where={"kind": "section"} if sections_only else None,
            include=["distances"],  # the ids say what a record is; metadata would cost ~1.5 ms
        )
        distances: list[Any] = (result["distances"] or [[]])[0]
        return [
            (*parse_id(record_id), 1.0 - float(distance))
            for record_id, distance in zip(result["ids"][0], distances, strict=True)
        ]

    def _hit(self, chunk_id: str, score: float) -> PolicyHit:
        chunk = self._chunks[chunk_id]
        return PolicyHit(
            document=chunk.document,
            title=chunk.title,
            section=chunk.section,
            anchor=chunk.anchor,
            text=chunk.text,
            score=round(score, 6),
        )
