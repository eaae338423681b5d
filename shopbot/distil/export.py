"""The trained adapter in llama.cpp's formats: a GGUF LoRA over the packaged base (what ships),
and the merged student at several quantization levels (what the trade-off table measures).

llama.cpp's converters are not in the llama-cpp-python wheel; they are in its sdist on PyPI
(`vendor/llama.cpp`), fetched once with pip into `~/.cache/shopbot/` and run from there.
Quantizing uses `llama_cpp.llama_model_quantize` from the installed wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from shopbot.errors import ConfigError

LLAMA_CPP_VERSION = "0.3.36"
CACHE = Path.home() / ".cache" / "shopbot"
QUANT_TYPES = {"Q8_0": 7, "Q5_K_M": 17, "Q4_K_M": 15, "Q4_1": 3}
"""llama.cpp's `llama_ftype` numbers of the levels measured."""


def converters() -> Path:
    """llama.cpp's source folder from the llama-cpp-python sdist (fetched once)."""
    root = CACHE / f"llama-cpp-python-{LLAMA_CPP_VERSION}"
    source = root / f"llama_cpp_python-{LLAMA_CPP_VERSION}" / "vendor" / "llama.cpp"
    if (source / "convert_lora_to_gguf.py").is_file():
        return source
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-binary",
            ":all:",
            "--no-deps",
            f"llama-cpp-python=={LLAMA_CPP_VERSION}",
            "-d",
            str(root),
        ],
        check=True,
    )
    archive = next(root.glob("llama_cpp_python-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="data")
    return source


def _run_converter(script: str, *args: str) -> None:
    source = converters()
    env = os.environ | {"PYTHONPATH": f"{source}:{source / 'gguf-py'}"}
    subprocess.run([sys.executable, str(source / script), *args], check=True, env=env)


def save_base(folder: Path) -> Path:
    """The packaged GGUF base, dequantized, as a transformers folder the converters read."""
    from shopbot.distil.train import load_base

    if (folder / "config.json").is_file():
        return folder
    model, tokenizer = load_base()
    # transformers refuses to save a model it loaded from GGUF as quantized.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def lora_to_gguf(adapter: Path, out: Path, base: Path) -> Path:
    """The peft adapter folder as a GGUF LoRA (f16), written next to `out` then moved."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:  # same filesystem: an atomic move
        staged = Path(tmp) / out.name
        _run_converter(
            "convert_lora_to_gguf.py",
            "--base",
            str(base),
            "--outfile",
            str(staged),
            "--outtype",
            "f16",
            str(adapter),
        )
        staged.replace(out)
    return out


def merged_to_gguf(adapter: Path, folder: Path, base: Path) -> Path:
    """The base with the adapter merged in, as an F16 GGUF (`folder/student-F16.gguf`)."""
    from peft import PeftModel  # pyright: ignore[reportMissingImports]
    from transformers import AutoModelForCausalLM, AutoTokenizer  # pyright: ignore[reportMissingImports]

    merged = folder / "merged"
    model: Any = AutoModelForCausalLM.from_pretrained(base)
    model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    model.save_pretrained(merged)
    AutoTokenizer.from_pretrained(base).save_pretrained(merged)
    out = folder / "student-F16.gguf"
    _run_converter("convert_hf_to_gguf.py", str(merged), "--outfile", str(out), "--outtype", "f16")
    return out


def quantize(source: Path, level: str) -> Path:
    """`source` (an F16 GGUF) at `level` (Q8_0, Q5_K_M, Q4_K_M...), next to it."""
    import llama_cpp

    out = source.with_name(source.name.replace("F16", level))
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[level]
    params.nthread = 2
    code = llama_cpp.llama_model_quantize(
        str(source).encode(), str(out).encode(), llama_cpp.byref(params)
    )
    if code != 0:
        raise ConfigError(f"llama.cpp could not quantize {source} to {level} (code {code})")
    return out


__all__ = ["converters", "lora_to_gguf", "merged_to_gguf", "quantize", "save_base"]
