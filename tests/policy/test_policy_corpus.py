from __future__ import annotations

import re
from pathlib import Path

import pytest

from shopbot.policy import PolicyChunk, load_chunks, load_documents
from shopbot.policy.corpus import PolicyDocument, chunk_document, clean_markdown, slugify
from shopbot.policy.embeddings import MAX_TOKENS, MiniLMEmbedding


def by_anchor(chunks: list[PolicyChunk]) -> dict[str, PolicyChunk]:
    return {chunk.anchor: chunk for chunk in chunks}


def test_chunks_follow_headings_and_keep_the_heading_path(small_corpus: Path) -> None:
    chunks = by_anchor(load_chunks(small_corpus))

    assert sorted(chunks) == [
        "returns",
        "returns#gift-cards",
        "returns#refunds",
        "returns#return-window",
        "shipping#rates",
        "shipping#tracking",
        "warranty#cover",
    ]
    gift = chunks["returns#gift-cards"]
    assert (gift.document, gift.title, gift.section) == (
        "returns",
        "Returns",
        "Refunds > Gift cards",
    )
    assert gift.text == "Gift card refunds take 1 business day."
    assert (
        gift.embedded_text
        == "Returns > Refunds > Gift cards\n\nGift card refunds take 1 business day."
    )
    assert chunks["returns"].section == ""
    assert chunks["returns"].text == "How returns work."


def test_policy_tags_links_and_emphasis_are_not_indexed() -> None:
    markdown = (
        "You have **30 days**<!-- policy:return_window_days -->; see [Final sale](final-sale.md)."
    )

    assert clean_markdown(markdown) == "You have 30 days; see Final sale."


def test_repeated_headings_get_distinct_anchors() -> None:
    markdown = "# Ship\n\n## Home\n\n### Fees\n\nOne.\n\n## Abroad\n\n### Fees\n\nTwo.\n"

    chunks = chunk_document(PolicyDocument("ship", "Ship", markdown))

    assert [(c.section, c.anchor) for c in chunks] == [
        ("Home > Fees", "ship#fees"),
        ("Abroad > Fees", "ship#fees-1"),
    ]


def test_long_sections_are_split_with_parts() -> None:
    body = "\n\n".join(f"Paragraph {i} " + "word " * 60 for i in range(8))
    doc = PolicyDocument("long", "Long", f"# Long\n\n## Body\n\n{body}\n")

    chunks = chunk_document(doc, max_chars=600, overlap=50)

    assert len(chunks) > 1
    assert [c.part for c in chunks] == list(range(len(chunks)))
    assert {c.anchor for c in chunks} == {"long#body"}
    assert len({c.id for c in chunks}) == len(chunks)


def test_ids_are_stable_content_hashes(small_corpus: Path) -> None:
    first = load_chunks(small_corpus)
    again = load_chunks(small_corpus)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)

    path = small_corpus / "returns.md"
    path.write_text(path.read_text().replace("7 business days", "5 business days"))
    edited = by_anchor(load_chunks(small_corpus))
    before = by_anchor(first)

    changed = {anchor for anchor in before if before[anchor].id != edited[anchor].id}
    assert changed == {"returns#refunds"}
    assert edited["returns#refunds"].key == before["returns#refunds"].key


def test_windows_split_long_sections_only() -> None:
    short = PolicyChunk("d", "Doc", "S", "d#s", 0, "One line.")
    lines = [f"Line {i} " + "x" * 150 for i in range(5)]
    long = PolicyChunk("d", "Doc", "S", "d#s", 0, "\n".join(lines))

    assert short.windows() == []
    windows = long.windows(max_chars=350)
    assert len(windows) == 3
    assert all(w.startswith("Doc > S\n\n") for w in windows)


def test_every_demo_chunk_fits_the_model(policies_dir: Path) -> None:
    embedding = MiniLMEmbedding()
    chunks = load_chunks(policies_dir)
    longest = max(embedding.count_tokens(c.embedded_text) for c in chunks)

    assert longest <= MAX_TOKENS


def test_the_demo_corpus_is_big_enough(policies_dir: Path) -> None:
    documents = load_documents(policies_dir)
    word = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")  # no table pipes, bullets or '#'
    words = sum(len(word.findall(clean_markdown(d.markdown))) for d in documents)

    assert len(documents) >= 15
    assert words >= 15_000


def test_slugify() -> None:
    assert slugify("Tracking says delivered but I don't have it") == (
        "tracking-says-delivered-but-i-dont-have-it"
    )
    assert slugify("Damaged, faulty or wrong final sale items") == (
        "damaged-faulty-or-wrong-final-sale-items"
    )


def test_a_document_without_a_title_is_refused(tmp_path: Path) -> None:
    (tmp_path / "untitled.md").write_text("## Section\n\nText.\n")

    with pytest.raises(ValueError, match="needs a '# Title'"):
        load_documents(tmp_path)
