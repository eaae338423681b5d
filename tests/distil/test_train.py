"""Training helpers that need no torch: going on from a shipped GGUF adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shopbot.distil.train import (
    PACE_BATCHES,
    REFIT_EVERY,
    Schedule,
    cpu_does_bf16,
    fitted,
    unpermute_rows,
)


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


def test_the_learning_rate_schedule_shrinks_with_the_fitted_plan() -> None:
    schedule = Schedule(400, minutes=10.0)  # 570 s of batches (a twentieth kept)
    assert (schedule.warmup, schedule.factor(0), schedule.factor(19)) == (20, 0.05, 1.0)
    # The first batch ends at 100 s (allocation, not timed); then 2 s a batch: 570 s hold 285.
    assert schedule.paced(0, 100.0) is None
    assert [schedule.paced(s, 100.0 + 2 * s) for s in range(1, PACE_BATCHES)] == [None] * 9
    assert schedule.paced(PACE_BATCHES, 100.0 + 2 * PACE_BATCHES) == 285
    assert (schedule.total, schedule.warmup) == (285, 14)
    # Slower later: 3 s a batch on average by batch 50 -> fitted again, to 190.
    assert schedule.paced(49, 247.0) is None  # only every REFIT_EVERY batches
    assert schedule.paced(REFIT_EVERY, 250.0) == 190
    assert schedule.warmup == 9 and schedule.factor(9) == 1.0
    assert abs(schedule.factor(190)) < 1e-12  # the cosine ends at zero at the new end
    # Faster again: the plan never grows back, so the learning rate never climbs.
    assert schedule.paced(2 * REFIT_EVERY, 150.0) is None and schedule.total == 190
    roomy = Schedule(400, minutes=float("inf"))
    roomy.paced(0, 0.0)
    assert roomy.paced(PACE_BATCHES, 20.0) is None and roomy.total == 400
