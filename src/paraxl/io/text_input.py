"""Read texts and sentence pairs from user files, with errors that say ``file:line: reason``.

Formats (chosen by extension, or explicitly):
    ``txt``    one text per line;
    ``tsv``    tab-separated with a header row; texts from ``--column`` (default ``text``,
               or the only column); pairs from ``sentence1``/``sentence2`` columns (PAWS-X
               layout), or from headerless rows of exactly two fields;
    ``jsonl``  one JSON object per line; texts from key ``--column`` (default ``text``).
Empty or whitespace-only texts are errors: they have no meaning to embed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from paraxl.errors import InputError

TextFormat = Literal["txt", "tsv", "jsonl"]
_EXTENSIONS: dict[str, TextFormat] = {".txt": "txt", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
PAIR_COLUMNS = ("sentence1", "sentence2")


@dataclass(frozen=True)
class SentencePair:
    first: str
    second: str
    line: int


def detect_format(path: Path, explicit: str | None = None) -> TextFormat:
    if explicit is not None:
        if explicit not in _EXTENSIONS.values():
            raise InputError(f"unknown input format {explicit!r}; use one of txt, tsv, jsonl", path)
        return explicit  # type: ignore[return-value]
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot tell the format from extension {path.suffix!r}; pass --format txt|tsv|jsonl", path)
    return fmt


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line, decoding strictly as UTF-8 line by line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # UTF-8 byte-order mark
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # a final newline ends the last line; it does not start a new one
    for number, chunk in enumerate(lines, start=1):
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not valid UTF-8 (byte {exc.start + 1} of the line)", path, number) from None
        yield number, text.removesuffix("\r")


def read_texts(path: str | Path, fmt: str | None = None, column: str | None = None) -> list[str]:
    """All texts of ``path``; raises :class:`InputError` at the first bad line."""
    path = Path(path)
    kind = detect_format(path, fmt)
    if kind == "txt":
        texts = [_non_empty(text, path, number) for number, text in iter_lines(path)]
    elif kind == "jsonl":
        texts = [_json_text(text, path, number, column or "text") for number, text in iter_lines(path)]
    else:
        texts = _tsv_texts(path, column)
    if not texts:
        raise InputError("no texts found", path)
    return texts


def read_pairs(path: str | Path) -> list[SentencePair]:
    """Sentence pairs from a TSV: ``sentence1``/``sentence2`` columns, or two fields per row."""
    path = Path(path)
    lines = list(iter_lines(path))
    if not lines:
        raise InputError("no sentence pairs found (the file is empty)", path)
    header = lines[0][1].split("\t")
    if all(name in header for name in PAIR_COLUMNS):
        first_col, second_col = (header.index(name) for name in PAIR_COLUMNS)
        width, body = len(header), lines[1:]
    else:
        first_col, second_col, width, body = 0, 1, 2, lines
    pairs = []
    for number, text in body:
        fields = text.split("\t")
        if len(fields) != width:
            raise InputError(f"expected {width} tab-separated fields, found {len(fields)}", path, number)
        first = _non_empty(fields[first_col], path, number)
        second = _non_empty(fields[second_col], path, number)
        pairs.append(SentencePair(first, second, number))
    if not pairs:
        raise InputError("no sentence pairs found (header only)", path)
    return pairs


def _tsv_texts(path: Path, column: str | None) -> list[str]:
    lines = list(iter_lines(path))
    if not lines:
        raise InputError("no texts found (the file is empty)", path)
    header = lines[0][1].split("\t")
    wanted = column or ("text" if "text" in header or len(header) != 1 else header[0])
    if wanted not in header:
        raise InputError(f"no column {wanted!r} in header {header}; pass --column", path, 1)
    index, width = header.index(wanted), len(header)
    texts = []
    for number, text in lines[1:]:
        fields = text.split("\t")
        if len(fields) != width:
            raise InputError(f"expected {width} tab-separated fields, found {len(fields)}", path, number)
        texts.append(_non_empty(fields[index], path, number))
    return texts


def _json_text(line: str, path: Path, number: int, key: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON ({exc.msg} at column {exc.colno})", path, number) from None
    if not isinstance(record, dict):
        raise InputError(f"expected a JSON object, found {type(record).__name__}", path, number)
    if key not in record:
        raise InputError(f"no key {key!r} in the object; pass --column", path, number)
    value = record[key]
    if not isinstance(value, str):
        raise InputError(f"key {key!r} holds {type(value).__name__}, expected a string", path, number)
    return _non_empty(value, path, number)


def _non_empty(text: str, path: Path, number: int) -> str:
    if not text.strip():
        raise InputError("empty text", path, number)
    return text
