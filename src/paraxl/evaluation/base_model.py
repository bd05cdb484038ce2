"""The base a fine-tuned model started from, as paraxl's training recorded it.

paraxl's trainer writes the run's validated config as ``config.json`` in its output folder, and
the model beside it (``final/``, ``best/``, ``checkpoints/step-N/model``); the config's
``model.name`` is the model the run started from. The model folder itself carries no record of
its base (its own ``config.json`` is the transformer's), so the base is read from the first folder
above it that holds a paraxl training config, at most three levels up.

A relative ``model.name`` was relative to the folder training ran in. When it is not found from
here, that folder is recovered from the recorded ``output_dir`` (the run folder's path ends with
it), so ``paraxl eval`` finds the base from anywhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAINING_CONFIG = "config.json"
_SPEC_PREFIXES = ("bundled:", "hub:")
_LEVELS = 3  # final/ and best/ sit one level below the run, a checkpoint's model/ three


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
    if not isinstance(config, dict) or not {"model", "loss", "output_dir"} <= config.keys():
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
    for run_folder in list(folder.resolve().parents)[:_LEVELS]:
        path = run_folder / TRAINING_CONFIG
        config = _training_config(path) if path.is_file() else None
        if config is not None:
            spec = _located(config["model"]["name"].strip(), run_folder, config.get("output_dir"))
            return RecordedBase(spec, path)
    return None
