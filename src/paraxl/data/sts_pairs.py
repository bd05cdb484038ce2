"""Graded-similarity training pairs (STS) from the data directory, as :class:`ScoredPair` units.

Layout under ``data_dir`` (see ``shared/data/README.md``)::

    stsb_multi_mt/stsb-{lang}-{split}.csv   CSV without header: sentence1,sentence2,score (0-5);
                                            lang: de en es fr it ja nl pl pt ru zh
    korsts/sts-{split}.tsv                  header genre filename year id score sentence1 sentence2
                                            (tab-separated, no quoting: quotes are text); lang ko

Every file is STS-B translated, row for row (the shared copies have the same score on every row
in all 12 languages), so row i's pairs share group id i: translations of one pair are never in
one batch, where their equal gold scores would rank nothing against each other. Scores become
[0, 1] (score / 5). A pair whose two sentences are the same text is dropped (its cosine is 1
whatever the model) and counted in ``dropped_units``. The evaluation scores the test splits, so
training reads only ``train`` or ``dev``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from paraxl.data.readers import check_languages
from paraxl.data.records import ScoredPair, TextUnit, TrainingData
from paraxl.errors import InputError
from paraxl.io.rows import Row, RowPolicy, inside_data_dir, iter_row_results, quoted

__all__ = [
    "MAX_SCORE",
    "STS_LANGUAGES",
    "STS_TRAINING_SPLITS",
    "check_sts_split",
    "read_sts",
    "read_sts_file",
    "sts_path",
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
    sources: list[Path] = []
    for language in languages:
        path = sts_path(data_dir, language, split)
        pairs, same = read_sts_file(path, language, policy)
        units += pairs
        dropped += same
        sources.append(path)
    if not units:
        raise InputError(f"no scored pairs in the STS {split} files of {', '.join(languages)} under {data_dir}")
    return TrainingData(units, policy.skipped - before, dropped, sources)


def sts_path(data_dir: str | Path, language: str, split: str) -> Path:
    """The file of ``language``'s ``split`` under ``data_dir`` (which must hold it)."""
    relative = f"korsts/sts-{split}.tsv" if language == "ko" else f"stsb_multi_mt/stsb-{language}-{split}.csv"
    path = Path(data_dir) / relative
    if not path.is_file():
        raise InputError(f"STS {language} {split} file not found: expected {relative} under {data_dir}", path)
    return inside_data_dir(data_dir, path)


def read_sts_file(path: Path, language: str, policy: RowPolicy) -> tuple[list[ScoredPair], int]:
    """The pairs of one STS file (KorSTS layout if it ends in ``.tsv``, else stsb_multi_mt's CSV) and
    the number of pairs dropped for having the same text twice. Group id: the row's position."""
    if path.suffix == ".tsv":
        records = iter_row_results(path, "tsv", header=True, columns=("score", "sentence1", "sentence2"))
    else:
        records = iter_row_results(path, "csv", header=("sentence1", "sentence2", "score"))
    pairs: list[ScoredPair] = []
    same = 0
    for position, record in enumerate(records):
        if isinstance(record, InputError):
            policy.reject(record)
            continue
        try:
            first, second, score = _scored_row(record, path)
        except InputError as error:
            policy.reject(error)
            continue
        if first == second:
            same += 1
            continue
        pairs.append(ScoredPair(position, (first, second), (language, language), score=score / MAX_SCORE))
    return pairs, same


def _scored_row(row: Row, path: Path) -> tuple[str, str, float]:
    texts = []
    for column in ("sentence1", "sentence2"):
        text = row.fields[column].strip()
        if not text:
            raise InputError(f"empty text in column {column!r}", path, row.line)
        texts.append(text)
    raw = row.fields["score"].strip()
    try:
        score = float(raw)
    except ValueError:
        raise InputError(f"score {quoted(raw)} is not a number", path, row.line) from None
    if not (math.isfinite(score) and 0.0 <= score <= MAX_SCORE):
        raise InputError(f"score {quoted(raw)} is outside the range 0 to {MAX_SCORE:g}", path, row.line)
    return texts[0], texts[1], score
