"""Training helpers that need no torch: going on from a shipped GGUF adapter."""

from __future__ import annotations

import numpy as np

from shopbot.distil.train import unpermute_rows


def llama_cpp_permute(weights: np.ndarray, heads: int) -> np.ndarray:
    """`LlamaModel.permute` of llama.cpp's `convert_hf_to_gguf.py`, as it is written there."""
    return (
        weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def test_unpermute_rows_undoes_the_converters_permutation() -> None:
    # SmolLM2-135M: 9 query heads and 3 key heads of 64 dimensions; a LoRA B of rank 16.
    rng = np.random.default_rng(0)
    for heads in (9, 3):
        b = rng.standard_normal((heads * 64, 16)).astype(np.float32)
        permuted = llama_cpp_permute(b, heads)
        assert not np.array_equal(permuted, b)
        assert np.array_equal(unpermute_rows(permuted, heads), b)
