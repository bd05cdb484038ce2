"""Result documents: one JSON per task with the provenance a reader needs to trust or redo it.

A document holds the task record, the model (spec, folder, fingerprint of the files that
decide its vectors), paraxl's version and git commit, library versions, the sha256 of every
data file read, protocol, seed, timing, and the task's scores and details. Files are written
atomically: a crash leaves the previous result or none, never half of one.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import subprocess
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from paraxl.errors import InputError
from paraxl.evaluation.tasks.base import TaskResult, TaskSpec
from paraxl.io.atomic import atomic_path
from paraxl.io.hashing import data_file_records

SCHEMA_VERSION = 1
_LIBRARIES = ("torch", "transformers", "sentence-transformers", "numpy", "scikit-learn", "scipy", "faiss-cpu")


@dataclass(frozen=True)
class ModelInfo:
    spec: str
    folder: str | None
    fingerprint: str | None  # sha256 over weights/config/tokenizer files; None for an in-memory model


def json_ready(value: Any) -> Any:
    """Recursively turn NaN/inf into None and numpy scalars into Python ones (strict JSON)."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@lru_cache(maxsize=1)
def git_commit() -> dict[str, Any] | None:
    """The commit of the paraxl checkout this code runs from, and whether it has local changes."""
    root = Path(__file__).resolve().parents[3]
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": bool(status.strip())}


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def result_document(
    result: TaskResult,
    spec: TaskSpec,
    model: ModelInfo,
    data_dir: Path,
    protocol: str,
    seed: int,
    seconds: float,
    embedding_stats: dict[str, int],
) -> dict[str, Any]:
    from paraxl.version import __version__

    document = {
        "schema_version": SCHEMA_VERSION,
        "task": asdict(spec),
        "main_score": result.main_score,
        "model": asdict(model),
        "paraxl": {"version": __version__, "git": git_commit()},
        "libraries": library_versions(),
        "data": {"data_dir": str(data_dir), "files": data_file_records(result.files, data_dir)},
        "protocol": protocol,
        "seed": seed,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(seconds, 2),
        "embeddings": embedding_stats,
        "scores": result.scores,
        "details": result.details,
    }
    cleaned: dict[str, Any] = json_ready(document)
    return cleaned


def write_document(path: Path, document: dict[str, Any]) -> None:
    """Write strict JSON atomically (NaN already mapped to null)."""
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def read_document(path: Path) -> dict[str, Any]:
    """Load a result document written by :func:`write_document`."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("result file not found", path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a paraxl result file: {exc}", path) from None
    if not isinstance(document, dict) or "task" not in document or "scores" not in document:
        raise InputError("not a paraxl result file (no task/scores)", path)
    return document
