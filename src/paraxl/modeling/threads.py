"""How many threads the inference backends use, chosen on purpose and reported (benchmarks record it).

* **intra-op threads = physical cores this process may run on** (its affinity mask: ``taskset``, a
  container's cpuset). Encoding is a chain of matmuls; one thread per physical core keeps each core's
  vector units busy, and a second thread on a hyper-thread sibling shares those units, so it adds
  synchronisation, not FLOPs. A thread per core of the whole host (what a library that ignores the
  affinity mask starts) oversubscribes a container and makes every parallel region wait for threads
  that are not running.
* **inter-op threads**: a BERT forward pass is one sequential chain of operators, with nothing to run
  side by side. ONNX Runtime gets 1 (its sequential executor uses none anyway); torch's inter-op pool
  starts only for ``torch.jit.fork`` and the like, which encoding never calls, so it is left as it is
  (torch refuses to resize it once any parallel work has run) and only recorded.

``configure_torch_threads`` only ever lowers torch's intra-op count (a user who asked for fewer threads,
with ``torch.set_num_threads`` or ``OMP_NUM_THREADS``, keeps them); ONNX Runtime's session options
(``paraxl.inference.onnx_files.session_options``) use :func:`physical_cores` directly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = [
    "available_cpus",
    "configure_torch_threads",
    "intra_op_threads",
    "physical_cores",
    "torch_thread_settings",
]

_CPU_SYSFS = Path("/sys/devices/system/cpu")


def available_cpus() -> list[int]:
    """Logical CPUs this process may run on (its affinity mask)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))  # pragma: no cover (macOS, Windows)


def physical_cores() -> int:
    """Physical cores among :func:`available_cpus` (hyper-thread siblings counted once); at least 1.

    Read from sysfs (``topology/physical_package_id`` + ``core_id``); a CPU whose topology cannot be
    read counts as a core of its own.
    """
    cores: set[tuple[str, str]] = set()
    for cpu in available_cpus():
        topology = _CPU_SYSFS / f"cpu{cpu}" / "topology"
        try:
            package = (topology / "physical_package_id").read_text().strip()
            core = (topology / "core_id").read_text().strip()
        except OSError:
            package, core = "cpu", str(cpu)
        cores.add((package, core))
    return max(1, len(cores))


def intra_op_threads() -> int:
    """Threads for one ONNX Runtime session: :func:`physical_cores`, lowered by ``OMP_NUM_THREADS`` when
    that is a smaller positive number (as torch reads it), so N worker processes sharing a machine can
    each be given cores/N (``paraxl encode-corpus`` does so) instead of each starting a thread per core."""
    cores = physical_cores()
    asked = os.environ.get("OMP_NUM_THREADS", "").strip()
    if asked.isdigit() and int(asked) > 0:
        return min(cores, int(asked))
    return cores


def configure_torch_threads() -> dict[str, Any]:
    """Cap torch's intra-op threads at :func:`physical_cores` (never raise them); the settings now in force."""
    import torch

    cores = physical_cores()
    if torch.get_num_threads() > cores:
        torch.set_num_threads(cores)
    return torch_thread_settings()


def torch_thread_settings() -> dict[str, Any]:
    """What torch runs with, for a benchmark's record."""
    import torch

    return {
        "intra_op_threads": torch.get_num_threads(),
        "inter_op_threads": torch.get_num_interop_threads(),
        "physical_cores": physical_cores(),
        "available_cpus": len(available_cpus()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }
