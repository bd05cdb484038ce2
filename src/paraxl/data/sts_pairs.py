"""Graded-similarity training pairs (STS) from the data directory, as :class:`ScoredPair` units;
and the one definition of the STS-B files' layout and rows, which the evaluation's loaders read too.

Layout under ``data_dir`` (see ``shared/data/README.md``)::

    stsb_multi_mt/stsb-{lang}-{split}.csv   CSV without header: sentence1,sentence2,score (0-5);
                                            lang: de en es fr it ja nl pl pt ru zh
    korsts/sts-{split}.tsv                  header genre filename year id score sentence1 sentence2
                                            (tab-separated, no quoting: quotes are text); lang ko

Every file is STS-B translated, row for row (the shared copies have the same score on every row
in all 12 languages), so row i's pairs share group id i: translations of one pair are never in
one batch, where their equal gold scores would rank nothing against each other. That is checked:
files of another row count, or a row whose score differs from the first language's, are refused
(their group ids would pair unrelated rows). Scores become
[0, 1] (score / 5). A pair whose two sentences are the same text is dropped (its cosine is 1
whatever the model) and counted in ``dropped_units``. The evaluation scores the test splits, so
training reads only ``train`` or ``dev``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from paraxl.data.readers import check_languages
from paraxl.data.records import ScoredPair, TextUnit, TrainingData
from paraxl.errors import InputError
from paraxl.io.rows import Row, RowPolicy, inside_data_dir, iter_row_results, parse_score

__all__ = [
    "MAX_SCORE",
    "STS_LANGUAGES",
    "STS_TRAINING_SPLITS",
    "StsFile",
    "check_sts_split",
    "read_sts",
    "read_sts_file",
    "sts_path",
    "sts_relative_path",
    "sts_row_results",
    "sts_score",
]

STSB_LANGUAGES = ("de", "en", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh")
STS_LANGUAGES = (*STSB_LANGUAGES, "ko")  # ko: KorSTS
STS_TRAINING_SPLITS = ("train", "dev")
MAX_SCORE = 5.0  # STS-B's scale is 0-5


def check_sts_split(split: str) -> str:
    """``split`` if training may read it; the test split (the evaluation's) is refused."""
    if split == "test":
        raise InputError(
            "the STS test splits (stsb_multi_mt, KorSTS) are what the evaluation scores; training on them "
            f"would report a leak as a gain: use split {' or '.join(STS_TRAINING_SPLITS)}"
        )
    if split not in STS_TRAINING_SPLITS:
        raise InputError(f"unknown STS split {split!r}; use {' or '.join(STS_TRAINING_SPLITS)}")
    return split


@dataclass
class StsFile:
    """One STS file read: its pairs, and what the alignment check across languages compares."""

    path: Path
    pairs: list[ScoredPair] = field(default_factory=list)
    same: int = 0  # pairs dropped for having the same text twice
    rows: int = 0  # data rows, good or bad (a row's position is its group id)
    scores: dict[int, tuple[int, float]] = field(default_factory=dict)  # position -> (line, score 0-5), good rows

    def check_aligned(self, first: StsFile) -> None:
        """InputError unless this file is ``first`` translated row for row: as many rows, the same scores."""
        if self.rows != first.rows:
            raise InputError(
                f"has {self.rows} rows but {first.path} has {first.rows}: the STS files of the languages must be "
                "translations of each other row for row (a pair's group id is its row)",
                self.path,
            )
        for position, (line, score) in self.scores.items():
            if position in first.scores and first.scores[position][1] != score:
                first_line, first_score = first.scores[position]
                raise InputError(
                    f"score {score:g} differs from {first_score:g} on line {first_line} of {first.path}: the STS "
                    "files of the languages must be translations of each other row for row",
                    self.path,
                    line,
                )


def read_sts(
    data_dir: str | Path,
    split: str = "train",
    languages: Sequence[str] = STS_LANGUAGES,
    policy: RowPolicy | None = None,
) -> TrainingData:
    """The scored pairs of ``languages`` (stsb_multi_mt's 11 and KorSTS's ko), one unit per pair and language.

    Bad rows (a score that is no number in 0-5, an empty sentence, a wrong field count) raise with
    their file and line, or go to ``policy`` (``skip``: counted in ``skipped_rows``).
    """
    check_sts_split(split)
    check_languages(languages, STS_LANGUAGES, "STS")
    policy = policy or RowPolicy()
    before = policy.skipped
    units: list[TextUnit] = []  # all ScoredPair
    dropped = 0
    files: list[StsFile] = []
    for language in languages:
        read = read_sts_file(sts_path(data_dir, language, split), language, policy)
        if files:
            read.check_aligned(files[0])
        units += read.pairs
        dropped += read.same
        files.append(read)
    sources = [read.path for read in files]
    if not units:
        raise InputError(f"no scored pairs in the STS {split} files of {', '.join(languages)} under {data_dir}")
    return TrainingData(units, policy.skipped - before, dropped, sources)


def sts_relative_path(language: str, split: str) -> str:
    """Where ``language``'s ``split`` lies under a data directory: KorSTS for ko, stsb_multi_mt otherwise."""
    return f"korsts/sts-{split}.tsv" if language == "ko" else f"stsb_multi_mt/stsb-{language}-{split}.csv"


def sts_row_results(path: Path) -> Iterator[Row | InputError]:
    """Every data row of an STS file, good or bad, in order (a row's position is its pair's identity).

    KorSTS (``.tsv``): a header row, tab-separated with no quoting (its quotes are text; a CSV
    reader would drop them, or join rows at an unmatched one), 7 fields. stsb_multi_mt (else): CSV
    without a header, ``sentence1,sentence2,score``, quoted as Python's :mod:`csv` writes it.
    Rows carry ``sentence1``, ``sentence2`` and ``score`` (use :func:`sts_score`).
    """
    if path.suffix == ".tsv":
        return iter_row_results(path, "tsv", header=True, columns=("score", "sentence1", "sentence2"))
    return iter_row_results(path, "csv", header=("sentence1", "sentence2", "score"))


def sts_score(row: Row, path: Path) -> float:
    """The row's gold score, a number in STS-B's 0-5; else an error naming the file and line."""
    return parse_score(row.fields["score"].strip(), path, row.line, bounds=(0.0, MAX_SCORE))


def sts_path(data_dir: str | Path, language: str, split: str) -> Path:
    """The file of ``language``'s ``split`` under ``data_dir`` (which must hold it)."""
    relative = sts_relative_path(language, split)
    path = Path(data_dir) / relative
    if not path.is_file():
        raise InputError(f"STS {language} {split} file not found: expected {relative} under {data_dir}", path)
    return inside_data_dir(data_dir, path)


def read_sts_file(path: Path, language: str, policy: RowPolicy) -> StsFile:
    """The pairs of one STS file (KorSTS layout if it ends in ``.tsv``, else stsb_multi_mt's CSV), with
    the count of pairs dropped for having the same text twice. Group id: the row's position."""
    read = StsFile(path)
    for position, record in enumerate(sts_row_results(path)):
        read.rows += 1
        if isinstance(record, InputError):
            policy.reject(record)
            continue
        try:
            first, second, score = _scored_row(record, path)
        except InputError as error:
            policy.reject(error)
            continue
        read.scores[position] = (record.line, score)
        if first == second:
            read.same += 1
            continue
        read.pairs.append(ScoredPair(position, (first, second), (language, language), score=score / MAX_SCORE))
    return read


def _scored_row(row: Row, path: Path) -> tuple[str, str, float]:
    texts = []
    for column in ("sentence1", "sentence2"):
        text = row.fields[column].strip()
        if not text:
            raise InputError(f"empty text in column {column!r}", path, row.line)
        texts.append(text)
    return texts[0], texts[1], sts_score(row, path)
