"""Training step profile: where a step's time goes, and settings side by side in one run.

Usage (the paper-1 recipe of experiments/pawsx-long.yaml on real PAWS-X resplit train data):
    python benchmarks/bench_training.py --data-dir ../shared/data --variants fp32,bf16 --steps 12

Each variant trains a fresh copy of the same model (same seed, same steps: the trainer's first
``--warmup + --steps`` steps of epoch 0, same layouts and draws) with the trainer's own step
(``accumulate_step_gradient``); the first ``--warmup`` steps are not timed. Per step it times
layout, tokenization, the no-grad mega-batch pass (GradCache), forward (replay), loss, backward
and optimizer (clip + AdamW), and counts real and padded tokens. It measures an fp32 and a bf16
GEMM peak in the same run and reports achieved FLOP/s against the peak of the variant's
precision: 6 x non-embedding params x tokens for forward+backward, 2 x for the no-grad pass,
plus attention (4 x seq^2 x hidden per sequence and layer forward, 3x that with backward).

A variant is ``+``-joined tokens: ``fp32`` | ``bf16`` | ``auto`` (precision), ``nocache``
(one graph instead of GradCache: same gradient, no second forward), ``chunkN`` (texts per
forward pass), ``kN`` (mini-batches per step; k1 turns mining off), ``threadsN``.
Writes ``benchmarks/results/training_profile.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paraxl.data.sampler import GroupBatchSampler
from paraxl.loading.backends import load_bi_encoder
from paraxl.losses.phases import PhaseClock
from paraxl.losses.registry import step_needs
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.threads import configure_torch_threads, torch_thread_settings
from paraxl.training.config import TrainConfig, load_config
from paraxl.training.data_loading import load_training_data
from paraxl.training.distributed import DistContext
from paraxl.training.layout import StepLayout, TranslationPositives, step_layout
from paraxl.training.objective import step_loss
from paraxl.training.precision import autocast_for, cpu_flags, native_bf16_cpu, resolve_precision
from paraxl.training.step import accumulate_step_gradient
from paraxl.training.trainer import EMBED_CHUNK

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
RECIPE = ["optim.lr=5.0e-5", "validation=null", "batch_size=8", "mini_batches_per_step=4", "epochs=1"]
PHASES = ("layout", "tokenize", "no_grad_pass", "forward", "loss", "backward", "optimizer")
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "amx_int8")


@dataclass
class Variant:
    name: str
    precision: str = "fp32"
    grad_cache: bool | None = None  # None: the config's
    chunk: int = EMBED_CHUNK
    mega: int | None = None  # mini-batches per step (None: the config's)
    threads: int | None = None

    @classmethod
    def parse(cls, name: str) -> Variant:
        variant = cls(name)
        for token in name.split("+"):
            if token in ("fp32", "bf16", "auto"):
                variant.precision = token
            elif token == "nocache":
                variant.grad_cache = False
            elif token.startswith("chunk"):
                variant.chunk = int(token[5:])
            elif token.startswith("threads"):
                variant.threads = int(token[7:])
            elif token.startswith("k"):
                variant.mega = int(token[1:])
            else:
                raise SystemExit(f"unknown variant token {token!r} in {name!r}")
        return variant


@dataclass
class Tally:
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # process CPU time: robust to other jobs on 1 thread
    phases: dict[str, float] = field(default_factory=dict)
    losses: list[float] = field(default_factory=list)
    real_tokens: int = 0  # non-padding tokens embedded per pass
    padded_tokens: int = 0  # tokens the forward passes compute on (sorted chunks)
    unsorted_padded_tokens: int = 0  # the same texts padded per chunk in layout order (for reference)
    flops: float = 0.0  # executed (padded) FLOPs, no-grad pass included


def gemm_peak(dtype: torch.dtype, seconds: float) -> dict[str, float]:
    """GFLOP/s of torch GEMMs at the model's shapes (2,048 tokens x 384 / 1,536 features)."""
    shapes = {"2048x384x1536": (2048, 384, 1536), "2048x1536x384": (2048, 1536, 384), "2048x384x384": (2048, 384, 384)}
    result = {}
    for name, (m, k, n) in shapes.items():
        a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
        for _ in range(3):
            a @ b
        count, began = 0, time.perf_counter()
        while time.perf_counter() - began < seconds / len(shapes):
            a @ b
            count += 1
        result[name] = 2 * m * k * n * count / (time.perf_counter() - began) / 1e9
    result["peak"] = max(result.values())
    return result


