"""Result documents: one JSON per task with the provenance a reader needs to trust or redo it.

A document holds the task record, the model (spec, folder, fingerprint of the files that
decide its vectors), paraxl's version and git commit, library versions, the sha256 of every
data file read, protocol, seed, timing, and the task's scores and details. Files are written
atomically: a crash leaves the previous result or none, never half of one.

In memory a document is a frozen :class:`ResultDocument`; its ``scores`` attribute is the typed
:class:`~paraxl.evaluation.scores.TaskScores` record, the task's JSON ``scores`` and ``details``
stay available as ``raw_scores`` and ``details``.

Schema versions (``schema_version``; :meth:`ResultDocument.from_json` reads both):
    1  every key below except ``score_record``.
    2  adds ``score_record`` (headline, per_language, per_subset, extras): the typed record as
       the writing paraxl's reader made it of ``scores``, for consumers without paraxl. Every
       other key, its meaning and layout are those of version 1. paraxl itself always derives
       the record from ``scores`` (:mod:`paraxl.evaluation.readers`), so a version-1 and a
       version-2 file with the same ``scores`` read the same.

Both versions may carry ``model.backend`` (the inference backend that ran; absent in older files).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from paraxl.errors import InputError
from paraxl.evaluation.readers import read_scores
from paraxl.evaluation.scores import TaskScores
from paraxl.evaluation.tasks.base import TaskResult, TaskSpec
from paraxl.io.atomic import write_json_atomic
from paraxl.io.hashing import data_file_records

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
_LIBRARIES = ("torch", "transformers", "sentence-transformers", "numpy", "scikit-learn", "scipy", "faiss-cpu")


@dataclass(frozen=True)
class ModelInfo:
    spec: str
    folder: str | None
    # what decides the vectors up to fp32 noise (paraxl.loading.fastest.numerics_fingerprint): the
    # sha256 over weights/config/tokenizer files for torch and checked ONNX fp32 alike, the int8
    # file's own; None for an in-memory model
    fingerprint: str | None
    backend: str | None = None  # the inference backend that ran (torch, onnx, onnx-int8); None before it was recorded


@dataclass(frozen=True)
class Provenance:
    """Where a result came from: software, data files (with sha256), when, how long, how many encodes."""

    paraxl_version: str
    git: Mapping[str, Any] | None  # {"commit", "dirty"}; None outside a git checkout
    libraries: Mapping[str, str | None]
    data_dir: str
    data_files: tuple[Mapping[str, Any], ...]  # {"path" (relative to data_dir), "sha256", ...}
    created_utc: str
    wall_seconds: float
    embeddings: Mapping[str, int]  # {"encoded", "cache_size"}; empty without an embedding cache


@dataclass(frozen=True)
class ResultDocument:
    """One task's result file, typed. ``scores`` is the typed record; ``raw_scores`` the task's JSON."""

    task: TaskSpec
    model: ModelInfo
    provenance: Provenance
    protocol: str | None  # the PAWS-X protocol of the run (recorded for every task, as in version 1)
    seed: int
    scores: TaskScores
    raw_scores: Mapping[str, Any]
    details: Mapping[str, Any]
    schema_version: int = SCHEMA_VERSION

    @property
    def main_score(self) -> float | None:
        return self.scores.headline

    def to_json(self) -> dict[str, Any]:
        """The document as written to disk (current schema version; keys in the order of version 1)."""
        source = self.provenance
        document = {
            "schema_version": SCHEMA_VERSION,
            "task": asdict(self.task),
            "main_score": self.scores.headline,
            "score_record": self.scores.to_json(),
            "model": _model_json(self.model),
            "paraxl": {"version": source.paraxl_version, "git": source.git},
            "libraries": dict(source.libraries),
            "data": {"data_dir": source.data_dir, "files": list(source.data_files)},
            "protocol": self.protocol,
            "seed": self.seed,
            "created_utc": source.created_utc,
            "wall_seconds": source.wall_seconds,
            "embeddings": dict(source.embeddings),
            "scores": self.raw_scores,
            "details": self.details,
        }
        cleaned: dict[str, Any] = json_ready(document)
        return cleaned

    @classmethod
    def from_json(cls, document: Mapping[str, Any], source: Path | None = None) -> ResultDocument:
        """Read a version-1 or version-2 document; anything else is an :class:`InputError` naming ``source``."""
        version = document.get("schema_version")
        if version not in READABLE_SCHEMA_VERSIONS:
            raise InputError(f"result schema version {version!r}; this paraxl reads {READABLE_SCHEMA_VERSIONS}", source)
        try:
            task = TaskSpec(**{**document["task"], "languages": tuple(document["task"]["languages"])})
            paraxl, data = document["paraxl"], document["data"]
            provenance = Provenance(
                paraxl_version=paraxl["version"],
                git=paraxl.get("git"),
                libraries=document["libraries"],
                data_dir=data["data_dir"],
                data_files=tuple(data["files"]),
                created_utc=document["created_utc"],
                wall_seconds=document["wall_seconds"],
                embeddings=document.get("embeddings") or {},
            )
            return cls(
                task=task,
                model=ModelInfo(**document["model"]),
                provenance=provenance,
                protocol=document.get("protocol"),
                seed=document["seed"],
                scores=read_scores(task.name, document["scores"], document["main_score"]),
                raw_scores=document["scores"],
                details=document.get("details") or {},
                schema_version=version,
            )
        except (KeyError, TypeError) as exc:
            raise InputError(f"not a paraxl result file ({type(exc).__name__}: {exc})", source) from None


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
) -> ResultDocument:
    """The document of one finished task run, with this process's provenance."""
    from paraxl.version import __version__

    provenance = Provenance(
        paraxl_version=__version__,
        git=git_commit(),
        libraries=library_versions(),
        data_dir=str(data_dir),
        data_files=tuple(data_file_records(result.files, data_dir)),
        created_utc=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        wall_seconds=round(seconds, 2),
        embeddings=embedding_stats,
    )
    scores, details = json_ready(result.scores), json_ready(result.details)  # NaN -> null, as on disk
    return ResultDocument(
        task=spec,
        model=model,
        provenance=provenance,
        protocol=protocol,
        seed=seed,
        scores=read_scores(spec.name, scores, json_ready(result.main_score)),
        raw_scores=scores,
        details=details,
    )


def write_document(path: Path, document: ResultDocument) -> None:
    """Write strict JSON atomically (NaN already mapped to null)."""
    write_json_atomic(path, document.to_json(), indent=1, ensure_ascii=False, allow_nan=False)


def read_document(path: Path) -> dict[str, Any]:
    """Load a result document written by :func:`write_document` as its JSON mapping."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("result file not found", path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a paraxl result file: {exc}", path) from None
    if not isinstance(document, dict) or "task" not in document or "scores" not in document:
        raise InputError("not a paraxl result file (no task/scores)", path)
    return document


def read_result(path: Path) -> ResultDocument:
    """Load a result document (schema version 1 or 2) as a typed :class:`ResultDocument`."""
    return ResultDocument.from_json(read_document(path), path)


def _model_json(model: ModelInfo) -> dict[str, Any]:
    """The model record; ``backend`` only once it was recorded, so older files round-trip unchanged."""
    record = asdict(model)
    if record.get("backend") is None:
        record.pop("backend", None)
    return record
