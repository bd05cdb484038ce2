"""One reader for delimited files: rows as ``{column: text}`` with errors that say ``file:line: reason``.

Formats:
    ``txt``    one field per line (no splitting at all);
    ``tsv``    split on tab, no quoting (PAWS-X, XNLI); every row must have the header's width;
    ``csv``    Python's :mod:`csv` (quoted fields may span lines; a row's line is where it starts);
    ``jsonl``  one JSON object per line; a value must be a string or an integer (``true``/``false``
               are read as ``"true"``/``"false"``), anything else in a requested column is an error.

Decoding is strictly UTF-8, line by line, so a bad byte costs one row rather than the file.
Whether a bad row stops the read or is skipped (and counted) is the caller's :class:`RowPolicy`.
File-level problems (missing, a directory, empty, an unreadable header) always raise: there is no
row to skip. An error quotes a file's content only in part (:func:`quoted`, :func:`quoted_names`):
enough to find the line and column, never a whole line of a file the user may not have meant to show.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from paraxl.errors import InputError

RowFormat = Literal["txt", "tsv", "csv", "jsonl"]
ROW_FORMATS: tuple[RowFormat, ...] = ("txt", "tsv", "csv", "jsonl")
_SEPARATED = {"tsv": "tab-separated", "csv": "comma-separated", "txt": "line"}
QUOTE_WIDTH = 40  # characters of one field an error message quotes
QUOTE_COUNT = 12  # header names an error message lists


@dataclass(frozen=True)
class Row:
    """One record: ``line`` is the 1-based physical line it starts on; ``fields`` maps column to text.

    Columns are the header's names, the caller's names, or ``"0"``, ``"1"``, ... for headerless files.
    """

    line: int
    fields: dict[str, str]


@dataclass
class RowPolicy:
    """What to do with a malformed row: ``raise`` at the first, or ``skip`` it and keep count.

    One policy may be shared by several reads; ``skipped`` then totals them. Only the first few
    errors are kept (``first_errors``) so that a file of garbage cannot grow memory without bound.
    """

    on_error: Literal["raise", "skip"] = "raise"
    skipped: int = 0
    first_errors: list[InputError] = field(default_factory=list)
    KEEP: ClassVar[int] = 5

    def __post_init__(self) -> None:
        if self.on_error not in ("raise", "skip"):
            raise InputError(f"unknown row error policy {self.on_error!r}; use raise or skip")

    def reject(self, error: InputError) -> None:
        """Raise ``error`` (policy ``raise``) or count it as one skipped row (policy ``skip``)."""
        if self.on_error == "raise":
            raise error
        self.skipped += 1
        if len(self.first_errors) < self.KEEP:
            self.first_errors.append(error)

    def summary(self) -> str:
        """One line for a log: how many rows were skipped and the first reason."""
        if not self.skipped:
            return "no malformed rows"
        return f"skipped {self.skipped} malformed row(s); first: {self.first_errors[0]}"


def choose_format(path: Path, explicit: str | None, extensions: Mapping[str, str], hint: str) -> str:
    """``explicit`` if it is one of ``extensions``' formats, else the format its suffix names.

    ``hint`` says how the user can name the format (``--format ...`` or the suffixes).
    """
    known = sorted(set(extensions.values()))
    if explicit is not None:
        if explicit not in known:
            raise InputError(f"unknown format {explicit!r}; use one of {', '.join(known)}", path)
        return explicit
    found = extensions.get(path.suffix.lower())
    if found is None:
        raise InputError(f"cannot tell the format from extension {path.suffix!r}; {hint}", path)
    return found


def quoted(text: str) -> str:
    """``repr(text)``, clipped to :data:`QUOTE_WIDTH` characters (a header or a field in an error)."""
    return repr(text) if len(text) <= QUOTE_WIDTH else f"{text[:QUOTE_WIDTH]!r}..."


def parse_score(
    text: str, path: Path, line: int, *, bounds: tuple[float, float] | None = None, what: str = "score"
) -> float:
    """A finite number (within ``bounds`` where given), or an error naming the file and line."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{what} {quoted(text)} is not a number", path, line) from None
    if not math.isfinite(value):
        raise InputError(f"{what} {quoted(text)} is not a finite number", path, line)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise InputError(f"{what} {quoted(text)} is outside the range {bounds[0]:g} to {bounds[1]:g}", path, line)
    return value