def all_peaks(threads: int, seconds: float) -> dict[str, dict[str, float]]:
    """fp32 and bf16 GEMM peaks with ``threads`` torch threads (a variant is compared with its own)."""
    default = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return {"fp32": gemm_peak(torch.float32, seconds), "bf16": gemm_peak(torch.bfloat16, seconds)}
    finally:
        torch.set_num_threads(default)


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), "?")
    flags = cpu_flags()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "flags": [flag for flag in FLAGS if flag in flags],
        "native_bf16": native_bf16_cpu(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "thread_settings": torch_thread_settings(),
        "env": {key: os.environ.get(key) for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "ONEDNN_MAX_CPU_ISA")},
        "platform": platform.platform(),
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def step_flops(model: BiEncoder, chunks: list[dict[str, torch.Tensor]], grad_cache: bool) -> tuple[float, int, int]:
    """(executed FLOPs of one step, real tokens, padded tokens) for these padded chunks."""
    config = model.backbone.config
    params = sum(p.numel() for name, p in model.named_parameters() if ".embeddings." not in f".{name}")
    layers, hidden = int(config.num_hidden_layers), int(config.hidden_size)
    padded = sum(int(c["input_ids"].numel()) for c in chunks)
    real = sum(int(c["attention_mask"].sum()) for c in chunks)
    attention = sum(4 * c["input_ids"].shape[0] * c["input_ids"].shape[1] ** 2 * hidden * layers for c in chunks)
    forward = 2 * params * padded + attention
    return (4 if grad_cache else 3) * forward, real, padded


def _setup(
    config: TrainConfig, variant: Variant, args: argparse.Namespace
) -> tuple[TrainConfig, list[Callable[[], StepLayout]]]:
    """The variant's config (mega-batch size) and its step layouts."""
    mega = variant.mega or config.mini_batches_per_step
    overrides = {"mini_batches_per_step": mega} | ({"mining": {"enabled": False}} if mega == 1 else {})
    run_config = TrainConfig.model_validate(config.model_dump() | overrides)
    return run_config, recipe_layouts(run_config, args.data_dir, args.warmup + args.steps, mega)


def run_variant(model: BiEncoder, initial: dict[str, torch.Tensor], config: TrainConfig, variant: Variant,
                layouts: list[Callable[[], StepLayout]], args: argparse.Namespace, tally: Tally) -> None:  # fmt: skip
    """Train ``model`` from ``initial`` (same seed every time) on ``layouts``; add the timed steps to ``tally``."""
    model.load_state_dict(initial)
    torch.manual_seed(config.seed)
    threads = torch.get_num_threads()
    if variant.threads:
        torch.set_num_threads(variant.threads)
    optimizer = adamw(model, config)
    autocast = autocast_for(resolve_precision(variant.precision, torch.device("cpu")), torch.device("cpu"))
    grad_cache = config.uses_grad_cache if variant.grad_cache is None else variant.grad_cache
    began, record_losses = time.perf_counter(), not tally.losses  # losses of the first round only (same seed)
    try:
        for index, build_layout in enumerate(layouts):
            clock = PhaseClock()
            start, cpu_start = time.perf_counter(), time.process_time()
            with clock("layout"):
                layout = build_layout()  # as the trainer does each step (numpy draws)
            optimizer.zero_grad(set_to_none=True)
            loss = accumulate_step_gradient(
                model,
                layout,
                partial(step_loss, layout=layout, loss=config.loss, mining=config.mining, teacher=None),
                context=DistContext(),
                grad_cache=grad_cache,
                chunk_size=variant.chunk,
                autocast=autocast,
                clock=clock,
            )
            with clock("optimizer"):
                trainable = [p for p in model.parameters() if p.requires_grad]
                torch.nn.utils.clip_grad_norm_(trainable, config.optim.max_grad_norm or float("inf"))
                optimizer.step()
            seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
            if record_losses:
                tally.losses.append(loss)
            if index < args.warmup:
                continue
            tally.cpu_seconds.append(cpu_seconds)
            _count(tally, model, layout, variant, grad_cache, clock, seconds)
            if time.perf_counter() - began > args.max_seconds:
                break
    finally:
        torch.set_num_threads(threads)


