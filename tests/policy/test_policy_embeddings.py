from __future__ import annotations

from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings
from chromadb.utils.embedding_functions import known_embedding_functions

from shopbot.errors import ConfigError
from shopbot.policy import MiniLMEmbedding, PolicyIndex
from shopbot.policy.embeddings import DIMENSIONS, MODEL_ID, TOKENIZER_PATH


def test_vectors_are_normalised_and_independent_of_batch_padding() -> None:
    embedding = MiniLMEmbedding()
    texts = [
        "can I return swimwear?",
        "Swimwear is final sale and cannot be returned or exchanged.",
    ]

    batch = embedding.embed_batch(texts)
    alone = embedding.embed_batch(texts[:1])

    assert batch.shape == (2, DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(batch[0], alone[0], atol=1e-5)
    assert float(batch[0] @ batch[1]) > 0.5


def test_similar_meaning_scores_higher_than_unrelated() -> None:
    embedding = MiniLMEmbedding()
    query, close, far = embedding.embed_batch(
        [
            "how long do refunds take",
            "Refunds are paid within 7 business days.",
            "Wash wool by hand.",
        ]
    )

    assert float(query @ close) > float(query @ far) + 0.2


def test_call_follows_the_chromadb_protocol() -> None:
    vectors = MiniLMEmbedding(batch_size=2)(["a", "b", "c"])

    assert len(vectors) == 3
    assert all(len(v) == DIMENSIONS for v in vectors)


def test_is_registered_and_rebuilds_from_its_config() -> None:
    embedding = MiniLMEmbedding(max_tokens=128)

    assert known_embedding_functions[MiniLMEmbedding.name()] is MiniLMEmbedding
    assert not embedding.is_legacy()
    rebuilt = MiniLMEmbedding.build_from_config(embedding.get_config())
    assert rebuilt.max_tokens == 128
    assert embedding.get_config()["model"] == MODEL_ID


def test_refuses_a_config_from_another_model() -> None:
    with pytest.raises(ValueError, match="embedded with"):
        MiniLMEmbedding.build_from_config({"model": "some-other-model"})


def test_tokenizer_ships_with_its_licence() -> None:
    licence = (TOKENIZER_PATH.parent / "LICENSE.txt").read_text()

    assert "Apache License" in licence
    assert "Version 2.0" in licence


def test_reopened_collection_rebuilds_the_embedding_function(
    tmp_path: Path, small_corpus: Path
) -> None:
    PolicyIndex.open(tmp_path).sync(small_corpus)

    # A new client that names no embedding function: chromadb must rebuild ours from the
    # collection's stored config, never fall back to its own default (the autouse guard).
    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    collection = client.get_collection("shop_policies")
    assert isinstance(collection.configuration.get("embedding_function"), MiniLMEmbedding)
    result = collection.query(query_texts=["when do refunds arrive"], n_results=1)
    assert result["metadatas"] is not None
    assert result["metadatas"][0][0]["anchor"] == "returns#refunds"


def test_a_collection_built_by_another_function_is_refused(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    client.create_collection("shop_policies", embedding_function=None)

    with pytest.raises(ConfigError, match="delete it"):
        PolicyIndex.open(tmp_path)


def test_the_guard_stops_chromadb_default_embedding_function(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(
        path=str(tmp_path / "chroma"), settings=Settings(anonymized_telemetry=False)
    )
    collection = client.create_collection("default_ef")

    with pytest.raises(AssertionError, match="default embedding function ran"):
        collection.add(ids=["a"], documents=["this would download a model"])
