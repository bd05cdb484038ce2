"""Turn the config's ``data`` section into training units (one reader per data kind)."""

from __future__ import annotations

from pathlib import Path

from paraxl.data.readers import (
    PAWSX_LANGUAGES,
    LabeledPair,
    groups_from_pairs,
    read_labeled_pairs,
    read_parallel,
    read_pawsx,
    read_xnli,
)
from paraxl.data.records import TrainingData
from paraxl.data.sts_pairs import STS_LANGUAGES, read_sts
from paraxl.data.word_swap import with_swap_negatives
from paraxl.errors import InputError
from paraxl.io.rows import RowPolicy
from paraxl.training.data_config import PairsData, ParallelData, PawsxData, StsData, TrainData, XnliData


def load_training_data(spec: TrainData, data_dir: Path | None) -> TrainingData:
    """The units of the config's ``data`` section (``data_dir``: for the kinds that read from it)."""
    policy = RowPolicy(on_error=spec.on_error)
    if isinstance(spec, PawsxData):
        assert data_dir is not None
        languages = spec.languages or list(PAWSX_LANGUAGES)
        data = read_pawsx(data_dir, spec.split, languages, protocol=spec.protocol, policy=policy)
    elif isinstance(spec, XnliData):
        assert data_dir is not None
        if spec.languages is None:
            data = read_xnli(data_dir, splits=tuple(spec.splits), policy=policy)
        else:
            data = read_xnli(data_dir, splits=tuple(spec.splits), languages=tuple(spec.languages), policy=policy)
    elif isinstance(spec, StsData):
        assert data_dir is not None
        data = read_sts(data_dir, spec.split, spec.languages or STS_LANGUAGES, policy=policy)
    elif isinstance(spec, ParallelData):
        languages = spec.languages or [f"lang{i}" for i in range(len(spec.paths))]
        data = read_parallel([Path(p) for p in spec.paths], languages, policy=policy)
    else:
        data = _read_pairs(spec, policy)
    if spec.swap_negatives:
        data = with_swap_negatives(data)
    if len(data.units) < 2:
        raise InputError(f"only {len(data.units)} training group(s) with a positive; nothing to contrast")
    return data


def _read_pairs(spec: PairsData, policy: RowPolicy) -> TrainingData:
    languages = spec.languages or [""] * len(spec.paths)
    pairs: dict[str, list[LabeledPair]] = {}
    for path, language in zip(spec.paths, languages, strict=True):
        pairs.setdefault(language, []).extend(
            read_labeled_pairs(
                Path(path), first=spec.first, second=spec.second, label=spec.label, language=language, policy=policy
            )
        )
    # files of distinct languages are aligned by their `id` column (translations share a group)
    groups, dropped = groups_from_pairs(pairs, align_by_key=len(pairs) == len(spec.paths))
    return TrainingData(groups, policy.skipped, dropped, [Path(p) for p in spec.paths])