def load_model(config: TrainConfig) -> BiEncoder:
    """The config's model as the trainer sets it up (max_seq_length, frozen word embeddings)."""
    model = load_bi_encoder(config.model.name)
    if config.model.max_seq_length is not None:
        model.settings = replace(model.settings, max_seq_length=config.model.max_seq_length)
    if config.model.freeze_word_embeddings:
        model.freeze_word_embeddings()
    return model.train()


def adamw(model: BiEncoder, config: TrainConfig) -> torch.optim.Optimizer:
    """The trainer's AdamW: no weight decay on 1-D parameters (biases, LayerNorm)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": config.optim.weight_decay},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.optim.lr)


def _count(tally: Tally, model: BiEncoder, layout: StepLayout, variant: Variant, grad_cache: bool,
           clock: PhaseClock, seconds: float) -> None:  # fmt: skip
    """Add one timed step (its phases, tokens and FLOPs; tokenizing again, untimed) to ``tally``."""
    tally.seconds.append(seconds)
    for name, value in clock.seconds.items():
        tally.phases[name] = tally.phases.get(name, 0.0) + value
    _, chunks = model.tokenize_by_length(layout.texts, variant.chunk)
    flops, real, padded = step_flops(model, chunks, grad_cache)
    tally.flops += flops
    tally.real_tokens += real
    tally.padded_tokens += padded
    for start in range(0, len(layout.texts), variant.chunk):
        tally.unsorted_padded_tokens += int(
            model.tokenize(layout.texts[start : start + variant.chunk])["input_ids"].numel()
        )


def recipe_layouts(config: TrainConfig, data_dir: Path, steps: int, mega: int) -> list[Callable[[], StepLayout]]:
    """Builders of the trainer's first ``steps`` step layouts of epoch 0 (same sampler, same draws)."""
    data = load_training_data(config.data, data_dir)
    sampler = GroupBatchSampler(data.group_ids(), config.batch_size, seed=config.seed)
    plan = sampler.epoch_batches(0)
    translations = TranslationPositives.at_rate(data.units, config.data.translation_positives)
    needs = step_needs(config.loss)

    def build(first: int) -> StepLayout:
        rng = np.random.default_rng([config.seed, 0, first])  # the trainer's draw for this position
        mini_batches = [[data.units[i] for i in batch] for batch in plan[first : first + mega]]
        return step_layout(needs, mini_batches, rng, translations)

    return [partial(build, step * mega) for step in range(min(steps, len(plan) // mega))]


def summarise(
    tally: Tally, variant: Variant, groups_per_step: int, peaks: dict[str, dict[str, dict[str, float]]]
) -> dict[str, Any]:
    total = sum(tally.seconds)
    steps = len(tally.seconds)
    precision = resolve_precision(variant.precision, torch.device("cpu"))
    peak = peaks[str(variant.threads or torch.get_num_threads())][precision]["peak"] * 1e9
    achieved = tally.flops / max(total, 1e-9)
    return {
        "variant": variant.name,
        "precision": precision,
        "timed_steps": steps,
        "seconds_per_step": total / max(steps, 1),
        "groups_per_second": groups_per_step * steps / max(total, 1e-9),
        "cpu_seconds_per_step": sum(tally.cpu_seconds) / max(steps, 1),
        "phase_share": {name: tally.phases.get(name, 0.0) / max(total, 1e-9) for name in PHASES},
        "padding_share": 1 - tally.real_tokens / max(tally.padded_tokens, 1),
        "padding_share_unsorted": 1 - tally.real_tokens / max(tally.unsorted_padded_tokens, 1),
        "achieved_gflops": achieved / 1e9,
        "peak_gflops": peak / 1e9,
        "utilisation": achieved / peak,
        "losses": tally.losses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PARAXL_DATA_DIR", "../shared/data")))
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "pawsx-am-megabatch.yaml")
    parser.add_argument("--set", nargs="*", default=RECIPE, help="config overrides (default: pawsx-long's recipe)")
    parser.add_argument("--variants", default="fp32,bf16", help="comma-separated, e.g. fp32,bf16,bf16+nocache")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--rounds", type=int, default=1, help="rounds; each runs every variant (warm-up + steps)")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop a variant's round after this")
    parser.add_argument("--peak-seconds", type=float, default=3.0, help="seconds per GEMM peak measurement")
    parser.add_argument("--out", type=Path, default=RESULTS / "training_profile.json")
    args = parser.parse_args()

    configure_torch_threads()  # as the trainer does: intra-op threads at most the physical cores
    config = load_config(args.config, args.set)
    if config.is_multi_task:  # the recipe's steps come from the top-level data, loss and batch shape
        raise SystemExit(f"{args.config}: has `tasks:`; this benchmark profiles a one-task config's steps")
    variants = [Variant.parse(name) for name in args.variants.split(",")]
    model = load_model(config)
    initial = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    peaks = {
        str(threads): all_peaks(threads, args.peak_seconds)
        for threads in sorted({v.threads or torch.get_num_threads() for v in variants})
    }
    setups = [_setup(config, variant, args) for variant in variants]
    tallies = [Tally() for _ in variants]
    for round_index in range(args.rounds):  # variants alternate within a round: fair on a shared machine
        for variant, (run_config, layouts), tally in zip(variants, setups, tallies, strict=True):
            run_variant(model, initial, run_config, variant, layouts, args, tally)
            print(f"round {round_index}: {variant.name}: {tally.seconds[-1]:.2f} s/step (last)", flush=True)
    rows = [
        summarise(tally, variant, run_config.batch_size * run_config.mini_batches_per_step, peaks)
        for variant, (run_config, _), tally in zip(variants, setups, tallies, strict=True)
    ]
    result = {
        "machine": machine(),
        "config": str(args.config.relative_to(REPO) if args.config.is_relative_to(REPO) else args.config),
        "overrides": args.set,
        "warmup_steps": args.warmup,
        "rounds": args.rounds,
        "gemm_peak_gflops": peaks,
        "variants": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(render(result))
    print(render(result))


def render(result: dict[str, Any]) -> str:
    info = result["machine"]
    peaks = result["gemm_peak_gflops"]
    head = (
        f"CPU: {info['cpu']}, {info['cores']} cores, flags {' '.join(info['flags'])} (native bf16: "
        f"{info['native_bf16']}); torch {info['torch']} ({info['torch_cpu_capability']}), threads "
        f"{info['torch_threads']} intra / {info['torch_interop_threads']} inter-op. GEMM peak: "
        + ", ".join(
            f"{threads} thread(s): fp32 {peak['fp32']['peak']:.0f}, bf16 {peak['bf16']['peak']:.0f} GFLOP/s"
            for threads, peak in peaks.items()
        )
        + ".\n"
        f"Config {result['config']} with {' '.join(result['overrides'])}; "
        f"{result['warmup_steps']} warm-up steps per variant and round, "
        f"{result['rounds']} round(s), variants alternating.\n\n"
    )
    lines = [
        "| variant | precision | steps | s/step | CPU s/step | groups/s | vs first | "
        + " | ".join(PHASES)
        + " | padding (sorted / unsorted) | GFLOP/s | % of peak |",
        "|---|---|---|---|---|---|---|" + "---|" * len(PHASES) + "---|---|---|",
    ]
    base = result["variants"][0]["groups_per_second"]
    for row in result["variants"]:
        shares = " | ".join(f"{100 * row['phase_share'][name]:.1f} %" for name in PHASES)
        lines.append(
            f"| {row['variant']} | {row['precision']} | {row['timed_steps']} | {row['seconds_per_step']:.2f} "
            f"| {row['cpu_seconds_per_step']:.2f} "
            f"| {row['groups_per_second']:.2f} | {row['groups_per_second'] / base:.2f}x | {shares} "
            f"| {100 * row['padding_share']:.1f} % / {100 * row['padding_share_unsorted']:.1f} % "
            f"| {row['achieved_gflops']:.1f} | {100 * row['utilisation']:.1f} % |"
        )
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
