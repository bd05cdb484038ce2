"""GPU checks for a lent accelerator: CPU/GPU embedding parity, exact GradCache gradients on
CUDA (dropout on, float64), and a bf16-autocast forward. Writes JSON to $OUT or results/.

Usage (repository root): PYTHONPATH=src:. python benchmarks/gpu_check.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from tests.test_losses import run_cached_vs_full
from tests.tiny import build_tiny_encoder

from paraxl.losses import additive_margin_loss

TEXTS = [
    ["the cat sat", "the dog ran", "le chat", "der hund", "cat on mat", "dog on mat"],
    ["le chat sat", "der hund ran", "the mat", "猫は犬", "ABC", "xyz"],
]


def loss(reps: torch.Tensor) -> torch.Tensor:
    first, second = reps[:6], reps[6:]
    return additive_margin_loss(torch.cat([first[:3], second[:3]]), torch.cat([first[3:], second[3:]]), margin=0.2)


def main() -> None:
    assert torch.cuda.is_available(), "no CUDA device"
    flat = [t for batch in TEXTS for t in batch]
    cpu = build_tiny_encoder(seed=5).encode(flat)
    gpu_model = build_tiny_encoder(seed=5).cuda()
    gpu = gpu_model.encode(flat)
    parity = float(abs(cpu - gpu).max())

    grad_diff = run_cached_vs_full(TEXTS, loss, train=True, device="cuda")  # asserts loss and every gradient

    with torch.autocast("cuda", dtype=torch.bfloat16), torch.no_grad():
        bf16 = gpu_model({k: v.cuda() for k, v in gpu_model.tokenize(flat).items()}).float().cpu().numpy()
    result = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cpu_gpu_max_abs_diff_fp32": parity,
        "cached_vs_full_max_grad_diff_fp64_dropout": grad_diff,
        "bf16_vs_fp32_max_abs_diff": float(abs(bf16 - cpu).max()),
    }
    out = Path(os.environ.get("OUT", Path(__file__).parent / "results"))
    out.mkdir(exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    assert parity < 1e-4 and grad_diff < 1e-9, result


if __name__ == "__main__":
    main()