def quoted_names(names: Sequence[str]) -> str:
    """A header's names for an error, ``['a', 'b']``: at most :data:`QUOTE_COUNT`, each :func:`quoted`."""
    listed = ", ".join(quoted(name) for name in names[:QUOTE_COUNT])
    return f"[{listed}]" if len(names) <= QUOTE_COUNT else f"[{listed}, ...] ({len(names)} columns)"


def inside_data_dir(data_dir: str | Path, path: Path) -> Path:
    """``path`` if its real location is inside the data folder's; else :class:`InputError`, the file unread.

    Benchmark files are read, and quoted in errors, as data: a symbolic link out of the data folder
    could point them at any file of the machine. Links within the folder, and a data folder that is
    itself a link, are fine.
    """
    try:
        root, real = Path(data_dir).resolve(), path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        raise InputError("cannot resolve the path (a symbolic link loop?)", path) from None
    if real != root and not real.is_relative_to(root):
        raise InputError(
            f"is a symbolic link out of the data directory {data_dir} (to {real}); benchmark files are read "
            "only inside it: copy the file in, or pass the folder that holds it as --data-dir",
            path,
        )
    return path


def unreadable(error: OSError | ValueError, path: Path) -> InputError:
    """The one-line error for a file that cannot be opened: missing, a directory, unreadable, or a bad name."""
    if isinstance(error, FileNotFoundError):
        return InputError("no such file", path)
    if isinstance(error, IsADirectoryError):
        return InputError("is a directory, expected a file", path)
    if isinstance(error, OSError):
        return InputError(f"cannot read ({error.strerror})", path)
    return InputError("not a valid file name", path)  # a NUL byte, or a character the file system cannot encode


def read_raw_lines(path: Path) -> list[bytes]:
    """The file's lines as bytes, without BOM or newline; missing, directory or unreadable raise."""
    try:
        raw = path.read_bytes()
    except (OSError, ValueError) as error:
        raise unreadable(error, path) from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # UTF-8 byte-order mark
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # a final newline ends the last line; it does not start a new one
    return lines


def _decode(chunk: bytes, path: Path, number: int) -> tuple[str, InputError | None]:
    """The line's text and, if it is not UTF-8, the error (the text then has replacement characters)."""
    try:
        return chunk.decode("utf-8").removesuffix("\r"), None
    except UnicodeDecodeError as exc:
        error = InputError(f"not valid UTF-8 (byte {exc.start + 1} of the line)", path, number)
        return chunk.decode("utf-8", errors="replace").removesuffix("\r"), error


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line, decoding strictly as UTF-8; the first bad line raises."""
    for number, chunk in enumerate(read_raw_lines(path), start=1):
        text, error = _decode(chunk, path, number)
        if error is not None:
            raise error
        yield number, text


def _non_empty_lines(path: Path) -> list[bytes]:
    lines = read_raw_lines(path)
    if not lines:
        raise InputError("the file is empty", path)
    return lines


def _split_records(path: Path, fmt: RowFormat) -> Iterator[tuple[int, list[str] | InputError]]:
    """``(start_line, fields)`` per record of a txt/tsv/csv file, or the record's error."""
    lines = _non_empty_lines(path)
    if fmt == "csv":
        yield from _csv_records(lines, path)
        return
    for number, chunk in enumerate(lines, start=1):
        text, error = _decode(chunk, path, number)
        yield number, error or (text.split("\t") if fmt == "tsv" else [text])


def _csv_records(lines: list[bytes], path: Path) -> Iterator[tuple[int, list[str] | InputError]]:
    """CSV records with the physical line each starts on; a record spanning a bad line is bad."""
    bad: dict[int, InputError] = {}

    def feed() -> Iterator[str]:
        for number, chunk in enumerate(lines, start=1):
            text, error = _decode(chunk, path, number)
            if error is not None:
                bad[number] = error
            yield text + "\n"

    reader = csv.reader(feed(), strict=True)
    start = 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # the reader drops the rest of the line and starts afresh on the next one
            yield start, InputError(f"malformed CSV ({exc})", path, start)
            start = reader.line_num + 1
            continue
        spanned = (bad[n] for n in range(start, reader.line_num + 1) if n in bad)
        yield start, next(spanned, None) or fields
        start = reader.line_num + 1


def read_header(path: str | Path, fmt: RowFormat) -> list[str]:
    """The first record's fields (what a header would be); for deciding how to read a file."""
    path = Path(path)
    if fmt == "jsonl":
        raise InputError("JSON lines files have no header", path)
    _, first = next(_split_records(path, fmt))
    if isinstance(first, InputError):
        raise first
    return first


