"""Line-aligned files: row i of every file is the same item in another language (XNLI, Tatoeba).

Row i of N files forms one unit per column (its N texts, languages parallel). Every text of a
unit is linked in a :class:`GroupBuilder`, so an item that recurs with a slightly different
translation ("I have never been to Texas" / "... Texas." in XNLI) still shares one group id through
the texts that did not change. Units are rows, so such a merge only keeps two units out of one
batch; it never makes texts of different rows positives of each other. Alignment is the
whole point, so a bad row in one file (skip policy) drops that row position from every file, and
files of different lengths are an error whatever the policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from paraxl.data.grouping import GroupBuilder
from paraxl.data.records import TrainingData
from paraxl.errors import InputError
from paraxl.io.rows import Row, RowFormat, RowPolicy, iter_row_results


class AlignedCollector:
    """Units from one or more sets of aligned files (e.g. XNLI dev and test), merged at the end."""

    def __init__(self) -> None:
        self.builder = GroupBuilder()
        self.units: list[list[int]] = []
        self.skipped_rows = 0
        self.sources: list[Path] = []

    def read(
        self,
        paths: Sequence[str | Path],
        *,
        languages: Sequence[str],
        columns: Sequence[str] | None,
        header: bool,
        policy: RowPolicy,
    ) -> None:
        """Add the units of one set of aligned files; ``columns=None`` reads one text per line."""
        files = [Path(path) for path in paths]
        if len(files) < 2:
            raise InputError(f"aligned reading needs at least two files, got {len(files)}")
        if len(files) != len(languages):
            raise InputError(f"{len(files)} aligned files but {len(languages)} languages; give one per file")
        fmt: RowFormat = "txt" if columns is None else "tsv"
        results = [list(iter_row_results(path, fmt, header=header, columns=columns)) for path in files]
        _check_lengths(files, results, header)
        self.sources.extend(files)
        for position in range(len(results[0])):
            rows = _good_rows([result[position] for result in results], files, columns, policy)
            if rows is None:
                self.skipped_rows += 1
                continue
            for column in columns or (None,):
                texts = [_text(row, column) for row in rows]
                nodes = [self.builder.node(language, text) for language, text in zip(languages, texts, strict=True)]
                for node in nodes[1:]:
                    self.builder.link(nodes[0], node)
                self.units.append(nodes)

    def finish(self, *, what: str) -> TrainingData:
        """Everything read so far as training data; no groups at all is an error."""
        built = self.builder.build(self.units)
        if not built.units:
            raise InputError(
                f"no training groups in {what} ({self.skipped_rows} row(s) skipped, "
                f"{built.dropped_units} unit(s) with fewer than two distinct texts)"
            )
        return TrainingData(built.units, self.skipped_rows, built.dropped_units, self.sources, built.duplicate_units)


def _good_rows(
    results: list[Row | InputError],
    files: list[Path],
    columns: Sequence[str] | None,
    policy: RowPolicy,
) -> list[Row] | None:
    """The row of every file at one position, or None after reporting each file's problem."""
    rows: list[Row] = []
    bad = False
    for result, path in zip(results, files, strict=True):
        if isinstance(result, Row):
            empty = [column for column in columns or (None,) if not _text(result, column).strip()]
            if not empty:
                rows.append(result)
                continue
            where = f" in column {empty[0]!r}" if empty[0] is not None else ""
            result = InputError(f"empty text{where}", path, result.line)
        policy.reject(result)
        bad = True
    return None if bad else rows


def _text(row: Row, column: str | None) -> str:
    return row.fields[column] if column is not None else next(iter(row.fields.values()))


def _check_lengths(files: list[Path], results: list[list[Row | InputError]], header: bool) -> None:
    counts = [len(result) for result in results]
    short = min(range(len(files)), key=counts.__getitem__)
    long = max(range(len(files)), key=counts.__getitem__)
    if counts[short] != counts[long]:
        ended = results[short][-1].line if results[short] else (1 if header else None)
        raise InputError(
            f"ends after {counts[short]} row(s) but {files[long]} has {counts[long]}: the files are not line-aligned",
            files[short],
            ended,
        )


def read_aligned_files(
    paths: Sequence[str | Path],
    *,
    languages: Sequence[str],
    columns: Sequence[str] | None = None,
    header: bool,
    policy: RowPolicy | None = None,
) -> TrainingData:
    """N >= 2 line-aligned files -> one unit per row (and per column), duplicates merged.

    ``columns=None``: plain text, one sentence per line (``header=True`` skips a first line).
    Otherwise TSV, each named column its own units (XNLI: ``premise`` and ``hypothesis``);
    ``header=False`` names the columns ``"0"``, ``"1"``, ...
    """
    collector = AlignedCollector()
    collector.read(paths, languages=languages, columns=columns, header=header, policy=policy or RowPolicy())
    return collector.finish(what=", ".join(str(path) for path in paths))


def read_parallel(
    paths: Sequence[str | Path], languages: Sequence[str], policy: RowPolicy | None = None
) -> TrainingData:
    """Plain line-aligned files (Tatoeba, WMT): one sentence per line, no header."""
    return read_aligned_files(paths, languages=languages, header=False, policy=policy)
