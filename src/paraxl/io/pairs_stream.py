"""A sentence-pairs TSV read as a stream: ``sentence1`` / ``sentence2`` and any other columns, row by row.

The layout is that of ``paraxl similarity --pairs`` (:func:`paraxl.io.text_input.read_pairs`): a
header that names ``sentence1`` and ``sentence2`` among its columns (PAWS-X: ``id sentence1
sentence2 label``), or headerless rows of exactly two tab-separated fields. No quoting (a quote is
text), strict UTF-8, a UTF-8 byte-order mark ignored, blank lines skipped. Unlike ``read_pairs``
the file is never held in memory, for files of millions of pairs: :func:`scan_pairs` checks every
row and hashes the file's bytes in one pass (a bad row is one :class:`InputError` at its line,
before any work), and :func:`iter_pairs` reads it again, row by row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from paraxl.errors import InputError
from paraxl.io.rows import quoted_names, unreadable

PAIR_COLUMNS = ("sentence1", "sentence2")
_BOM = b"\xef\xbb\xbf"


class Digest(Protocol):
    """What a ``hashlib`` hash object offers that the readers use."""

    def update(self, data: bytes, /) -> None: ...


@dataclass(frozen=True)
class PairsLayout:
    """The columns of a pairs file: its header's names, or ``sentence1, sentence2`` when it has none."""

    names: tuple[str, ...]
    header: bool

    @property
    def others(self) -> tuple[str, ...]:
        """The columns besides the two sentences, in file order (kept by whoever copies the rows)."""
        return tuple(name for name in self.names if name not in PAIR_COLUMNS)


@dataclass(frozen=True)
class PairRow:
    """One data row: its 1-based line, the two sentences (stripped) and the other columns' fields as read."""

    line: int
    first: str
    second: str
    others: tuple[str, ...]  # parallel to PairsLayout.others


@dataclass(frozen=True)
class PairsScan:
    """A pairs file checked from end to end: its layout, its data rows and the sha256 of its bytes."""

    path: Path
    layout: PairsLayout
    rows: int
    sha256: str


def scan_pairs(path: str | Path) -> PairsScan:
    """Check every row of ``path`` (InputError at the first bad one) and hash its bytes, in one pass."""
    path = Path(path)
    digest = hashlib.sha256()
    rows = sum(1 for _ in _rows(path, digest))
    layout = read_layout(path)  # an empty file raises here
    if rows == 0:
        raise InputError("no sentence pairs found (header only)", path)
    return PairsScan(path, layout, rows, digest.hexdigest())


def iter_pairs(path: str | Path, digest: Digest | None = None) -> Iterator[PairRow]:
    """The data rows of ``path`` in order; ``digest`` (a ``hashlib`` object), if given, takes every byte read."""
    yield from _rows(Path(path), digest)


def read_layout(path: str | Path) -> PairsLayout:
    """The layout, from the first non-blank line (InputError if it is neither a header nor two fields)."""
    path = Path(path)
    for number, raw in _lines(path, None):
        text = _decode(raw, path, number)
        if text.strip():
            return _layout(text.split("\t"), path, number)
    raise InputError("the file is empty (no sentence pairs)", path)


def _rows(path: Path, digest: Digest | None) -> Iterator[PairRow]:
    layout: PairsLayout | None = None
    for number, raw in _lines(path, digest):
        text = _decode(raw, path, number)
        if not text.strip():
            continue
        fields = text.split("\t")
        if layout is None:
            layout = _layout(fields, path, number)
            if layout.header:
                continue
        yield _row(fields, layout, path, number)


def _layout(fields: list[str], path: Path, line: int) -> PairsLayout:
    if all(name in fields for name in PAIR_COLUMNS):
        twice = sorted({name for name in fields if fields.count(name) > 1})
        if twice:
            raise InputError(f"column(s) {quoted_names(twice)} appear twice in the header", path, line)
        return PairsLayout(tuple(fields), header=True)
    if len(fields) == 2:
        return PairsLayout(PAIR_COLUMNS, header=False)
    raise InputError(
        f"expected a header naming {' and '.join(PAIR_COLUMNS)} (found {quoted_names(fields)}), "
        "or rows of exactly two tab-separated fields",
        path,
        line,
    )


def _row(fields: list[str], layout: PairsLayout, path: Path, line: int) -> PairRow:
    if len(fields) != len(layout.names):
        raise InputError(f"expected {len(layout.names)} tab-separated fields, found {len(fields)}", path, line)
    named = dict(zip(layout.names, fields, strict=True))
    first, second = (named[name].strip() for name in PAIR_COLUMNS)
    for name, text in zip(PAIR_COLUMNS, (first, second), strict=True):
        if not text:
            raise InputError(f"empty text in column {name!r}", path, line)
    return PairRow(line, first, second, tuple(named[name] for name in layout.others))


def _lines(path: Path, digest: Digest | None) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes without the newline)``; file-level problems are one InputError naming the file."""
    try:
        handle = path.open("rb")
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the name
        raise unreadable(error, path) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if digest is not None:
                digest.update(raw)
            yield number, (raw.removeprefix(_BOM) if number == 1 else raw).removesuffix(b"\n")


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 (byte {exc.start + 1} of the line)", path, line) from None
