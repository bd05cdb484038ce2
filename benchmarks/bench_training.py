"""Training throughput: in-batch additive-margin softmax vs AM + mega-batch hard-negative mining.

Usage:
    python benchmarks/bench_training.py --data-dir ../shared/data [--groups 128] [--rounds 2]

Bundled multilingual-e5-small, word embeddings frozen, CPU, PAWS-X resplit train groups
(anchor, positive, label-0 partner). Every method trains on the same number of groups per
round with mini-batches of ``--batch`` groups; the mega-batch variants embed K mini-batches
without gradient, mine across them and replay each with gradient (GradCache), one optimiser
step per mega-batch. Methods alternate within each round, so their ratio is meaningful on
a shared machine. Writes ``benchmarks/results/training.json`` and ``training.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import torch

from paraxl.data.readers import read_pawsx
from paraxl.loading.backends import load_encoder
from paraxl.losses.additive_margin import AdditiveMarginConfig
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.training.distributed import DistContext
from paraxl.training.layout import pair_layout
from paraxl.training.objective import step_loss
from paraxl.training.step import accumulate_step_gradient
from paraxl.training.trainer import EMBED_CHUNK

RESULTS = Path(__file__).resolve().parent / "results"


def run_method(model, groups, batch: int, mega: int, mining: bool, rng_seed: int) -> float:  # type: ignore[no-untyped-def]
    """Train on ``groups`` in steps of ``mega`` mini-batches; return seconds."""
    loss_config = AdditiveMarginConfig(margin=0.3, scale=20.0, explicit_negatives=1)
    mining_config = HardNegativeConfig(enabled=mining, top_k=1, relative_ceiling=0.0)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    rng = np.random.default_rng(rng_seed)
    per_step = batch * mega
    start = time.perf_counter()
    for first in range(0, len(groups), per_step):
        units = groups[first : first + per_step]
        layout = pair_layout([units[i : i + batch] for i in range(0, len(units), batch)], rng, 1)
        optimizer.zero_grad(set_to_none=True)
        accumulate_step_gradient(
            model,
            layout,
            partial(step_loss, layout=layout, loss=loss_config, mining=mining_config),
            context=DistContext(),
            grad_cache=mega > 1,
            chunk_size=EMBED_CHUNK,
        )
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PARAXL_DATA_DIR", "../shared/data")))
    parser.add_argument("--groups", type=int, default=128, help="groups trained on per method per round")
    parser.add_argument("--batch", type=int, default=16, help="groups per mini-batch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--max-seq-length", type=int, default=96)
    parser.add_argument("--out", type=Path, default=RESULTS / "training.json")
    args = parser.parse_args()

    data = read_pawsx(args.data_dir, "train", ["en", "de", "es", "fr", "ja", "ko", "zh"])
    rng = np.random.default_rng(0)
    with_negatives = [g for g in data.units if g.negatives]
    order = rng.permutation(len(with_negatives))
    seen: set[int] = set()
    groups = []
    for index in order:  # distinct group ids, so no mini-batch holds a translation of its own pair
        group = with_negatives[int(index)]
        if group.group_id not in seen:
            seen.add(group.group_id)
            groups.append(group)
        if len(groups) == args.groups:
            break

    model = load_encoder("bundled:multilingual-e5-small")
    model.settings = replace(model.settings, max_seq_length=args.max_seq_length)
    model.freeze_word_embeddings()
    model.train()
    methods = {"in-batch AM (K=1)": (1, False), "AM + mining K=4": (4, True), "AM + mining K=8": (8, True)}
    run_method(model, groups[: args.batch * 2], args.batch, 2, True, 0)  # warm-up (allocator, kernels)
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for round_index in range(args.rounds):
        for name, (mega, mining) in methods.items():
            seconds[name].append(run_method(model, groups, args.batch, mega, mining, round_index))
            print(f"round {round_index}: {name}: {seconds[name][-1]:.1f} s", flush=True)

    base = float(np.median(seconds["in-batch AM (K=1)"]))
    rows = []
    for name, values in seconds.items():
        median = float(np.median(values))
        rows.append(
            {
                "method": name,
                "seconds_per_round": values,
                "groups_per_second": len(groups) / median,
                "time_vs_in_batch": median / base,
                "throughput_cost": 1.0 - base / median,  # fraction of in-batch groups/s lost
            }
        )
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "torch_threads": torch.get_num_threads(),
        "model": "bundled:multilingual-e5-small (word embeddings frozen)",
        "groups_per_round": len(groups),
        "texts_per_group": 3,
        "mini_batch": args.batch,
        "max_seq_length": args.max_seq_length,
        "rounds": args.rounds,
        "methods": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(render(result))
    print(render(result))


def render(result: dict) -> str:  # type: ignore[type-arg]
    lines = [
        "| method | groups/s | time vs in-batch | throughput cost |",
        "|---|---|---|---|",
    ]
    for row in result["methods"]:
        lines.append(
            f"| {row['method']} | {row['groups_per_second']:.2f} | {row['time_vs_in_batch']:.3f} "
            f"| {100 * row['throughput_cost']:.1f} % |"
        )
    head = (
        f"Machine: {result['machine']} (torch threads {result['torch_threads']}); {result['groups_per_round']} "
        f"groups x {result['texts_per_group']} texts per round, mini-batch {result['mini_batch']}, "
        f"max_seq_length {result['max_seq_length']}, median of {result['rounds']} rounds\n\n"
    )
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
