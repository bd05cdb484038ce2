"""Which checkpoint a run resumes from: the newest intact one.

Checkpoints are tried newest first. One whose files differ from its manifest (or, for a
checkpoint written before manifests, one that fails to load) is reported in one line and
moved aside to ``checkpoints/damaged-step-N``, where it no longer counts as a checkpoint (nor
wins over the intact ones when old checkpoints are pruned); the next older one is tried. When
none is intact the run starts over. Also here: the temp folders a killed checkpoint write
leaves behind, removed at start.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import torch

from paraxl.errors import ModelFormatError
from paraxl.training.checkpoint import CHECKPOINTS, CheckpointDamaged, list_checkpoints, verify_checkpoint

T = TypeVar("T")

DAMAGED_PREFIX = "damaged-"
# the names io.atomic.atomic_directory gives a checkpoint being written (.tmp) or replaced (.old):
# "." + the checkpoint's name + "." + tempfile's 8 random characters + suffix; nothing else matches
_TEMP_FOLDER = re.compile(r"\.step-\d+\.[a-z0-9_]{8}\.(tmp|old)")


@dataclass(frozen=True)
class Resumed(Generic[T]):
    checkpoint: Path
    loaded: T  # what ``load`` returned for it
    verified: bool  # False: written before manifests, loaded without checksums


def newest_intact(
    output_dir: Path, load: Callable[[Path], T], say: Callable[[str], None], is_main: bool
) -> tuple[Resumed[T] | None, int]:
    """The newest checkpoint that verifies and loads (None: there is none), and how many were damaged.

    ``load`` reads a checkpoint; it runs only after the checkpoint's checksums are verified, so
    a damaged file is never unpickled or parsed. Only the main process (``is_main``) moves
    damaged checkpoints aside; every process reaches the same verdict on the same files.
    """
    damaged = 0
    for checkpoint in reversed(list_checkpoints(output_dir)):
        try:
            verified = verify_checkpoint(checkpoint)
            loaded = _load(checkpoint, load, verified)
        except CheckpointDamaged as exc:
            damaged += 1
            where = _set_aside(checkpoint) if is_main else checkpoint
            say(f"checkpoint {checkpoint} is damaged ({exc}); set aside as {where.name}; trying an older one")
            continue
        return Resumed(checkpoint, loaded, verified), damaged
    return None, damaged


def _load(checkpoint: Path, load: Callable[[Path], T], verified: bool) -> T:
    try:
        return load(checkpoint)
    except torch.OutOfMemoryError:
        raise  # the machine, not the checkpoint
    except Exception as exc:  # whatever a damaged file makes a reader raise
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if verified:
            # its files are the ones written: not damage, so no fallback (it would set aside every checkpoint)
            raise ModelFormatError(f"{checkpoint}: its files match their checksums but do not load ({reason})") from exc
        raise CheckpointDamaged(f"no manifest, and it does not load: {reason}") from None


def _set_aside(checkpoint: Path) -> Path:
    """Rename ``step-N`` to ``damaged-step-N`` (replacing an earlier one of that name)."""
    target = checkpoint.with_name(DAMAGED_PREFIX + checkpoint.name)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    checkpoint.rename(target)
    return target


def remove_stale_temp_folders(output_dir: Path) -> str | None:
    """Remove the temp folders of checkpoint writes killed midway; a one-line note, or None.

    Only folders named as :func:`paraxl.io.atomic.atomic_directory` names a checkpoint's temp
    folder are touched; anything else in the checkpoints folder is left alone.
    """
    folder = output_dir / CHECKPOINTS
    if not folder.is_dir():
        return None
    stale = [p for p in folder.iterdir() if _TEMP_FOLDER.fullmatch(p.name) and p.is_dir() and not p.is_symlink()]
    if not stale:
        return None
    size = sum(f.stat().st_size for p in stale for f in p.rglob("*") if f.is_file() and not f.is_symlink())
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return (
        f"removed {len(stale)} temp folder(s) left by an interrupted checkpoint write ({size / 1e6:.1f} MB) in {folder}"
    )
