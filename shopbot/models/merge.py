"""The student merged into its base once, so llama.cpp runs one model instead of base + LoRA.

llama.cpp applies a LoRA adapter as extra matrix products at every layer of every token: on
SmolLM2-135M that halves prefill speed and makes a step about 1.5x slower (BENCHMARKS,
"Quantization levels"). Merging needs no torch: the base's tensors are dequantized with the
`gguf` package, each gets its adapter's `scale * B @ A` added (the adapter file is already in
llama.cpp's layout, so the sum is taken as stored), and the result is quantized to Q8_0 by
llama.cpp itself. Q8_0 keeps the merged weights closest to what the student was trained on
(the dequantized Q4_1 base plus the adapter); Q4_K_M would quantize them a second time.

The merged file is a cache, not an artifact: `<data_dir>/models/student-<hash>.Q8_0.gguf`,
named by the hash of the base and the adapter, made on first use (a few seconds) and
written to a temporary file first, so a crash or a second process never leaves half a
model behind.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from shopbot.errors import ConfigError

LEVEL = "Q8_0"
_FTYPE_Q8_0 = 7
"""llama.cpp's `llama_ftype` for Q8_0."""


def merged_path(base: Path, adapter: Path, folder: Path) -> Path:
    """Where the merge of `adapter` into `base` is cached."""
    digest = hashlib.sha256()
    for path in (base, adapter):
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return folder / f"student-{digest.hexdigest()[:16]}.{LEVEL}.gguf"


def merged(base: Path, adapter: Path, folder: Path) -> Path:
    """The cached merge of `adapter` into `base`, made now if it is missing."""
    out = merged_path(base, adapter, folder)
    if out.is_file():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:  # same filesystem: an atomic move
        full = Path(tmp) / "merged-F32.gguf"
        write_merged(base, adapter, full)
        staged = Path(tmp) / out.name
        quantize(full, staged)
        staged.replace(out)
    return out


def write_merged(base: Path, adapter: Path, out: Path) -> None:
    """`base` with `adapter` added to its weights, unquantized (F32), as a GGUF file."""
    import gguf

    model = gguf.GGUFReader(base)
    lora = gguf.GGUFReader(adapter)
    pairs = {t.name: t for t in lora.tensors}
    known = {f"{t.name}.lora_{side}" for t in model.tensors for side in "ab"}
    if stray := sorted(set(pairs) - known):
        raise ConfigError(
            f"the adapter {adapter} has tensors its base {base.name} does not: {stray[:3]}"
        )
    alpha = float(_field(lora, "adapter.lora.alpha"))
    arch = str(_field(model, gguf.Keys.General.ARCHITECTURE))
    writer = gguf.GGUFWriter(out, arch)
    for field in model.fields.values():
        # The writer adds the architecture and the GGUF header fields itself.
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub)
    for tensor in model.tensors:
        weights = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        a, b = pairs.get(f"{tensor.name}.lora_a"), pairs.get(f"{tensor.name}.lora_b")
        if a is not None and b is not None:
            low_a = np.asarray(a.data, dtype=np.float32)  # (rank, in)
            low_b = np.asarray(b.data, dtype=np.float32)  # (out, rank)
            weights = weights + (alpha / low_a.shape[0]) * (low_b @ low_a)
        writer.add_tensor(tensor.name, weights, raw_dtype=gguf.GGMLQuantizationType.F32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def quantize(source: Path, out: Path) -> None:
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr  # pyright: ignore[reportPrivateUsage]

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _FTYPE_Q8_0
    params.nthread = 2
    with suppress_stdout_stderr(disable=False):  # llama.cpp logs every tensor to stderr
        code = llama_cpp.llama_model_quantize(
            str(source).encode(), str(out).encode(), llama_cpp.byref(params)
        )
    if code != 0:
        raise ConfigError(f"llama.cpp could not quantize the merged student (code {code})")


def _field(reader: Any, name: str) -> Any:
    field = reader.get_field(name)
    if field is None:
        raise ConfigError(f"{reader.data.filename}: no {name} field")
    return field.contents()


__all__ = ["LEVEL", "merged", "merged_path", "write_merged"]
