"""Resumable checkpoints: model, optimizer, scheduler, RNG and the trainer's position.

Each checkpoint is one folder ``checkpoints/step-NNNNNNN`` written atomically (temp
folder + rename), so a run killed at any instant leaves only complete checkpoints.
Optimizer/scheduler/RNG states are tensors and plain containers, loaded with
``weights_only=True`` (no arbitrary unpickling).

A checkpoint's last file is ``manifest.json``: the sha256 of every other file. A checkpoint
damaged later (a full disk, a copy cut short, a byte flipped) is recognised before anything
of it is loaded (:func:`verify_checkpoint`); checkpoints written before manifests existed are
loaded unverified (see :mod:`paraxl.training.resume` for the fallback to an older one).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from paraxl.errors import InputError, ModelFormatError
from paraxl.io.atomic import atomic_directory
from paraxl.modeling.bi_encoder import BiEncoder

CHECKPOINTS = "checkpoints"
MANIFEST = "manifest.json"
_PREFIX = "step-"
_STEP_FOLDER = re.compile(r"step-(\d+)")


class CheckpointDamaged(ModelFormatError):
    """A checkpoint whose files are missing, differ from its manifest, or cannot be loaded."""


@dataclass
class TaskProgress:
    """One task of a multi-task run: its sampler position and what it has trained."""

    epoch: int = 0  # the task's next batch is batch ``batch`` of its epoch ``epoch``
    batch: int = 0
    steps: int = 0  # optimiser steps that trained this task
    examples: int = 0  # groups of this task trained on


@dataclass
class TrainerState:
    step: int = 0  # optimiser steps done
    epoch: int = 0  # sampler position: the next batch is batch ``batch`` of epoch ``epoch`` (one task)
    batch: int = 0
    examples: int = 0  # groups trained on
    elapsed_s: float = 0.0  # training time before this run (resumes add to it)
    best_metric: float | None = None
    best_step: int | None = None
    # multi-task runs: each task's position and counts, by task name (epoch/batch above stay 0);
    # None for one task, whose state.json is then what it was before multi-task runs existed
    tasks: dict[str, TaskProgress] | None = None

    def record(self) -> dict[str, Any]:
        """The JSON object of ``state.json``."""
        record = asdict(self)
        if self.tasks is None:
            del record["tasks"]
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TrainerState:
        """The inverse of :meth:`record`; TypeError/AttributeError on a record of another shape."""
        fields = dict(record)
        tasks = fields.pop("tasks", None)
        if tasks is not None:
            fields["tasks"] = {str(name): TaskProgress(**progress) for name, progress in tasks.items()}
        return cls(**fields)


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
        (tmp / "state.json").write_text(json.dumps(state.record(), indent=2) + "\n")
        write_manifest(tmp)  # last: it vouches for everything above
    for old in list_checkpoints(output_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def write_manifest(folder: Path) -> None:
    """``manifest.json``: ``{"files": {relative path: sha256}}`` of every file in ``folder``."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / MANIFEST)
    digests = {p.relative_to(folder).as_posix(): _sha256(p) for p in files}
    (folder / MANIFEST).write_text(json.dumps({"files": digests}, indent=2) + "\n")


def verify_checkpoint(checkpoint: Path) -> bool:
    """True: every file of the manifest is there with its checksum; False: no manifest (a
    checkpoint from before manifests, loaded unverified). CheckpointDamaged otherwise."""
    manifest = checkpoint / MANIFEST
    if not manifest.exists():
        return False
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        listed = {str(name): str(digest) for name, digest in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointDamaged(f"{MANIFEST} is unreadable ({type(exc).__name__})") from None
    if "state.json" not in listed:
        raise CheckpointDamaged(f"{MANIFEST} does not list state.json")
    for name, digest in listed.items():
        path = checkpoint / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise CheckpointDamaged(f"{MANIFEST} names a file outside the checkpoint ({name!r})")
        if not path.is_file():
            raise CheckpointDamaged(f"{name} is missing")
        if _sha256(path) != digest:
            raise CheckpointDamaged(f"{name} differs from its checksum: truncated or changed since it was written")
    return True


def _sha256(path: Path) -> str:
    """The file's bytes as they are now (no cache: a damaged file may keep its size and time)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def list_checkpoints(output_dir: Path) -> list[Path]:
    """Checkpoint folders (``step-N``), oldest first; temp folders of an interrupted write and
    checkpoints set aside as damaged have other names and are not listed."""
    folder = output_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _STEP_FOLDER.fullmatch(p.name) and p.is_dir()]
    return sorted(found, key=lambda p: int(p.name.removeprefix(_PREFIX)))


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def load_trainer_state(checkpoint: Path) -> TrainerState:
    try:
        return TrainerState.from_record(json.loads((checkpoint / "state.json").read_text()))
    except (OSError, ValueError, TypeError, AttributeError) as exc:
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
        # not damage: the same checkpoint resumes with the right number of processes
        raise InputError(f"saved by {len(rng_states)} processes; resume with as many", checkpoint)
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
