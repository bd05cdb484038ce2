"""Validation during training: PAWS-X accuracy at the threshold fitted on the same pairs.

The threshold is fitted on all languages' validation pairs pooled (the per-language sets
are small, so per-language thresholds are noisy); that pooled accuracy selects the best
checkpoint. Per-language accuracies at the pooled threshold are logged too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from paraxl.data.readers import PAWSX_LANGUAGES, LabeledPair, read_pawsx_pairs
from paraxl.evaluation.threshold import accuracy_at, best_threshold
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.similarity import paired_cosine


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

    def evaluate(self, model: BiEncoder, prompt_name: str | None = None) -> dict[str, float]:
        unique = sorted({text for pairs in self.pairs.values() for p in pairs for text in (p.first, p.second)})
        embeddings = model.encode(unique, batch_size=self.batch_size, prompt_name=prompt_name, show_progress=False)
        row = {text: index for index, text in enumerate(unique)}
        scores: dict[str, np.ndarray] = {}
        labels: dict[str, np.ndarray] = {}
        for lang, pairs in self.pairs.items():
            first = embeddings[[row[p.first] for p in pairs]]
            second = embeddings[[row[p.second] for p in pairs]]
            scores[lang] = paired_cosine(first, second)
            labels[lang] = np.array([p.label for p in pairs])
        threshold, accuracy = best_threshold(
            np.concatenate(list(scores.values())), np.concatenate(list(labels.values()))
        )
        result = {"accuracy": accuracy, "threshold": threshold}
        for lang in self.pairs:
            result[f"accuracy_{lang}"] = accuracy_at(scores[lang], labels[lang], threshold)
        return result
