"""Resumable checkpoints: model, optimizer, scheduler, RNG and the trainer's position.

Each checkpoint is one folder ``checkpoints/step-NNNNNNN`` written atomically (temp
folder + rename), so a run killed at any instant leaves only complete checkpoints.
Optimizer/scheduler/RNG states are tensors and plain containers, loaded with
``weights_only=True`` (no arbitrary unpickling).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from paraxl.errors import ModelFormatError
from paraxl.io.atomic import atomic_directory
from paraxl.modeling.bi_encoder import BiEncoder

CHECKPOINTS = "checkpoints"
_PREFIX = "step-"


@dataclass
class TrainerState:
    step: int = 0  # optimiser steps done
    epoch: int = 0  # sampler position: the next batch is batch ``batch`` of epoch ``epoch``
    batch: int = 0
    examples: int = 0  # groups trained on
    elapsed_s: float = 0.0  # training time before this run (resumes add to it)
    best_metric: float | None = None
    best_step: int | None = None


def save_checkpoint(
    output_dir: Path,
    model: BiEncoder,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: TrainerState,
    keep: int,
    rng_states: list[dict[str, Any]],
) -> Path:
    """Write a checkpoint (main process only); ``rng_states`` holds every process's RNG state, by rank."""
    target = output_dir / CHECKPOINTS / f"{_PREFIX}{state.step:07d}"
    with atomic_directory(target) as tmp:
        model.save(tmp / "model")
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rng_states, tmp / "rng.pt")
        (tmp / "state.json").write_text(json.dumps(asdict(state), indent=2) + "\n")
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temp folders of an interrupted write are ignored)."""
    folder = output_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(_PREFIX) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.removeprefix(_PREFIX)))


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def load_trainer_state(checkpoint: Path) -> TrainerState:
    try:
        return TrainerState(**json.loads((checkpoint / "state.json").read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ModelFormatError(f"{checkpoint}: unreadable trainer state ({exc})") from None


def restore_optimizer(
    checkpoint: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rank: int,
) -> None:
    """Restore optimizer, scheduler and this process's RNG stream."""
    optimizer.load_state_dict(torch.load(checkpoint / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(checkpoint / "scheduler.pt", weights_only=True))
    rng_states = torch.load(checkpoint / "rng.pt", weights_only=True)
    if rank >= len(rng_states):
        raise ModelFormatError(f"{checkpoint}: saved by {len(rng_states)} processes; resume with as many")
    _set_rng_state(rng_states[rank])


def rng_state() -> dict[str, Any]:
    """This process's RNG state (CPU and every CUDA device)."""
    return {
        "cpu": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
