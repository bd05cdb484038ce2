"""The base a fine-tuned model started from, as paraxl's training recorded it.

paraxl's trainer writes the run's validated config as ``config.json`` in its output folder, and
the model beside it (``final/``, ``best/``, ``checkpoints/step-N/model``); the config's
``model.name`` is the model the run started from. The model folder itself carries no record of
its base (its own ``config.json`` is the transformer's), so the base is read from the run folder
that wrote it: only a folder where the trainer puts models (``RUN/final``, ``RUN/best``,
``RUN/checkpoints/step-N/model``) has one, and only when ``RUN`` holds a paraxl training config
(one task: ``loss``; several: ``tasks``). A model folder anywhere else (say a copy inside another
run's folder) has no recorded base: that run's config is not its record.

A relative ``model.name`` was relative to the folder training ran in. When it is not found from
here, that folder is recovered from the recorded ``output_dir`` (the run folder's path ends with
it), so ``paraxl eval`` finds the base from anywhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAINING_CONFIG = "config.json"
_SPEC_PREFIXES = ("bundled:", "hub:")
_RUN_MODELS = ("final", "best")  # model folders the trainer writes in the run folder itself
_CHECKPOINT = re.compile(r"step-\d+")  # RUN/checkpoints/step-N/model (paraxl.training.checkpoint)


@dataclass(frozen=True)
class RecordedBase:
    spec: str  # the model spec to evaluate as the base
    record: Path  # the training config it was read from

    @property
    def reason(self) -> str:
        return f"recorded by training in {self.record} (model.name)"


def _training_config(path: Path) -> dict[str, Any] | None:
    """``path`` as a paraxl training config (model.name, loss, output_dir); None for any other file."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    # a one-task record has `loss`, a multi-task one `tasks` (its losses are in the blocks)
    if not isinstance(config, dict) or not {"model", "output_dir"} <= config.keys():
        return None
    if "loss" not in config and "tasks" not in config:
        return None
    model = config["model"]
    if not isinstance(model, dict) or not isinstance(model.get("name"), str) or not model["name"].strip():
        return None
    return config


def _located(name: str, run_folder: Path, output_dir: Any) -> str:
    """``name`` as recorded, or re-rooted at the folder training ran in when it names a local path not found here."""
    if name.startswith(_SPEC_PREFIXES) or Path(name).expanduser().is_absolute() or Path(name).exists():
        return name
    if not isinstance(output_dir, str) or Path(output_dir).is_absolute():
        return name
    recorded = Path(output_dir).parts
    run_parts = run_folder.resolve().parts
    if not recorded or run_parts[len(run_parts) - len(recorded) :] != recorded:
        return name
    training_cwd = Path(*run_parts[: len(run_parts) - len(recorded)])
    candidate = training_cwd / name
    return str(candidate) if candidate.exists() else name


def recorded_base(model: str) -> RecordedBase | None:
    """The base of the model folder ``model`` if paraxl's training recorded one above it; else None.

    ``model`` that is not a local folder (``bundled:...``, ``hub:...``) has no recorded base.
    """
    if model.startswith(_SPEC_PREFIXES):
        return None
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return None
    run_folder = _run_folder(folder.resolve())
    if run_folder is None:
        return None
    path = run_folder / TRAINING_CONFIG
    config = _training_config(path) if path.is_file() else None
    if config is None:
        return None
    spec = _located(config["model"]["name"].strip(), run_folder, config.get("output_dir"))
    return RecordedBase(spec, path)


def _run_folder(folder: Path) -> Path | None:
    """The run folder of ``folder`` if it is where paraxl's trainer writes a model; None otherwise."""
    if folder.name in _RUN_MODELS:
        return folder.parent
    step, checkpoints = folder.parent, folder.parent.parent
    if folder.name == "model" and _CHECKPOINT.fullmatch(step.name) and checkpoints.name == "checkpoints":
        return checkpoints.parent
    return None
