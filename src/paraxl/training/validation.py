"""Validation during training: PAWS-X accuracy at the threshold fitted on the same pairs.

The threshold is fitted on all languages' validation pairs pooled (the per-language sets
are small, so per-language thresholds are noisy); that pooled accuracy selects the best
checkpoint. Per-language accuracies at the pooled threshold are logged too.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from paraxl.data.readers import PAWSX_LANGUAGES, LabeledPair, read_pawsx_pairs
from paraxl.decision.pairs import score_pairs
from paraxl.evaluation.threshold import accuracy_at, best_threshold
from paraxl.modeling.protocol import SentenceEncoder

Key = TypeVar("Key", bound=Hashable)


class PairValidation:
    """Scores labeled pairs with a model; ``metric`` is the pooled threshold accuracy."""

    def __init__(self, pairs_by_language: Mapping[str, Sequence[LabeledPair]], batch_size: int = 64) -> None:
        self.pairs = {lang: list(pairs) for lang, pairs in pairs_by_language.items() if pairs}
        self.batch_size = batch_size
        for lang, pairs in self.pairs.items():
            if any(pair.label is None for pair in pairs):
                raise ValueError(f"validation pairs of {lang!r} need labels")

    @classmethod
    def pawsx(
        cls, data_dir: Path, split: str, protocol: str, languages: Sequence[str] | None, batch_size: int
    ) -> PairValidation:
        pairs = read_pawsx_pairs(data_dir, split, languages or PAWSX_LANGUAGES, protocol=protocol)  # type: ignore[arg-type]
        return cls(pairs, batch_size)

    def evaluate(self, model: SentenceEncoder, prompt_name: str | None = None) -> dict[str, float]:
        scored = labeled_cosines(model, self.pairs, self.batch_size, prompt_name=prompt_name)
        threshold, accuracy = pooled_threshold(scored.values())
        result = {"accuracy": accuracy, "threshold": threshold}
        for lang, (scores, labels) in scored.items():
            result[f"accuracy_{lang}"] = accuracy_at(scores, labels, threshold)
        return result


def labeled_cosines(
    encoder: SentenceEncoder,
    pairs_by_set: Mapping[Key, Sequence[LabeledPair]],
    batch_size: int = 64,
    *,
    prompt_name: str | None = None,
) -> dict[Key, tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]]:
    """Per named set of labeled pairs: (cosines (n,), labels (n,)).

    One :func:`score_pairs` call over all the sets, so a text in several sets is embedded once.
    """
    flat = [pair for pairs in pairs_by_set.values() for pair in pairs]
    cosines = score_pairs(
        encoder,
        [p.first for p in flat],
        [p.second for p in flat],
        batch_size,
        prompt_name=prompt_name,
        show_progress=False,
    )
    scored, start = {}, 0
    for key, pairs in pairs_by_set.items():
        labels = np.array([p.label for p in pairs], dtype=np.int64)
        scored[key] = (cosines[start : start + len(pairs)], labels)
        start += len(pairs)
    return scored


def pooled_threshold(scored: Iterable[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """The accuracy-maximising threshold over several sets' (scores, labels) pooled, and its accuracy."""
    parts = list(scored)
    return best_threshold(np.concatenate([s for s, _ in parts]), np.concatenate([y for _, y in parts]))
