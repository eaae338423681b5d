"""The policy index against a real Chroma server (`chroma run`) on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from chromadb.api import ClientAPI

from shopbot.errors import ConfigError
from shopbot.policy import MiniLMEmbedding, PolicyIndex, connect

pytestmark = pytest.mark.slow


def test_sync_and_search_through_the_server(
    chroma_server: str, small_corpus: Path, tmp_path: Path
) -> None:
    index = PolicyIndex.open(tmp_path, chroma_server, collection="http_sync")

    first = index.sync(small_corpus)
    again = PolicyIndex.open(tmp_path, chroma_server, collection="http_sync").sync(small_corpus)

    assert (first.added, again.unchanged, again.added) == (7, 7, 0)
    assert not (tmp_path / "chroma").exists()  # nothing was stored locally
    hits = index.search("refund to a gift card, how long?", k=1)
    assert hits[0].anchor == "returns#gift-cards"


def test_a_new_client_rebuilds_the_embedding_function(
    chroma_server: str, small_corpus: Path
) -> None:
    PolicyIndex.open(Path("unused"), chroma_server, collection="http_reload").sync(small_corpus)

    client = connect(Path("unused"), chroma_server)
    assert isinstance(client, ClientAPI)
    collection = client.get_collection("http_reload")
    assert isinstance(collection.configuration.get("embedding_function"), MiniLMEmbedding)
    result = collection.query(query_texts=["is delivery free"], n_results=1)
    assert result["metadatas"] is not None
    assert result["metadatas"][0][0]["anchor"] == "shipping#rates"


def test_a_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="http://host:port"):
        connect(Path("unused"), "chroma.internal:8000")
