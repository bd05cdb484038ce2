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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from paraxl.errors import InputError
from paraxl.io.rows import choose_format, iter_rows, quoted_names, read_header
from paraxl.io.rows import iter_lines as iter_lines  # re-exported: it used to live here

TextFormat = Literal["txt", "tsv", "jsonl"]
_EXTENSIONS: dict[str, TextFormat] = {".txt": "txt", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
PAIR_COLUMNS = ("sentence1", "sentence2")


@dataclass(frozen=True)
class SentencePair:
    first: str
    second: str
    line: int


def detect_format(path: Path, explicit: str | None = None) -> TextFormat:
    return choose_format(path, explicit, _EXTENSIONS, "pass --format txt|tsv|jsonl")  # type: ignore[return-value]


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
    named = all(name in read_header(path, "tsv") for name in PAIR_COLUMNS)
    rows = iter_rows(path, "tsv", header=True if named else PAIR_COLUMNS, columns=PAIR_COLUMNS)
    pairs = []
    for row in rows:
        first, second = (_non_empty(row.fields[name], path, row.line) for name in PAIR_COLUMNS)
        pairs.append(SentencePair(first, second, row.line))
    if not pairs:
        raise InputError("no sentence pairs found (header only)", path)
    return pairs


def _tsv_texts(path: Path, column: str | None) -> list[str]:
    header = read_header(path, "tsv")
    wanted = column or ("text" if "text" in header or len(header) != 1 else header[0])
    if wanted not in header:
        raise InputError(f"no column {wanted!r} in header {quoted_names(header)}; pass --column", path, 1)
    return [_non_empty(row.fields[wanted], path, row.line) for row in iter_rows(path, "tsv", columns=(wanted,))]


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
    return check_unicode(text, "the text", path, number)


def check_unicode(text: str, what: str, path: Path | None = None, line: int | None = None) -> str:
    """``text`` if it is valid Unicode; raise :class:`InputError` on a lone surrogate.

    Files are decoded strictly, but a command-line argument that is not UTF-8 arrives as lone
    surrogates (Python's ``surrogateescape``), and JSON may spell one as ``\\ud800``; the tokenizer
    cannot take either (a ``TypeError`` deep inside it), so they are refused here, by position.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} is not valid UTF-8 text (character {exc.start + 1})", path, line) from None
    return text
