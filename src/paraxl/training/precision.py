"""Training precision: ``auto`` picks bf16 autocast where the hardware computes bf16 natively.

On a CPU, bf16 matrix products are only fast with native instructions (AVX-512-BF16 or AMX):
elsewhere oneDNN emulates them and autocast is slower than float32, so ``auto`` falls back to
float32 there. Master weights, optimizer state and the loss stay float32 in every case (the
trainer's step casts embeddings back to float32 before the loss).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from pathlib import Path
from typing import Literal

import torch

Precision = Literal["fp32", "bf16"]
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flag names (Linux)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags as Linux reports them (empty where /proc/cpuinfo is absent)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def native_bf16_cpu(flags: set[str] | None = None) -> bool:
    """Whether this CPU has native bf16 arithmetic: an AVX-512-BF16 or AMX-BF16 flag, or torch's
    own capability probe naming AMX (for systems without /proc/cpuinfo)."""
    found = cpu_flags() if flags is None else flags
    if found:
        return any(flag in found for flag in NATIVE_BF16_FLAGS)
    return "AMX" in torch.backends.cpu.get_cpu_capability()


def resolve_precision(setting: str, device: torch.device, flags: set[str] | None = None) -> Precision:
    """``fp32``/``bf16`` as given; ``auto``: bf16 on a CUDA device that supports it or a CPU with
    native bf16 (see :func:`native_bf16_cpu`), else fp32."""
    if setting == "fp32":
        return "fp32"
    if setting == "bf16":
        return "bf16"
    if setting != "auto":
        raise ValueError(f"precision must be auto, fp32 or bf16, not {setting!r}")
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and native_bf16_cpu(flags) else "fp32"


def autocast_for(precision: Precision, device: torch.device) -> Callable[[], AbstractContextManager[object]]:
    """A factory of the context that wraps each forward pass: bf16 autocast, or nothing for fp32."""
    if precision == "bf16":
        return partial(torch.autocast, device_type=device.type, dtype=torch.bfloat16)
    return nullcontext
