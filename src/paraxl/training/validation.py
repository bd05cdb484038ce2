"""Validation during training: PAWS-X accuracy at the threshold fitted on the same pairs.

The PAWS-X protocol (:func:`paraxl.evaluation.pawsx_protocol.evaluate_pawsx`) with the
validation pairs as its fit pairs and no test pairs: the threshold is fitted on all languages'
validation pairs pooled (the per-language sets are small, so per-language thresholds are noisy);
that pooled accuracy selects the best checkpoint. Per-language accuracies at the pooled
threshold are logged too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from paraxl.data.readers import PAWSX_LANGUAGES, LabeledPair, read_pawsx_pairs
from paraxl.decision.scorers import CosineScorer
from paraxl.evaluation.pawsx_protocol import evaluate_pawsx
from paraxl.modeling.protocol import SentenceEncoder


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
        """``accuracy`` (pooled, at the threshold fitted on these pairs), ``threshold``, ``accuracy_<lang>``."""
        scorer = CosineScorer(model, self.batch_size, prompt_name=prompt_name, show_progress=False)
        scored = evaluate_pawsx(scorer, self.pairs)  # fit pairs only: one scorer call
        result = {"accuracy": scored.pooled_fit_accuracy, "threshold": scored.pooled_threshold}
        for lang, accuracy in scored.fit_accuracy.items():
            result[f"accuracy_{lang}"] = accuracy
        return result
