"""A cross-encoder run's pairs: the train pairs of its ``data`` section, its validation, and the scoring of it.

Train pairs are read as labelled pairs (PAWS-X from the data folder, or ``sentence1 / sentence2 /
label`` files); every pair needs a 0/1 label, and pairs with PAWS-X's untranslated placeholder
``NS`` on either side are left out and counted (:func:`~paraxl.training.cross_encoder.usable_train_pairs`),
as the benchmark script does. Pairs are taken language by language in the section's order, so
the rows are those of ``benchmarks/cross_encoder_pawsx.py`` for the same languages.
With ``data.cross_lingual`` (PAWS-X resplit train only, see the config), the cross-lingual pairs of
the same rows (:mod:`paraxl.data.cross_lingual_pairs`, drawn from the run's seed) follow them.

Validation is the PAWS-X protocol (:func:`~paraxl.evaluation.pawsx_protocol.evaluate_pawsx`) with
the validation pairs as its fit pairs and no test pairs: one threshold fitted on all languages
pooled, its accuracy, and each language's accuracy at it, under the key names of the script's
per-epoch records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paraxl.data.cross_lingual_pairs import cross_lingual_pairs
from paraxl.data.pairs import LabeledPair, read_labeled_pairs
from paraxl.data.readers import PAWSX_LANGUAGES, pawsx_file, read_pawsx_pairs
from paraxl.decision.scorers import PairScorer
from paraxl.errors import InputError
from paraxl.evaluation.pawsx_protocol import evaluate_pawsx, read_labelled
from paraxl.io.rows import RowPolicy
from paraxl.training.cross_encoder import usable_train_pairs
from paraxl.training.cross_encoder_config import CrossEncoderPawsxData, CrossEncoderValidation
from paraxl.training.data_config import PairsData, PawsxData


@dataclass(frozen=True)
class TrainPairs:
    """The pairs a run trains on and where they came from."""

    rows: list[LabeledPair]  # every language's usable pairs, languages in order
    pairs: dict[str, int]  # usable pairs per language ("" for a file without one)
    untranslated: dict[str, int]  # pairs left out for an ``NS`` side, per language
    skipped_rows: int  # bad rows skipped (data.on_error: skip)
    files: list[Path]
    cross_lingual: dict[str, int] = field(default_factory=dict)  # cross-lingual pairs per "A-B" (in ``rows``)
    # label-0 pairs mined per search, a language or "A-B" (training.retrieval_negatives), last in ``rows``
    retrieval_negatives: dict[str, int] = field(default_factory=dict)


def read_train_pairs(spec: PawsxData | PairsData, data_dir: Path | None, *, seed: int = 0) -> TrainPairs:
    """The usable labelled pairs of the config's ``data`` section; InputError for an unlabelled one or none.

    ``seed`` draws the cross-lingual pairs of ``data.cross_lingual`` (the run's seed).
    """
    policy = RowPolicy(on_error=spec.on_error)
    if isinstance(spec, PawsxData):
        if data_dir is None:
            raise InputError("data kind pawsx reads the benchmark data folder: pass --data-dir or set $PARAXL_DATA_DIR")
        languages = spec.languages or list(PAWSX_LANGUAGES)
        by_language = read_pawsx_pairs(data_dir, spec.split, languages, spec.protocol, policy)
        files = [pawsx_file(data_dir, spec.protocol, language, spec.split) for language in languages]
    else:
        files = [Path(path) for path in spec.paths]
        by_language = {}
        for path, language in zip(files, spec.languages or [""] * len(files), strict=True):
            found = read_labeled_pairs(
                path, first=spec.first, second=spec.second, label=spec.label, language=language, policy=policy
            )
            by_language.setdefault(language, []).extend(found)
    for rows in by_language.values():
        check_labels(rows)
    usable, untranslated = usable_train_pairs(by_language, None)
    rows = [pair for language_rows in usable.values() for pair in language_rows]
    cells: dict[str, int] = {}
    if isinstance(spec, CrossEncoderPawsxData) and spec.cross_lingual is not None:
        # the rows just read (all of them: a cross pair needs only its own two sides translated)
        cross = cross_lingual_pairs(
            by_language, languages=spec.cross_languages, pairs_per_unit=spec.cross_lingual.pairs_per_unit, seed=seed
        )
        rows += cross.rows
        cells = cross.cells
    if not rows:
        raise InputError(f"no usable labelled pairs to train on in {', '.join(map(str, files))}")
    counts = {language: len(language_rows) for language, language_rows in usable.items()}
    return TrainPairs(rows, counts, untranslated, policy.skipped, files, cells)


def check_labels(pairs: Sequence[LabeledPair]) -> None:
    """InputError at the first pair without a label (its file has no label column)."""
    for pair in pairs:
        if pair.label is None:
            raise InputError("a cross-encoder trains on labelled pairs: no 0/1 label", pair.path, pair.line)


def read_validation(spec: CrossEncoderValidation, data_dir: Path | None) -> dict[str, list[LabeledPair]]:
    """The labelled PAWS-X pairs of the validation section, per language."""
    if data_dir is None:
        raise InputError("validation reads the benchmark data folder: pass --data-dir or set $PARAXL_DATA_DIR")
    return read_labelled(data_dir, spec.split, spec.languages or PAWSX_LANGUAGES, spec.protocol)


def validation_files(spec: CrossEncoderValidation, data_dir: Path) -> list[Path]:
    return [pawsx_file(data_dir, spec.protocol, lang, spec.split) for lang in spec.languages or PAWSX_LANGUAGES]


def validate(scorer: PairScorer, pairs: dict[str, list[LabeledPair]]) -> dict[str, Any]:
    """The pooled threshold fitted on ``pairs``, its accuracy and each language's (the script's key names).

    All pairs are scored in one call, as the script's validation is (``by_split``), so the numbers match.
    """
    result = evaluate_pawsx(scorer, pairs, grouping="by_split")
    return {
        "threshold": result.pooled_threshold,
        "validation_accuracy": result.pooled_fit_accuracy,
        "validation_accuracy_per_language": result.fit_accuracy,
    }
