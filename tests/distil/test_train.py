"""Training helpers that need no torch: going on from a shipped GGUF adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shopbot.distil.train import cpu_does_bf16, fitted, unpermute_rows


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


def test_bf16_autocast_only_where_the_cores_do_bf16(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert cpu_does_bf16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 fma avx avx2\n")  # AVX2-only EPYC
    assert not cpu_does_bf16(cpuinfo)
    assert not cpu_does_bf16(tmp_path / "missing")


def test_the_plan_is_fitted_to_the_time_budget_at_the_first_batches_pace() -> None:
    # 16 s a batch (fp32 on 2 AVX2 cores): 431 planned batches need 115 minutes.
    assert fitted(431, 10, 160.0, 75) == 267
    assert fitted(431, 10, 90.0, 75) == 431  # 9 s a batch (bf16): the whole plan fits
    assert fitted(431, 10, 6000.0, 75) == 10  # never fewer than the batches already done
    assert fitted(431, 0, 0.0, 75) == fitted(431, 10, 160.0, float("inf")) == 431
