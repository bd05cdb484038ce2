"""Weight averaging ("model soup", Wortsman et al. 2022): one model from several fine-tuned ones.

Fine-tuning runs that start from the same weights and differ only in seed (data order,
dropout) usually stay in one loss basin, so the element-wise mean of their parameters is a
model in its own right, often better than each run, at the inference cost of one. Averaging
only makes sense for runs of one architecture, tokenizer and sentence-transformers layout,
so every file other than the weights must agree before anything is written.

It lives in ``paraxl.loading`` because it must drop the files every inference backend derives
from the old weights (``backends.EXPORT_DIRS``), and this is the layer that knows all backends.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from paraxl.errors import InputError, ModelFormatError
from paraxl.io.atomic import atomic_directory
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.io.locks import LOCK_FILE
from paraxl.io.outputs import check_output
from paraxl.loading.backends import EXPORT_DIRS
from paraxl.modeling.finite import check_finite_tensors

WEIGHTS_FILE = "model.safetensors"
PROVENANCE_FILE = "soup.json"
# config.json keys that record where or with what a folder was written, not what it computes
_CONFIG_BOOKKEEPING = ("_name_or_path", "transformers_version")


def average_models(folders: Sequence[Path], output: Path, weights: Sequence[float] | None = None) -> Path:
    """Write the weighted mean of ``folders``' parameters to ``output`` (a new model folder).

    ``folders`` must name 2 or more distinct folders. ``weights`` (default: uniform) are
    normalized to sum to 1. Floating-point tensors are averaged in float64 and cast back to
    their dtype; integer tensors (buffers such as ``position_ids``) must be equal in every
    model. Everything but the weights file is copied from the first folder after checking the
    others hold the same files.
    """
    folders = [Path(folder) for folder in folders]
    _check_distinct(folders)
    shares = _normalized_weights(weights, len(folders))
    _check_output(output, folders)
    layout = _shared_layout(folders)
    averaged = _average_tensors(folders, shares)
    check_finite_tensors(averaged, f"{output}: the averaged weights")
    with atomic_directory(output) as tmp:
        for relative in layout:
            (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folders[0] / relative, tmp / relative)
        save_file(averaged, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        provenance = {
            "method": "weighted mean of parameters (model soup)",
            "sources": [
                {"path": str(folder.resolve()), "fingerprint": model_folder_fingerprint(folder), "weight": share}
                for folder, share in zip(folders, shares, strict=True)
            ],
        }
        (tmp / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    return output


def _check_distinct(folders: Sequence[Path]) -> None:
    # A "soup" of one folder (or of one folder named twice) is a copy of that model, or the model
    # with a rescaled weight: almost surely a mistake in the list, so it is refused.
    if len({folder.resolve() for folder in folders}) < 2:
        named = ", ".join(str(folder) for folder in folders) or "none"
        raise InputError(f"a soup needs 2 or more distinct model folders, got {named}")


def _normalized_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    if len(weights) != count:
        raise InputError(f"{len(weights)} weight(s) for {count} model(s): give one weight per model")
    # NaN fails `> 0`; infinity (or a sum that overflows) would make every share 0 or NaN
    if any(not (math.isfinite(weight) and weight > 0) for weight in weights):
        raise InputError(f"weights must be finite positive numbers, got {list(weights)}")
    total = sum(float(weight) for weight in weights)  # (math.fsum raises on overflow)
    if not math.isfinite(total):
        raise InputError(f"weights must sum to a finite number, got {list(weights)} (scale them down)")
    return [float(weight) / total for weight in weights]


def _check_output(output: Path, folders: Sequence[Path]) -> None:
    """Never replace an existing folder, least of all one of the soup's own ingredients."""
    if any(output.resolve() == folder.resolve() for folder in folders):
        raise InputError(f"{output}: the output is one of the input models; choose a new folder")
    if output.exists():
        raise InputError(f"{output}: already exists; choose a new folder (a soup never overwrites)")
    check_output(output, "folder")


def _shared_layout(folders: Sequence[Path]) -> list[Path]:
    """The relative paths of the first folder's non-weight files, checked equal in every folder."""
    for folder in folders:
        if not (folder / WEIGHTS_FILE).is_file():
            raise ModelFormatError(f"{folder}: no {WEIGHTS_FILE} (a soup averages safetensors model folders)")
    first = folders[0]
    layout = sorted(_non_weight_files(first))
    for folder in folders[1:]:
        other = sorted(_non_weight_files(folder))
        if other != layout:
            differing = sorted(set(other) ^ set(layout))
            raise ModelFormatError(f"{folder}: its files differ from {first}'s: {', '.join(map(str, differing))}")
        for relative in layout:
            if not _same_content(first / relative, folder / relative):
                raise ModelFormatError(
                    f"{folder / relative}: differs from {first / relative}; only models of one architecture, "
                    "tokenizer and pooling can be averaged"
                )
    return layout


def _non_weight_files(folder: Path) -> set[Path]:
    """Every file but the weights, the provenance, inference exports (made from the old weights) and a
    writer's lock file (an empty one stays behind when a `calibrate` is killed)."""
    return {
        path.relative_to(folder)
        for path in folder.rglob("*")
        if path.is_file()
        and path.name not in (WEIGHTS_FILE, PROVENANCE_FILE, LOCK_FILE)
        and path.relative_to(folder).parts[0] not in EXPORT_DIRS
    }


def _same_content(first: Path, second: Path) -> bool:
    if first.name == "config.json":
        return _config_without_bookkeeping(first) == _config_without_bookkeeping(second)
    return first.read_bytes() == second.read_bytes()


def _config_without_bookkeeping(path: Path) -> dict[str, object]:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({exc})") from None
    return {key: value for key, value in config.items() if key not in _CONFIG_BOOKKEEPING}


def _average_tensors(folders: Sequence[Path], shares: Sequence[float]) -> dict[str, torch.Tensor]:
    """Load one model at a time: peak memory is one model plus a float64 accumulator (~3x one model)."""
    first = _load(folders[0])
    # (shape, dtype) of each parameter of the first model: every other model must match it
    reference = {name: (t.shape, t.dtype) for name, t in first.items()}
    sums = {name: t.double() * shares[0] if t.is_floating_point() else t for name, t in first.items()}
    del first
    for folder, share in zip(folders[1:], shares[1:], strict=True):
        tensors = _load(folder)
        if tensors.keys() != sums.keys():
            differing = sorted(set(tensors) ^ set(sums))[:5]
            raise ModelFormatError(f"{folder / WEIGHTS_FILE}: other parameter names than {folders[0]} ({differing})")
        for name, tensor in tensors.items():
            shape, dtype = reference[name]
            if tensor.shape != shape or tensor.dtype != dtype:
                raise ModelFormatError(
                    f"{folder / WEIGHTS_FILE}: {name} is {tuple(tensor.shape)} {tensor.dtype}, "
                    f"{folders[0]} has {tuple(shape)} {dtype}"
                )
            if tensor.is_floating_point():
                sums[name] += tensor.double() * share
            elif not torch.equal(tensor, sums[name]):
                raise ModelFormatError(f"{folder / WEIGHTS_FILE}: integer tensor {name} differs; it cannot be averaged")
    return {name: total.to(reference[name][1]).contiguous() for name, total in sums.items()}


def _load(folder: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(folder / WEIGHTS_FILE))
    except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
        raise ModelFormatError(f"{folder / WEIGHTS_FILE}: not a readable safetensors file ({exc})") from None
