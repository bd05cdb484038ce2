"""The embeddings folder's ``manifest.json``: what the job is, which shards are done, how it ran.

Layout (JSON, rewritten atomically, so a killed run leaves the previous complete version)::

    {"format": "paraxl-embeddings", "version": 1,
     "job": {"model": {"weights_fingerprint", "backend"}, "prompt": {"name", "text"}, "dtype",
             "shard_size", "inputs": [{"path", "format", "column", "sha256", "bytes", "rows"}]},
     "rows": total rows, "dimension": embedding width (once a shard is done), "complete": bool,
     "shards": [{"index", "input", "first_row", "rows", "first_line", "first_id", "done",
                 "embeddings", "embeddings_sha256", "ids", "ids_sha256"}],
     "provenance": {"model_spec", "runs": [{"engine", "workers", ...}], "shard_seconds", "shard_workers"}}

``job`` is the job's identity: a run in a folder whose job differs (another model, a changed input,
another prompt, dtype or shard size) is refused, never mixed. Resuming keeps a shard whose files are
present and match their recorded sha256; any other shard is encoded again. Everything but
``provenance`` is the same whichever engine or how many workers ran the job.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from paraxl.corpus.encode_job import ShardResult
from paraxl.corpus.plan import ShardTask
from paraxl.errors import InputError
from paraxl.io.atomic import write_json_atomic
from paraxl.io.hashing import file_sha256
from paraxl.io.locks import LOCK_FILE

MANIFEST = "manifest.json"
FORMAT = "paraxl-embeddings"
VERSION = 1
SAVE_EVERY_SECONDS = 1.0  # a finished shard is on disk at once; its manifest line at most this much later


class CorpusManifest:
    """The manifest of one output folder, kept in memory and saved as shards finish."""

    def __init__(self, folder: Path, document: dict[str, Any]) -> None:
        self.folder = folder
        self.document = document
        self._saved_at = 0.0

    @classmethod
    def open(cls, folder: Path, job: dict[str, Any], tasks: list[ShardTask], model_spec: str) -> CorpusManifest:
        """The folder's manifest for ``job`` (checked against a previous run's), or a new one.

        Raises:
            InputError: the folder holds another job's manifest, or files but no manifest.
        """
        path = folder / MANIFEST
        if path.is_file():
            document = _load(path)
            check_same_job(document.get("job", {}), job, path)
            manifest = cls(folder, document)
            manifest._verify_done()
            return manifest
        if folder.is_dir() and any(entry.name != LOCK_FILE for entry in folder.iterdir()):
            raise InputError(
                "the output folder is not empty and holds no manifest.json; use a new --output-dir", folder
            )
        document = {
            "format": FORMAT,
            "version": VERSION,
            "job": job,
            "rows": sum(task.rows for task in tasks),
            "dimension": None,
            "complete": False,
            "shards": [{**task.range_record(), "done": False} for task in tasks],
            "provenance": {"model_spec": model_spec, "runs": [], "shard_seconds": {}, "shard_workers": {}},
        }
        manifest = cls(folder, document)
        manifest.save()
        return manifest

    @property
    def shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = self.document["shards"]
        return shards

    def done(self) -> set[int]:
        return {shard["index"] for shard in self.shards if shard["done"]}

    def record(self, result: ShardResult) -> None:
        """Mark ``result``'s shard done (saved within :data:`SAVE_EVERY_SECONDS`, or by :meth:`save`)."""
        shard = self.shards[result.index]
        shard.update(
            done=True,
            embeddings=result.embeddings,
            embeddings_sha256=result.embeddings_sha256,
            ids=result.ids,
            ids_sha256=result.ids_sha256,
        )
        self.document["dimension"] = result.dimension
        provenance = self.document["provenance"]
        provenance["shard_seconds"][str(result.index)] = round(result.seconds, 4)
        provenance["shard_workers"][str(result.index)] = result.worker
        if time.monotonic() - self._saved_at >= SAVE_EVERY_SECONDS:
            self.save()

    def add_run(self, run: dict[str, Any]) -> None:
        """Append one run's provenance (engine, workers, timings) and note whether every shard is done."""
        self.document["provenance"]["runs"].append(run)
        self.document["complete"] = all(shard["done"] for shard in self.shards)

    def save(self) -> None:
        write_json_atomic(self.folder / MANIFEST, self.document, indent=1)
        self._saved_at = time.monotonic()

    def _verify_done(self) -> None:
        """Un-mark every done shard whose files are missing or differ from their sha256 (encoded again)."""
        for shard in self.shards:
            if shard["done"] and not all(
                _matches(self.folder / shard[name], shard[f"{name}_sha256"]) for name in ("embeddings", "ids")
            ):
                shard["done"] = False
        self.document["complete"] = False


def check_same_job(found: dict[str, Any], job: dict[str, Any], path: Path) -> None:
    """InputError naming the first difference between a folder's job and this one."""
    if found == job:
        return
    before, now = found.get("model", {}), job["model"]
    if before != now:
        raise InputError(
            f"holds embeddings of another model (weights {str(before.get('weights_fingerprint'))[:12]} on "
            f"{before.get('backend')}, now {now['weights_fingerprint'][:12]} on {now['backend']}); "
            "refusing to mix them: use a new --output-dir",
            path,
        )
    old_inputs = {item["path"]: item for item in found.get("inputs", [])}
    dropped = sorted(set(old_inputs) - {item["path"] for item in job["inputs"]})
    if dropped:
        raise InputError(f"input {dropped[0]} of the run in this folder is not among this run's inputs", path)
    for item in job["inputs"]:
        old = old_inputs.get(item["path"])
        if old is None:
            raise InputError(f"input {item['path']} is not among the inputs of the run in this folder", path)
        if old != item:
            raise InputError(
                f"input {item['path']} changed since the run in this folder began (sha256 {old['sha256'][:12]} -> "
                f"{item['sha256'][:12]}); refusing to mix them: use a new --output-dir",
                path,
            )
    for key in sorted(set(found) | set(job)):
        if found.get(key) != job.get(key):
            raise InputError(
                f"this folder's run has {key} {found.get(key)!r}, this one {job.get(key)!r}; use a new --output-dir",
                path,
            )


def _matches(path: Path, sha256: str) -> bool:
    return path.is_file() and file_sha256(path) == sha256


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable manifest ({exc})", path) from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} manifest", path)
    if document.get("version") != VERSION:
        raise InputError(f"manifest version {document.get('version')!r}; this paraxl reads {VERSION}", path)
    return document


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of embeddings folder ``folder`` (for readers of finished folders, e.g. mining)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError("not an embeddings folder of paraxl encode-corpus (no manifest.json)", folder)
    return _load(path)
