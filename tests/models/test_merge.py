"""The student merged into its base: the same sums llama.cpp takes at run time, made once."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from shopbot.errors import ConfigError
from shopbot.models.merge import merged_path, write_merged


def _base(path: Path, weights: dict[str, np.ndarray]) -> None:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(1)
    for name, array in weights.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _adapter(path: Path, pairs: dict[str, tuple[np.ndarray, np.ndarray]], alpha: float) -> None:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", alpha)
    for name, (a, b) in pairs.items():
        writer.add_tensor(f"{name}.lora_a", a.astype(np.float16))
        writer.add_tensor(f"{name}.lora_b", b.astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_each_weight_gets_its_adapters_scaled_product(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((6, 8)).astype(np.float32)  # (out, in), as gguf-py hands it over
    norm = rng.standard_normal(8).astype(np.float32)
    a = rng.standard_normal((2, 8)).astype(np.float32)  # (rank, in)
    b = rng.standard_normal((6, 2)).astype(np.float32)  # (out, rank)
    _base(tmp_path / "base.gguf", {"blk.0.attn_q.weight": q, "blk.0.attn_norm.weight": norm})
    _adapter(tmp_path / "lora.gguf", {"blk.0.attn_q.weight": (a, b)}, alpha=4.0)

    write_merged(tmp_path / "base.gguf", tmp_path / "lora.gguf", tmp_path / "out.gguf")

    out = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(tmp_path / "out.gguf").tensors}
    low_a, low_b = a.astype(np.float16).astype(np.float32), b.astype(np.float16).astype(np.float32)
    # llama.cpp's scale: alpha / rank.
    np.testing.assert_allclose(out["blk.0.attn_q.weight"], q + 2.0 * low_b @ low_a, rtol=1e-6)
    np.testing.assert_array_equal(out["blk.0.attn_norm.weight"], norm)  # no adapter: as it was
    fields = gguf.GGUFReader(tmp_path / "out.gguf").fields
    assert fields["llama.block_count"].contents() == 1  # the base's settings carried over


def test_an_adapter_for_another_model_is_refused(tmp_path: Path) -> None:
    _base(tmp_path / "base.gguf", {"blk.0.attn_q.weight": np.zeros((4, 4), np.float32)})
    stray = (np.zeros((2, 4), np.float32), np.zeros((4, 2), np.float32))
    _adapter(tmp_path / "lora.gguf", {"blk.9.attn_q.weight": stray}, alpha=2.0)
    with pytest.raises(ConfigError, match=r"tensors its base base.gguf does not"):
        write_merged(tmp_path / "base.gguf", tmp_path / "lora.gguf", tmp_path / "out.gguf")


def test_the_cache_is_named_by_both_files(tmp_path: Path) -> None:
    base, lora = tmp_path / "base.gguf", tmp_path / "lora.gguf"
    base.write_bytes(b"base")
    lora.write_bytes(b"one")
    first = merged_path(base, lora, tmp_path)
    assert first == merged_path(base, lora, tmp_path)
    lora.write_bytes(b"two")  # a retrained adapter: a new merge, never the stale one
    assert merged_path(base, lora, tmp_path) != first
