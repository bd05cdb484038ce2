"""Pair files for ``paraxl calibrate`` and ``paraxl pi``: labelled pairs in, decision rows out.

Scoring the pairs is :mod:`paraxl.decision.scorers` (``score_pairs``, ``CosineScorer``).

Calibration data are labeled pair files (``sentence1``, ``sentence2``, ``label`` 0/1; TSV, CSV or
JSON lines) read strictly: a bad row stops the run with ``file:line: reason``, since a silently
skipped row would change the fitted threshold. Pairs holding PAWS-X's untranslated placeholder
``NS`` are left out and counted, as the cross-lingual evaluation and the training reader do: the
placeholder is not a sentence, and a calibration is for real sentences. (The monolingual PAWS-X
scores keep them only to stay comparable with published numbers.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from paraxl.data.pairs import read_labeled_pairs
from paraxl.data.readers import is_untranslated
from paraxl.errors import InputError
from paraxl.io.rows import RowPolicy, iter_rows, read_header
from paraxl.io.text_input import PAIR_COLUMNS, read_pairs

DECISION_COLUMNS = ("score", "probability", "label")


@dataclass(frozen=True)
class LabeledData:
    """Every usable pair of the calibration files, in file order; ``per_file`` counts pairs used per file."""

    first: list[str]
    second: list[str]
    labels: npt.NDArray[np.int64]  # (n,) 0/1
    files: list[Path]
    per_file: list[int]
    skipped_untranslated: int


def read_calibration_pairs(paths: Sequence[Path]) -> LabeledData:
    """Labeled pairs of ``paths`` (strict: the first bad row raises); ``NS`` pairs left out and counted."""
    if not paths:
        raise InputError("give at least one --data file of labeled pairs")
    first: list[str] = []
    second: list[str] = []
    labels: list[int] = []
    per_file: list[int] = []
    skipped = 0
    for path in paths:
        pairs = read_labeled_pairs(path, policy=RowPolicy(on_error="raise"))
        used = 0
        for pair in pairs:
            if pair.label is None:
                raise InputError("calibration needs a 'label' column (or key) with 0 or 1", pair.path, pair.line)
            if is_untranslated(pair.first, pair.second):
                skipped += 1
                continue
            first.append(pair.first)
            second.append(pair.second)
            labels.append(pair.label)
            used += 1
        if not pairs:
            raise InputError("no labeled pairs found (header only?)", path)
        per_file.append(used)
    return LabeledData(first, second, np.asarray(labels, dtype=np.int64), list(paths), per_file, skipped)


@dataclass(frozen=True)
class PairTable:
    """A pair TSV as read for ``paraxl pi``: all its columns, rows of values, and the two sentences."""

    columns: list[str]
    rows: list[list[str]]
    first: list[str]
    second: list[str]


def read_pair_table(path: Path) -> PairTable:
    """A TSV of pairs keeping every column (``sentence1``/``sentence2`` header, or 2 headerless fields).

    :func:`paraxl.io.text_input.read_pairs` validates (empty texts, widths: ``file:line`` errors);
    the rows are then read again in the same order to keep the extra columns.
    """
    pairs = read_pairs(path)
    first = [pair.first for pair in pairs]
    second = [pair.second for pair in pairs]
    header = read_header(path, "tsv")
    if not all(name in header for name in PAIR_COLUMNS):
        return PairTable(list(PAIR_COLUMNS), [[a, b] for a, b in zip(first, second, strict=True)], first, second)
    rows = [[row.fields[name] for name in header] for row in iter_rows(path, "tsv", columns=PAIR_COLUMNS)]
    return PairTable(list(header), rows, first, second)


def decision_columns(columns: Sequence[str]) -> list[str]:
    """The output header: input columns (one named like an output column gets an ``input_`` prefix),
    then ``score``, ``probability``, ``label``."""
    taken = set(columns)
    renamed = []
    for name in columns:
        if name in DECISION_COLUMNS:
            new = f"input_{name}"
            while new in taken:
                new = f"input_{new}"
            taken.add(new)
            name = new
        renamed.append(name)
    return [*renamed, *DECISION_COLUMNS]


def decision_rows(
    table: PairTable,
    scores: npt.NDArray[np.float64],
    probabilities: npt.NDArray[np.float64] | None,
    decided: npt.NDArray[np.bool_],
) -> list[list[str]]:
    """Each input row plus score (6 decimals), probability (6 decimals, ``nan`` when uncalibrated), label 1/0."""
    out = []
    for index, values in enumerate(table.rows):
        probability = "nan" if probabilities is None else f"{probabilities[index]:.6f}"
        out.append([*values, f"{scores[index]:.6f}", probability, "1" if decided[index] else "0"])
    return out
