"""Helpers shared by the benchmark loaders: locating files under the data directory, choices.

Text is read through :mod:`paraxl.io.rows` (strict UTF-8, ``file:line`` errors). Of a line only its
newline is removed: ``\\n``, or ``\\r\\n`` (the ``\\r`` goes too), and a UTF-8 byte-order mark at the
start of a file is dropped; everything else, spaces included, is kept as it is in the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from paraxl.errors import InputError
from paraxl.io.rows import inside_data_dir, iter_lines


def data_file(data_dir: str | Path, relative: str, what: str) -> Path:
    """``data_dir / relative``, which must be a file; otherwise say which file was expected and where."""
    root = Path(data_dir)
    path = root / relative
    if path.is_file():
        return inside_data_dir(root, path)
    if not root.is_dir():
        raise InputError(
            f"{what}: the data directory {root} does not exist (benchmark files are read from a data "
            f"directory; expected {relative} under it)",
            path,
        )
    found = "is not a file" if path.exists() else "not found"
    raise InputError(f"{what} {found}: expected the file {relative} under the data directory {root}", path)


def data_folder(data_dir: str | Path, relative: str, what: str) -> Path:
    """``data_dir / relative``, which must be a folder; otherwise say which folder was expected and where."""
    root = Path(data_dir)
    path = root / relative
    if path.is_dir():
        return inside_data_dir(root, path)
    if not root.is_dir():
        raise InputError(
            f"{what}: the data directory {root} does not exist (benchmark files are read from a data "
            f"directory; expected the folder {relative} under it)",
            path,
        )
    raise InputError(f"{what} not found: expected the folder {relative} under the data directory {root}", path)


def check_choice(value: str, valid: Sequence[str], what: str) -> str:
    """``value`` if it is one of ``valid``; otherwise an error listing the valid ones."""
    if value not in valid:
        raise InputError(f"unknown {what} {value!r}; use one of {', '.join(valid)}")
    return value


def read_lines(path: Path) -> list[str]:
    """Every line of ``path`` (strict UTF-8), newline removed, empty lines kept so positions stay aligned.

    A file without any line (zero bytes) is an error: no benchmark file is legitimately empty.
    """
    lines = [text for _, text in iter_lines(path)]
    if not lines:
        raise InputError("the file is empty", path)
    return lines


def check_same_length(first: Path, first_count: int, second: Path, second_count: int, unit: str) -> None:
    """Aligned files must hold as many ``unit``s each; the shorter one is named with the line it ends on."""
    if first_count == second_count:
        return
    short, short_count, long, long_count = (
        (first, first_count, second, second_count)
        if first_count < second_count
        else (second, second_count, first, first_count)
    )
    raise InputError(
        f"ends after {short_count} {unit}(s) but {long} has {long_count}: the files are not aligned line by line",
        short,
        short_count if short_count else None,
    )
