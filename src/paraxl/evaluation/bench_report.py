"""What the benchmark scripts (``benchmarks/``) share in their reports: the CPU they ran on, and the
writing of a report as ``<stem>.json`` and ``<stem>.md``.

Speed numbers mean little without the machine: the CPU model, the instruction-set flags that pick
the matmul kernels (AVX-512, VNNI, AMX: int8 and bf16 speed-ups hinge on them) and the cores this
process may use. Provenance beyond the machine (library versions, git commit) is
:mod:`paraxl.evaluation.results`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paraxl.io.atomic import atomic_path
from paraxl.modeling.threads import available_cpus, physical_cores

CPUINFO = Path("/proc/cpuinfo")


# the instruction sets that decide CPU inference speed here: AVX2/AVX-512 GEMMs, VNNI int8, bf16, AMX
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8")


def cpu_info(flags: Sequence[str] = CPU_FLAGS, cpuinfo: Path = CPUINFO) -> dict[str, Any]:
    """The CPU ``model``, whether it has each of ``flags`` (Linux /proc/cpuinfo names; all False where
    the file is unreadable), and the CPUs this process may use (``available_cpus``, ``physical_cores``)."""
    model, found = "unknown", set[str]()
    try:
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not found:
                found = set(value.split())
    except OSError:
        pass
    return {
        "model": model,
        "flags": {flag: flag in found for flag in flags},
        "available_cpus": len(available_cpus()),
        "physical_cores": physical_cores(),
    }


def present_flags(cpu: dict[str, Any]) -> list[str]:
    """The flags :func:`cpu_info` found, in the order asked for."""
    return [flag for flag, present in cpu["flags"].items() if present]


def write_report(stem: Path, document: dict[str, Any], markdown: str) -> None:
    """``document`` as ``<stem>.json`` and ``markdown`` as ``<stem>.md``, each written atomically."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".json", json.dumps(document, indent=2) + "\n"), (".md", markdown)):
        with atomic_path(stem.with_suffix(suffix), suffix=suffix) as tmp:
            tmp.write_text(text, encoding="utf-8")
