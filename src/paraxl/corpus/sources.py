"""Find a corpus's input files and scan each once: format, text column, sha256, row count, shard offsets.

Inputs are files, folders (every file with a known extension under it, sorted) or glob patterns,
in the order given. Formats, by extension or ``--format``:
    ``txt``      one text per line;
    ``tsv``      tab-separated with a header row; texts from ``column`` (default ``text``, or the only column);
    ``jsonl``    one JSON object per line; texts from key ``column`` (default ``text``);
    ``parquet``  texts from ``column`` (default ``text``, or the only column), a string column.
A *row* is one text: a line of a txt/jsonl file, a line after the header of a tsv, a row of a parquet
file. The scan reads each text file once, in blocks (memory is one block, whatever the file's size),
hashing it and noting the byte offset where every ``shard_size``-th row starts, so a worker can read
its shard alone (:mod:`paraxl.corpus.reading`). Rows are checked when a shard is read, not here.
"""

from __future__ import annotations

import glob
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from paraxl.errors import InputError
from paraxl.io.rows import choose_format, quoted_names

FORMATS = ("txt", "tsv", "jsonl", "parquet")
_EXTENSIONS = {".txt": "txt", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
_BLOCK = 1 << 22  # bytes read at a time by the scan
_GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class SourceFile:
    """One scanned input file.

    ``offsets[s]`` is the byte offset of shard ``s``'s first row (text formats; parquet: empty) and
    ``offsets[-1]`` the end of the last row; ``field``/``width`` locate a tsv column in its rows;
    ``header_lines`` is 1 for tsv (row ``r`` is on line ``r + 1 + header_lines``), else 0.
    """

    path: str
    fmt: str
    column: str | None
    field: int
    width: int
    sha256: str
    size: int
    rows: int
    header_lines: int
    offsets: tuple[int, ...]

    def identity(self) -> dict[str, object]:
        """What the manifest records and a resumed run must find unchanged."""
        return {
            "path": self.path,
            "format": self.fmt,
            "column": self.column,
            "sha256": self.sha256,
            "bytes": self.size,
            "rows": self.rows,
        }


def resolve_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """The files that ``inputs`` name (files, folders, glob patterns), resolved, each once, in order."""
    found: list[Path] = []
    for item in inputs:
        text = str(item)
        if _GLOB_CHARACTERS & set(text) and not Path(text).exists():
            matches = [Path(name) for name in sorted(glob.glob(text, recursive=True)) if Path(name).is_file()]
            if not matches:
                raise InputError("the pattern matches no file", text)
        elif Path(text).is_dir():
            matches = sorted(p for p in Path(text).rglob("*") if p.is_file() and p.suffix.lower() in _EXTENSIONS)
            if not matches:
                raise InputError(f"the folder holds no {', '.join(sorted(_EXTENSIONS))} file", text)
        elif Path(text).is_file():
            matches = [Path(text)]
        else:
            raise InputError("no such file, folder or pattern", text)
        found.extend(path.resolve() for path in matches)
    unique = list(dict.fromkeys(found))
    if not unique:
        raise InputError("no input files given")
    return unique


def scan_source(path: Path, fmt: str | None, column: str | None, shard_size: int) -> SourceFile:
    """Scan ``path``: its format and text column checked, hashed, rows counted, shard offsets noted."""
    kind = choose_format(path, fmt, _EXTENSIONS, f"pass --format {'|'.join(FORMATS)}")
    if kind == "parquet":
        return _scan_parquet(path, column)
    header_lines, field, width, chosen = 0, 0, 1, column
    if kind == "tsv":
        header_lines = 1
        field, width, chosen = _tsv_column(path, column)
    elif kind == "jsonl":
        chosen = column or "text"
    elif column is not None:
        raise InputError("--column applies to tsv, jsonl and parquet files, not txt", path)
    offsets: list[int] = []
    sha256, size, newlines, ends_with_newline = _scan_bytes(path, shard_size, header_lines, offsets)
    rows = max(newlines + (1 if size and not ends_with_newline else 0) - header_lines, 0)
    if rows == 0:
        raise InputError("no texts found", path)
    offsets.append(size)
    return SourceFile(str(path), kind, chosen, field, width, sha256, size, rows, header_lines, tuple(offsets))


def _scan_bytes(path: Path, shard_size: int, header: int, offsets: list[int]) -> tuple[str, int, int, bool]:
    """sha256, size, newline count and whether the file ends with one; appends to ``offsets`` the byte
    offset of data rows ``0, shard_size, 2 * shard_size, ...`` (a row starts after newline number
    ``header + row``; row 0 of a headerless file at byte 0)."""
    digest, size, newlines, last = hashlib.sha256(), 0, 0, b""
    if header == 0:
        offsets.append(0)
    next_row = shard_size if header == 0 else 0  # the next shard start, counted in data rows
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                digest.update(block)
                # (newlines in block,) positions; newline n (1-based) ends line n: row n - header starts after it
                positions = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
                while next_row + header - newlines <= len(positions):
                    offsets.append(size + int(positions[next_row + header - newlines - 1]) + 1)
                    next_row += shard_size
                newlines += len(positions)
                size += len(block)
                last = block[-1:]
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None
    if offsets and offsets[-1] == size:
        offsets.pop()  # a final newline starts no row
    return digest.hexdigest(), size, newlines, last == b"\n"


def _tsv_column(path: Path, column: str | None) -> tuple[int, int, str]:
    """(field index, header width, column name) from the tsv's header line."""
    with path.open("rb") as handle:
        raw = handle.readline()
    try:
        header = raw.removeprefix(b"\xef\xbb\xbf").decode("utf-8").rstrip("\n").removesuffix("\r").split("\t")
    except UnicodeDecodeError:
        raise InputError("unreadable header: not valid UTF-8", path, 1) from None
    wanted = column or ("text" if "text" in header or len(header) != 1 else header[0])
    if wanted not in header:
        raise InputError(f"no column {wanted!r} in header {quoted_names(header)}; pass --column", path, 1)
    return header.index(wanted), len(header), wanted


def _scan_parquet(path: Path, column: str | None) -> SourceFile:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from paraxl.io.hashing import file_sha256

    try:
        schema = pq.read_schema(path)
        rows = pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read as parquet ({exc})", path) from None
    names = list(schema.names)
    wanted = column or ("text" if "text" in names or len(names) != 1 else names[0])
    if wanted not in names:
        raise InputError(f"no column {wanted!r} in {quoted_names(names)}; pass --column", path)
    kind = schema.field(wanted).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise InputError(f"column {wanted!r} holds {kind}, expected strings", path)
    if rows == 0:
        raise InputError("no texts found", path)
    size = path.stat().st_size
    return SourceFile(
        str(path), "parquet", wanted, names.index(wanted), len(names), file_sha256(path), size, rows, 0, ()
    )
