"""Cross-encoder training steps on PAWS-X: random batches (the reference's) against length-grouped ones.

Usage (the real run, ~6 min on 2 cores):
    python benchmarks/bench_cross_encoder_training.py --data-dir ../shared/data
Smoke test (a tiny model):
    python benchmarks/bench_cross_encoder_training.py --data-dir DIR --model TINY --batches 2 --rounds 1 --name smoke

What it measures, for the config's train pairs (default ``configs/pawsx-cross-encoder.yaml``):

1. **Padding of a whole epoch**: the batches of epoch 0 of each sampler (random batches as
   sentence-transformers' default draws them: a ``RandomSampler`` seeded with the config's seed, not
   necessarily the permutation its trainer draws, whose padding is the same in distribution;
   :class:`paraxl.training.cross_encoder.LengthGroupedBatches`, exactly what ``length_grouped: true``
   gives the trainer), the pairs' own tokens against the tokens their batches pad to (each batch to its
   longest pair).
2. **Seconds per training step**: ``--batches`` batches at evenly spaced positions of each plan, each
   trained as one step of ``CrossEncoderTrainer`` with ``BinaryCrossEntropyLoss`` is (tokenize padded to
   the batch's longest pair, forward, BCE on the logit, backward, AdamW step), the two samplers'
   batches alternating round by round in one process (``--rounds``), so drift hits both alike. The
   epoch time of each is its mean seconds per step times the steps of an epoch.
3. With ``--precisions fp32,bf16``, each sampler's steps also under bf16 autocast (forward and
   loss; the weights and AdamW stay fp32), as the trainer's ``bf16=True`` (``precision: bf16``)
   takes them on a CPU, in the same alternating rounds; every row's speed-up is against random
   batches in fp32, the reference's.

This times the steps' compute on the batches each sampler serves, not a whole ``paraxl train`` run
(data loading and checkpoints are the same for both). Whether length-grouped batches train as well
as random ones is a separate question: a 1-epoch PAWS-X run of each, not run here.

Writes ``benchmarks/results/<name>.json`` and ``<name>.md`` (the CPU, its vector flags and the threads named).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paraxl.data.pairs import LabeledPair
from paraxl.errors import ParaxlError
from paraxl.evaluation.bench_report import cpu_info, present_flags, write_report
from paraxl.evaluation.results import git_commit, library_versions
from paraxl.loading.specs import resolve_model_folder
from paraxl.training.config_kinds import load_train_config
from paraxl.training.cross_encoder import LengthGroupedBatches, load_for_training, pair_lengths
from paraxl.training.cross_encoder_config import CrossEncoderTrainConfig
from paraxl.training.cross_encoder_data import read_train_pairs

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent
SAMPLERS = ("random", "length_grouped")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="benchmark data (pawsx/resplit/<lang>/...)")
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "pawsx-cross-encoder.yaml")
    parser.add_argument("--model", default=None, help="another backbone than the config's (a smoke test's)")
    parser.add_argument("--batches", type=int, default=12, help="timed steps per sampler and round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both samplers")
    parser.add_argument("--precisions", default="fp32", help="fp32 and/or bf16 (comma-separated): autocast per step")
    parser.add_argument("--name", default="cross_encoder_training")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        precisions = parse_precisions(args.precisions)  # refused before the model loads
        config = load_train_config(args.config)
        if not isinstance(config, CrossEncoderTrainConfig):
            raise ParaxlError(f"{args.config} is not a cross-encoder config (model.kind: cross_encoder)")
        report = measure(args, config, precisions)
    except ParaxlError as exc:
        print(f"error: {exc}")
        return 2
    stem = args.output_dir / args.name
    write_report(stem, report, markdown(report))
    print(markdown(report))
    print(f"wrote {stem}.json and {stem}.md")
    return 0


def measure(args: argparse.Namespace, config: CrossEncoderTrainConfig, precisions: list[str]) -> dict[str, Any]:
    import torch

    rows = read_train_pairs(config.data, args.data_dir, seed=config.seed).rows
    folder = resolve_model_folder(args.model or config.model.name)
    model = load_for_training(folder, config.model.max_seq_length, config.seed, lambda message: None).model
    lengths = pair_lengths(model, rows)
    plans = epoch_plans(lengths, config.batch_size, config.seed)
    optimizer = torch.optim.AdamW(model.model.parameters(), lr=config.lr)
    train_step(model, optimizer, [rows[i] for i in plans["random"][0]])  # untimed: AdamW's state, first calls
    variants = [(sampler, precision) for precision in precisions for sampler in SAMPLERS]
    seconds: dict[tuple[str, str], list[float]] = {variant: [] for variant in variants}
    for round_index in range(args.rounds):
        for sampler, precision in variants if round_index % 2 == 0 else variants[::-1]:
            for batch in spaced(plans[sampler], args.batches):
                pairs = [rows[i] for i in batch]
                seconds[sampler, precision].append(train_step(model, optimizer, pairs, bf16=precision == "bf16"))
    steps = len(plans["random"])
    reference = statistics.mean(seconds["random", "fp32"]) if ("random", "fp32") in seconds else None
    samplers = {}
    for sampler, precision in variants:
        per_step = statistics.mean(seconds[sampler, precision])
        timed = spaced(plans[sampler], args.batches)
        samplers[f"{sampler}/{precision}"] = {
            "sampler": sampler,
            "precision": precision,
            "padded_over_real_tokens": padded_tokens(plans[sampler], lengths) / sum(lengths),
            # how well the timed batches stand for the epoch: their mean padded tokens against the plan's
            "padded_tokens_per_step_timed": padded_tokens(timed, lengths) / len(timed),
            "padded_tokens_per_step_epoch": padded_tokens(plans[sampler], lengths) / len(plans[sampler]),
            "seconds_per_step": per_step,
            "seconds_per_step_runs": seconds[sampler, precision],
            "epoch_seconds_estimate": per_step * steps,
            "speedup_over_random_fp32": None if reference is None else reference / per_step,
        }
    return {
        "benchmark": "cross_encoder_training",
        "config": str(args.config),
        "model": str(folder),
        "pairs": len(rows),
        "batch_size": config.batch_size,
        "max_length": model.max_length,
        "steps_per_epoch": steps,
        "timed_steps_per_sampler": args.batches * args.rounds,
        "samplers": samplers,
        "machine": cpu_info() | {"torch_threads": torch.get_num_threads()},
        "versions": library_versions(),
        "git": git_commit(),
    }


def parse_precisions(text: str) -> list[str]:
    """``fp32,bf16`` -> ["fp32", "bf16"]; anything else is refused in one line."""
    precisions = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(precisions) - {"fp32", "bf16"})
    if unknown or not precisions:
        raise ParaxlError(f"--precisions: {', '.join(unknown) or 'empty'}: expected fp32 and/or bf16")
    return list(dict.fromkeys(precisions))


def epoch_plans(lengths: Sequence[int], batch_size: int, seed: int) -> dict[str, list[list[int]]]:
    """Epoch 0's batches of each sampler: seeded random batches, and the trainer's length-grouped ones."""
    import torch
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from torch.utils.data import RandomSampler

    rows = list(range(len(lengths)))
    shuffled = RandomSampler(rows, generator=torch.Generator().manual_seed(seed))
    random_batches = DefaultBatchSampler(shuffled, batch_size=batch_size, drop_last=False)  # type: ignore[arg-type]
    grouped = LengthGroupedBatches(tuple(lengths))(rows, batch_size, False, seed=seed)
    return {"random": list(random_batches), "length_grouped": list(grouped)}


def spaced(plan: list[list[int]], count: int) -> list[list[int]]:
    """``count`` batches at evenly spaced positions of ``plan`` (its first, ..., near its last)."""
    step = max(len(plan) // max(count, 1), 1)
    return plan[::step][:count]


def padded_tokens(plan: list[list[int]], lengths: Sequence[int]) -> int:
    """Tokens the plan's batches pad to: each batch's longest pair, times its pairs."""
    return sum(max(lengths[i] for i in batch) * len(batch) for batch in plan)


def train_step(model: Any, optimizer: Any, pairs: list[LabeledPair], bf16: bool = False) -> float:
    """One step as ``CrossEncoderTrainer`` + ``BinaryCrossEntropyLoss`` take it; its wall seconds.

    ``bf16``: forward and loss under CPU bf16 autocast, as the trainer's ``bf16=True`` runs them.
    """
    import torch

    began = time.perf_counter()
    features = model.tokenizer(
        [pair.first for pair in pairs],
        [pair.second for pair in pairs],
        padding=True,
        truncation=True,
        max_length=model.max_length,
        return_tensors="pt",
    )
    labels = torch.tensor([float(pair.label or 0) for pair in pairs])
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model.model(**features).logits.view(-1)  # (batch,)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)  # fp32 under autocast
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - began


def markdown(report: dict[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"# Cross-encoder training steps: random vs length-grouped batches ({report['pairs']} pairs, "
        f"batch {report['batch_size']}, max length {report['max_length']})",
        "",
        f"CPU: {machine['model']} ({', '.join(present_flags(machine)) or 'no listed flags'}), "
        f"{machine['available_cpus']} CPUs, torch threads {machine['torch_threads']}; "
        f"{report['timed_steps_per_sampler']} timed steps per sampler, alternating rounds.",
        "",
        "| batches | precision | padded / real tokens (epoch 0) | padded tokens per step: timed / epoch "
        "| s per step (mean) | epoch estimate (s) | speed-up vs random fp32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["samplers"].values():
        speedup = "-" if row["speedup_over_random_fp32"] is None else f"{row['speedup_over_random_fp32']:.2f}x"
        lines.append(
            f"| {row['sampler']} | {row['precision']} | {row['padded_over_real_tokens']:.3f} "
            f"| {row['padded_tokens_per_step_timed']:.0f} / {row['padded_tokens_per_step_epoch']:.0f} "
            f"| {row['seconds_per_step']:.2f} | {row['epoch_seconds_estimate']:.0f} | {speedup} |"
        )
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
