"""The policy documents as chunks: one chunk per heading section, split further when long.

A document is a Markdown file in the shop's voice: one `#` title, `##` sections and `###`
subsections. Each chunk keeps its heading path (the section, below the title) and a stable
anchor such as `returns-and-refunds#return-window`, which is what a citation points to.

Ids are content hashes: the hash of the chunk's place (anchor and part) and of the exact
text that gets embedded. The same corpus always yields the same ids, so a re-index embeds
only chunks whose text changed and deletes ids that no longer occur; the place in `key`
tells an edited section (updated) from a new one (added).

Markers the documents carry for the config agreement check (`<!-- policy:... -->`, see
`shopbot.policy.facts`) are HTML comments: invisible when the page is rendered and
removed here, so they are never embedded or shown to a customer.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

MAX_CHUNK_CHARS = 1000
"""Long sections are split to stay well inside the embedding model's 256 tokens."""
CHUNK_OVERLAP = 150
WINDOW_CHARS = 350
"""Size of the passages a chunk is also embedded as, so one buried sentence can match."""
_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


@dataclass(frozen=True)
class PolicyDocument:
    """One policy file: its slug (the file name without `.md`) and its Markdown."""

    slug: str
    title: str
    markdown: str


@dataclass(frozen=True)
class PolicyChunk:
    """A piece of one section of one document, ready to embed and cite."""

    document: str
    """The document's slug, e.g. `returns-and-refunds`."""
    title: str
    """The document's title (its `#` heading)."""
    section: str
    """Heading path below the title, e.g. `Return window` or `Tiers > Perks`; empty for the intro."""
    anchor: str
    """Stable citation target: `document#section-slug`, or the document slug for the intro."""
    part: int
    """0 unless the section was long enough to be split."""
    text: str
    """The section's text, cleaned of Markdown markup that means nothing to a reader."""

    @property
    def key(self) -> str:
        """The chunk's place in the corpus; unchanged when its text is edited."""
        return f"{self.anchor}/{self.part}"

    @property
    def heading(self) -> str:
        return f"{self.title} > {self.section}" if self.section else self.title

    @property
    def embedded_text(self) -> str:
        """What is embedded and stored: the heading path gives short sections their topic."""
        return f"{self.heading}\n\n{self.text}"

    @property
    def id(self) -> str:
        digest = hashlib.sha256(f"{self.key}\n{self.embedded_text}".encode())
        return digest.hexdigest()[:32]

    def windows(self, max_chars: int = WINDOW_CHARS) -> list[str]:
        """The chunk as consecutive passages of whole lines, each under its heading path.

        Empty when the chunk fits in one passage: its own vector already covers it.
        """
        passages: list[str] = []
        current = ""
        for line in (line.strip() for line in self.text.splitlines()):
            if current and line and len(current) + len(line) > max_chars:
                passages.append(current)
                current = line
            elif line:
                current = f"{current} {line}".strip()
        if current:
            passages.append(current)
        return [f"{self.heading}\n\n{p}" for p in passages] if len(passages) > 1 else []

    def metadata(self) -> dict[str, str | int]:
        return {
            "document": self.document,
            "title": self.title,
            "section": self.section,
            "anchor": self.anchor,
            "part": self.part,
            "key": self.key,
        }

    @classmethod
    def from_stored(cls, metadata: dict[str, Any], document: str) -> PolicyChunk:
        """Rebuild a chunk from what the index stored for it (`metadata()` and `embedded_text`)."""
        _, _, text = document.partition("\n\n")
        return cls(
            document=str(metadata["document"]),
            title=str(metadata["title"]),
            section=str(metadata["section"]),
            anchor=str(metadata["anchor"]),
            part=int(metadata["part"]),
            text=text,
        )


def slugify(heading: str) -> str:
    """GitHub-style heading slug: `Refund timing` -> `refund-timing`."""
    words = re.findall(r"[a-z0-9]+", heading.lower().replace("'", ""))
    return "-".join(words)


def clean_markdown(markdown: str) -> str:
    """Remove comments, link targets and emphasis markers; keep the words."""
    text = _COMMENT.sub("", markdown)
    text = _LINK.sub(r"\1", text)
    return _EMPHASIS.sub(r"\2", text)


def load_documents(directory: Path) -> list[PolicyDocument]:
    """Every `*.md` file under `directory`, by name; each must open with a `#` title."""
    documents: list[PolicyDocument] = []
    for path in sorted(directory.glob("*.md")):
        markdown = path.read_text(encoding="utf-8")
        title = re.search(r"^# (.+)$", markdown, re.MULTILINE)
        if title is None:
            raise ValueError(f"{path}: a policy document needs a '# Title' line")
        documents.append(PolicyDocument(path.stem, title.group(1).strip(), markdown))
    return documents


def chunk_document(
    document: PolicyDocument, max_chars: int = MAX_CHUNK_CHARS, overlap: int = CHUNK_OVERLAP
) -> list[PolicyChunk]:
    """Split by heading, then split sections longer than `max_chars` with some overlap."""
    sections = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=True).split_text(
        clean_markdown(document.markdown)
    )
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=max_chars, chunk_overlap=overlap, separators=["\n\n", "\n", ". ", " "]
    )
    used_anchors: Counter[str] = Counter()
    chunks: list[PolicyChunk] = []
    for section in sections:
        headings = [str(section.metadata[h]) for _, h in _HEADERS[1:] if h in section.metadata]
        base = f"{document.slug}#{slugify(headings[-1])}" if headings else document.slug
        anchor = f"{base}-{used_anchors[base]}" if used_anchors[base] else base
        used_anchors[base] += 1
        for part, text in enumerate(splitter.split_text(section.page_content)):
            chunks.append(
                PolicyChunk(
                    document=document.slug,
                    title=document.title,
                    section=" > ".join(headings),
                    anchor=anchor,
                    part=part,
                    text=re.sub(r" +\n", "\n", text).strip(),
                )
            )
    return chunks


def load_chunks(directory: Path) -> list[PolicyChunk]:
    """All chunks of all documents in `directory`, in document and section order."""
    if not directory.is_dir():
        raise FileNotFoundError(f"no policy documents directory at {directory}")
    return [chunk for doc in load_documents(directory) for chunk in chunk_document(doc)]
