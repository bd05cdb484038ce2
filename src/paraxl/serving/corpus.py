"""Read a corpus to index: ``(ids, texts)`` from a txt, tsv or jsonl file.

Ids come from an id column (tsv) / key (jsonl), or else are the text's 1-based line number in the
file (for a tsv with a header, the first text is on line 2), optionally prefixed so that a second
file added to the same index does not reuse the first one's numbers. Texts come from ``column``
(default ``text``, or a tsv's only column), as in :func:`paraxl.io.text_input.read_texts`.
Every problem is an :class:`InputError` at ``file:line``; duplicate ids name both lines.
"""

from __future__ import annotations

from pathlib import Path

from paraxl.errors import InputError
from paraxl.io.rows import iter_lines, iter_rows, read_header
from paraxl.io.text_input import detect_format


def read_corpus(
    path: str | Path,
    fmt: str | None = None,
    column: str | None = None,
    id_column: str | None = None,
    id_prefix: str = "",
) -> tuple[list[str], list[str]]:
    """``(ids, texts)`` of ``path`` in file order; ids are unique, texts non-empty."""
    path = Path(path)
    kind = detect_format(path, fmt)
    records: list[tuple[int, str | None, str]]  # (line, id or None, text)
    if kind == "txt":
        if id_column is not None:
            raise InputError("--id-column needs a tsv or jsonl corpus (a txt line is only text)", path)
        records = [(number, None, text) for number, text in iter_lines(path)]
    elif kind == "tsv":
        header = read_header(path, "tsv")
        text_column = column or ("text" if "text" in header or len(header) != 1 else header[0])
        wanted = (text_column,) if id_column is None else (text_column, id_column)
        records = [
            (row.line, None if id_column is None else row.fields[id_column], row.fields[text_column])
            for row in iter_rows(path, "tsv", columns=wanted)
        ]
    else:
        key = column or "text"
        wanted = (key,) if id_column is None else (key, id_column)
        records = [
            (row.line, None if id_column is None else row.fields[id_column], row.fields[key])
            for row in iter_rows(path, "jsonl", columns=wanted)
        ]
    ids: list[str] = []
    texts: list[str] = []
    first_line: dict[str, int] = {}
    for line, given, text in records:
        if not text.strip():
            raise InputError("empty text", path, line)
        item = id_prefix + (str(line) if given is None else given)
        if given is not None and not given.strip():
            raise InputError("empty id", path, line)
        if item in first_line:
            raise InputError(f"duplicate id {item!r} (first on line {first_line[item]})", path, line)
        first_line[item] = line
        ids.append(item)
        texts.append(text)
    if not texts:
        raise InputError("no texts found", path)
    return ids, texts
