from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from shopbot.policy import IndexSummary, MiniLMEmbedding, PolicyIndex


@pytest.fixture
def embedded_texts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the index embeds during the test (documents and queries)."""
    seen: list[str] = []
    original = MiniLMEmbedding.embed_batch

    def spy(self: MiniLMEmbedding, texts: list[str]) -> npt.NDArray[np.float32]:
        seen.extend(texts)
        return original(self, texts)

    monkeypatch.setattr(MiniLMEmbedding, "embed_batch", spy)
    return seen


def counts(summary: IndexSummary) -> tuple[int, int, int, int]:
    return summary.added, summary.updated, summary.removed, summary.unchanged


def test_first_sync_adds_every_chunk(tmp_path: Path, small_corpus: Path) -> None:
    progress: list[tuple[int, int]] = []
    index = PolicyIndex.open(tmp_path)

    summary = index.sync(small_corpus, progress=lambda done, total: progress.append((done, total)))

    assert counts(summary) == (7, 0, 0, 0)
    assert len(index) == 7
    assert summary.seconds > 0
    assert progress[-1][0] == progress[-1][1] > 0


def test_resync_of_unchanged_documents_embeds_nothing(
    tmp_path: Path, small_corpus: Path, embedded_texts: list[str]
) -> None:
    PolicyIndex.open(tmp_path).sync(small_corpus)
    embedded_texts.clear()

    summary = PolicyIndex.open(tmp_path).sync(small_corpus)

    assert counts(summary) == (0, 0, 0, 7)
    assert embedded_texts == []


def test_editing_one_section_re_embeds_only_that_section(
    tmp_path: Path, small_corpus: Path, embedded_texts: list[str]
) -> None:
    index = PolicyIndex.open(tmp_path)
    index.sync(small_corpus)
    records = index.collection.count()
    path = small_corpus / "returns.md"
    path.write_text(path.read_text().replace("7 business days", "5 business days"))
    embedded_texts.clear()

    summary = index.sync(small_corpus)

    assert counts(summary) == (0, 1, 0, 6)
    assert embedded_texts
    assert all(text.startswith("Returns > Refunds") for text in embedded_texts)
    assert index.collection.count() == records
    hit = index.search("how long until my card refund", k=1)[0]
    assert (hit.anchor, hit.text) == (
        "returns#refunds",
        "Refunds reach your card within 5 business days.",
    )


def test_new_sections_are_added_and_deleted_documents_removed(
    tmp_path: Path, small_corpus: Path, embedded_texts: list[str]
) -> None:
    index = PolicyIndex.open(tmp_path)
    index.sync(small_corpus)
    (small_corpus / "warranty.md").unlink()
    path = small_corpus / "shipping.md"
    path.write_text(path.read_text() + "\n## Pickup points\n\nCollect parcels at any locker.\n")
    embedded_texts.clear()

    summary = index.sync(small_corpus)

    assert counts(summary) == (1, 0, 1, 6)
    assert all(text.startswith("Shipping > Pickup points") for text in embedded_texts)
    stored = index.collection.get(include=["metadatas"])["metadatas"] or []
    assert all(meta.get("document") != "warranty" for meta in stored)
    assert {hit.document for hit in index.search("faults covered", k=5)} <= {"returns", "shipping"}


def test_search_returns_citable_hits(tmp_path: Path, small_corpus: Path) -> None:
    index = PolicyIndex.open(tmp_path)
    index.sync(small_corpus)

    hits = index.search("refund to a gift card, how long?", k=3)

    assert len(hits) == 3
    assert hits[0].anchor == "returns#gift-cards"
    assert hits[0].document == "returns"
    assert hits[0].section == "Refunds > Gift cards"
    assert hits[0].citation == "Returns > Refunds > Gift cards"
    assert hits[0].text == "Gift card refunds take 1 business day."
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "citation" in hits[0].model_dump()


def test_dense_mode_and_empty_queries(tmp_path: Path, small_corpus: Path) -> None:
    index = PolicyIndex.open(tmp_path)
    assert index.search("anything") == []
    index.sync(small_corpus)

    assert index.search("   ") == []
    dense = index.search("is delivery free", k=2, mode="dense")
    assert dense[0].anchor == "shipping#rates"
    assert 0 < dense[0].score <= 1


def test_an_index_open_elsewhere_sees_later_syncs(tmp_path: Path, small_corpus: Path) -> None:
    reader = PolicyIndex.open(tmp_path)  # e.g. `shopbot serve`, started before `shopbot index`
    writer = PolicyIndex.open(tmp_path)

    writer.sync(small_corpus)
    assert "$50" in reader.search("is delivery free", k=1)[0].text

    path = small_corpus / "shipping.md"
    path.write_text(path.read_text().replace("free from $50", "free from $60"))
    writer.sync(small_corpus)
    assert "$60" in reader.search("is delivery free", k=1)[0].text
