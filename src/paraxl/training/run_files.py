"""The files of a run's output folder that the trainer writes besides checkpoints and models.

``config.json`` (the validated config; a resume must match it), ``metrics.jsonl`` (one JSON
object per logged step or evaluation) and ``summary.json``; each JSON file is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from paraxl.errors import InputError
from paraxl.io.atomic import atomic_path, write_json_atomic
from paraxl.io.outputs import check_output as check_writable
from paraxl.training.checkpoint import latest_checkpoint
from paraxl.training.config import TrainConfig, upgrade_record


def check_output(output: Path, config: TrainConfig, overwrite: bool) -> None:
    """Refuse a finished run's folder, and checkpoints of a run with another config (unless ``overwrite``)."""
    check_writable(output, "folder")  # before anything is loaded or written
    config_file = output / "config.json"
    if (output / "summary.json").exists() and not overwrite:
        raise InputError("holds a finished run; choose another output_dir or pass --overwrite", output)
    if overwrite or not config_file.exists() or latest_checkpoint(output) is None:
        return
    try:
        previous = upgrade_record(json.loads(config_file.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"unreadable ({type(exc).__name__}), so its checkpoints cannot be matched to this config; "
            "restore it, or pass --overwrite to start over",
            config_file,
        ) from None
    current = config.model_dump(mode="json")
    changed = sorted(key for key in current if previous.get(key) != current[key] and key != "max_steps")
    if changed:
        raise InputError(
            f"has checkpoints of a run with a different config ({', '.join(changed)} differ); "
            "resume with the same config, or choose another output_dir",
            output,
        )


def write_json(path: Path, payload: object) -> None:
    write_json_atomic(path, payload, indent=2)


def truncate_metrics(path: Path, step: int) -> str | None:
    """Drop log lines beyond the resumed step (those steps are about to be redone; ``step`` -1:
    a fresh start, every line goes) and a torn last line; a note when a torn line was dropped.

    A line is appended in one write, so a run killed mid-write can leave only the last line
    torn: it is dropped. A broken line before it is no crash's doing: InputError at its line.
    """
    if not path.exists():
        return None
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept, note = [], None
    for number, line in enumerate(lines, 1):
        logged = _logged_step(line)
        if logged is None and number == len(lines):
            note = f"{path}: dropped a torn last line (line {number}), left by an interrupted write"
        elif logged is None:
            raise InputError("not a JSON object of the training log; fix or delete this line", path, number)
        elif logged <= step:
            kept.append(line)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    return note


def _logged_step(line: str) -> int | None:
    """The step of a log line (0 when it names none); None: not a record the trainer writes."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    step = record.get("step", 0) if isinstance(record, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


def append_metrics(path: Path, record: dict[str, object]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
