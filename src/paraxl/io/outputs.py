"""Write embeddings and scores; every writer goes through a temporary file renamed on success."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from paraxl.errors import InputError
from paraxl.io.atomic import atomic_path

EMBEDDING_SUFFIXES = (".npy", ".parquet")
OutputKind = Literal["file", "folder"]


def check_output(path: Path, kind: OutputKind = "file") -> Path:
    """Fail before any work when ``path`` cannot be written as a ``kind``: InputError naming it.

    Every command calls this for each output before it loads a model or reads data, so a typo
    costs nothing, not minutes of work thrown away at the end. A file output must not be a
    folder; a folder output must not be a file (an existing folder is fine: whether it may be
    replaced or added to is the command's rule) and must be writable. A missing parent is fine
    when the nearest existing one is a writable folder: the atomic writers create the rest.
    """
    if kind == "file" and path.is_dir():
        raise InputError("is a folder; give a file name", path)
    if kind == "folder" and path.exists() and not path.is_dir():
        raise InputError("is an existing file; give a folder", path)
    if kind == "folder" and path.is_dir():
        _check_writable(path, path)  # the command writes inside it
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"{ancestor} is a file, not a folder: nothing can be written under it", path)
    _check_writable(ancestor, path)
    return path


def _check_writable(folder: Path, path: Path) -> None:
    # os.access asks the kernel with the real user's rights (and a read-only mount's): no probe file
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write in {folder} (permission denied or read-only)", path)


def check_embedding_output(path: Path) -> None:
    """Fail before any work is done when the output cannot be written."""
    if path.suffix.lower() not in EMBEDDING_SUFFIXES:
        raise InputError(f"output must end in {' or '.join(EMBEDDING_SUFFIXES)}", path)
    if path.is_dir():
        raise InputError("output is a directory", path)
    if not path.parent.exists():
        raise InputError(f"output folder {path.parent} does not exist", path)
    check_output(path)


def write_embeddings(path: Path, embeddings: np.ndarray, texts: Sequence[str]) -> None:
    """``.npy``: the (n, dim) float32 matrix; ``.parquet``: columns ``text`` and ``embedding``."""
    check_embedding_output(path)
    with atomic_path(path, suffix=path.suffix) as tmp:
        if path.suffix.lower() == ".npy":
            with tmp.open("wb") as handle:
                np.save(handle, embeddings.astype(np.float32), allow_pickle=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            dim = embeddings.shape[1]
            flat = pa.array(embeddings.astype(np.float32).reshape(-1))
            column = pa.FixedSizeListArray.from_arrays(flat, dim)
            pq.write_table(pa.table({"text": list(texts), "embedding": column}), tmp)


# Only the three characters that would break a TSV row are escaped. Quotes and backslashes are
# written as they are, so any text read from a line-based file comes back byte for byte.
_TSV_ESCAPES = str.maketrans({"\t": "\\t", "\n": "\\n", "\r": "\\r"})


def tsv_field(value: object) -> str:
    """One TSV field: ``str(value)`` with tab, newline and carriage return written as ``\\t \\n \\r``."""
    return str(value).translate(_TSV_ESCAPES)


def write_tsv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A header and rows as tab-separated lines, atomically; no quoting (see ``tsv_field``)."""
    with atomic_path(path, suffix=".tsv") as tmp, tmp.open("w", encoding="utf-8", newline="\n") as handle:
        for fields in (header, *rows):
            handle.write("\t".join(tsv_field(field) for field in fields) + "\n")
