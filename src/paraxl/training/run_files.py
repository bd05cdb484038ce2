"""The files of a run's output folder that the trainer writes besides checkpoints and models.

``config.json`` (the validated config; a resume must match it), ``metrics.jsonl`` (one JSON
object per logged step or evaluation) and ``summary.json``; each JSON file is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from paraxl.errors import InputError
from paraxl.io.atomic import atomic_path
from paraxl.training.checkpoint import latest_checkpoint
from paraxl.training.config import TrainConfig, upgrade_record


def check_output(output: Path, config: TrainConfig, overwrite: bool) -> None:
    """Refuse a finished run's folder, and checkpoints of a run with another config (unless ``overwrite``)."""
    config_file = output / "config.json"
    if (output / "summary.json").exists() and not overwrite:
        raise InputError("holds a finished run; choose another output_dir or pass --overwrite", output)
    if overwrite or not config_file.exists() or latest_checkpoint(output) is None:
        return
    previous = upgrade_record(json.loads(config_file.read_text()))
    current = config.model_dump(mode="json")
    changed = sorted(key for key in current if previous.get(key) != current[key] and key != "max_steps")
    if changed:
        raise InputError(
            f"has checkpoints of a run with a different config ({', '.join(changed)} differ); "
            "resume with the same config, or choose another output_dir",
            output,
        )


def write_json(path: Path, payload: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines beyond the resumed step: those steps are about to be redone."""
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines() if json.loads(line).get("step", 0) <= step]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def append_metrics(path: Path, record: dict[str, object]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