def iter_rows(
    path: str | Path,
    fmt: RowFormat,
    *,
    header: bool | Sequence[str] = True,
    policy: RowPolicy | None = None,
    columns: Sequence[str] | None = None,
    optional: Sequence[str] = (),
) -> Iterator[Row]:
    """The good rows of ``path``; bad ones go to ``policy`` (default: raise at the first).

    Args:
        header: ``True``: the first record names the columns; ``False``: columns are ``"0"``,
            ``"1"``, ... and the first good row fixes the width; a sequence: these names, this
            width, no header row in the file. Ignored for ``jsonl``.
        columns: columns that must exist (a missing header column raises; for ``jsonl`` a row
            without the key, or with a value that is no string or integer, is a bad row).
            ``None``: for ``jsonl``, every key of the object.
        optional: ``jsonl`` keys that may be missing but must be text where present (a label,
            an id); other keys are ignored. TSV and CSV rows always carry every column.
    """
    return good_rows(iter_row_results(path, fmt, header=header, columns=columns, optional=optional), policy)


def good_rows(results: Iterable[Row | InputError], policy: RowPolicy | None = None) -> Iterator[Row]:
    """The good rows of ``results`` (as :func:`iter_row_results` gives them); bad ones go to ``policy``
    (default: raise at the first)."""
    policy = policy or RowPolicy()
    for result in results:
        if isinstance(result, InputError):
            policy.reject(result)
        else:
            yield result


def iter_row_results(
    path: str | Path,
    fmt: RowFormat,
    *,
    header: bool | Sequence[str] = True,
    columns: Sequence[str] | None = None,
    optional: Sequence[str] = (),
) -> Iterator[Row | InputError]:
    """Every data record in order, good or bad: for readers that must keep row positions aligned."""
    path = Path(path)
    if fmt not in ROW_FORMATS:
        raise InputError(f"unknown row format {fmt!r}; use one of {', '.join(ROW_FORMATS)}", path)
    if fmt == "jsonl":
        yield from _jsonl_rows(path, columns, optional)
        return
    records = _split_records(path, fmt)
    names: list[str] | None = None
    if header is True:
        line, first = next(records)
        if isinstance(first, InputError):
            raise InputError(f"unreadable header: {first.reason}", path, line)
        names = _checked_names(first, columns, path, line)
    elif header is not False:
        names = _checked_names(list(header), columns, path, None)
    for line, fields in records:
        if isinstance(fields, InputError):
            yield fields
            continue
        if names is None:
            names = _checked_names([str(i) for i in range(len(fields))], columns, path, line)
        if len(fields) != len(names):
            yield InputError(f"expected {len(names)} {_SEPARATED[fmt]} fields, found {len(fields)}", path, line)
        else:
            yield Row(line, dict(zip(names, fields, strict=True)))


def _checked_names(names: list[str], columns: Sequence[str] | None, path: Path, line: int | None) -> list[str]:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"column {quoted(name)} appears twice in the header", path, line)
        seen.add(name)
    for wanted in columns or ():
        if wanted not in seen:
            raise InputError(f"no column {wanted!r} in header {quoted_names(names)}", path, line)
    return names


def _jsonl_rows(path: Path, columns: Sequence[str] | None, optional: Sequence[str]) -> Iterator[Row | InputError]:
    for number, chunk in enumerate(_non_empty_lines(path), start=1):
        text, error = _decode(chunk, path, number)
        yield error or _json_row(text, path, number, columns, optional)


def _json_row(
    text: str, path: Path, number: int, columns: Sequence[str] | None, optional: Sequence[str]
) -> Row | InputError:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return InputError(f"invalid JSON ({exc.msg} at column {exc.colno})", path, number)
    except (ValueError, RecursionError) as exc:  # over-long integers, absurd nesting
        return InputError(f"invalid JSON ({type(exc).__name__})", path, number)
    if not isinstance(record, dict):
        return InputError(f"expected a JSON object, found {type(record).__name__}", path, number)
    wanted = list(record) if columns is None else [*columns, *(key for key in optional if key in record)]
    fields = {}
    for key in wanted:
        if key not in record:
            return InputError(f"no key {key!r} in the object", path, number)
        value = _json_scalar(record[key])
        if value is None:
            kind = type(record[key]).__name__
            return InputError(f"key {key!r} holds {kind}, expected a string or an integer", path, number)
        if not _encodable(value):
            return InputError(f"key {key!r} holds a lone surrogate, not valid Unicode text", path, number)
        fields[key] = value
    return Row(number, fields)


def _json_scalar(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
