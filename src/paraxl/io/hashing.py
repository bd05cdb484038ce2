"""Content hashes of files and model folders, computed once per process per file version."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Files that decide what a model folder computes: weights, architecture, tokenizer, pooling,
# normalisation, prompts and sequence length. Anything else (README, logs) does not change a vector.
_MODEL_FILE_PATTERNS = (
    "*.safetensors",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "paraxl_config.json",
    "1_Pooling/config.json",
)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes; re-hashed only when its size or mtime changes."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return _sha256(resolved, stat.st_size, stat.st_mtime_ns)


def data_file_records(files: Iterable[str | Path], data_dir: Path | None = None) -> list[dict[str, Any]]:
    """``{path (relative to ``data_dir`` when inside it), sha256, bytes}`` per distinct file, sorted."""
    records = []
    root = data_dir.resolve() if data_dir is not None else None
    for path in sorted({Path(file).resolve() for file in files}):
        shown = str(path)
        if root is not None and path.is_relative_to(root):
            shown = path.relative_to(root).as_posix()
        records.append({"path": shown, "sha256": file_sha256(path), "bytes": path.stat().st_size})
    return records


@functools.lru_cache(maxsize=4096)
def _sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def model_folder_fingerprint(folder: str | Path) -> str:
    """One sha256 over the files of a model folder that decide its embeddings (names + contents)."""
    root = Path(folder)
    files = sorted({p for pattern in _MODEL_FILE_PATTERNS for p in root.glob(pattern) if p.is_file()})
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(file_sha256(path).encode())
        digest.update(b"\n")
    return digest.hexdigest()
