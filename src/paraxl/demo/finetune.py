"""A short fine-tune on the PAWS-X resplit, scored before and after on held-out pairs.

What it measures: accuracy of ``cosine >= threshold`` on a seeded sample of the resplit
*test* pairs of all 7 languages, with the threshold fitted on a sample of the *validation*
pairs (all languages pooled) - the protocol of the full evaluation (``paraxl eval``, the same
:func:`~paraxl.evaluation.pawsx_protocol.evaluate_pawsx`), on
fewer pairs so that the whole demo takes minutes on a CPU. The training recipe is paper 1's
loss (additive-margin softmax, margin 0.3, scale 20, the PAWS-X label-0 partner as an explicit
hard negative) with frozen word embeddings, run for a few dozen steps.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import PAWSX_LANGUAGES, is_untranslated, read_pawsx_pairs
from paraxl.decision.scorers import CosineScorer
from paraxl.errors import InputError
from paraxl.evaluation.pawsx_protocol import evaluate_pawsx
from paraxl.modeling.protocol import SentenceEncoder
from paraxl.training.config import TrainConfig
from paraxl.training.trainer import TrainSummary


@dataclass(frozen=True)
class DemoSettings:
    steps: int = 30
    batch_size: int = 32  # groups per step: anchor + positive + its label-0 partner where PAWS-X has one
    lr: float = 5e-5
    validation_pairs: int = 100  # per language, to fit the threshold
    test_pairs: int = 150  # per language, to score
    max_seq_length: int = 96
    seed: int = 42


@dataclass(frozen=True)
class HeldOutPairs:
    """The demo's scoring pairs: per language, a seeded sample of validation and test pairs."""

    validation: dict[str, list[LabeledPair]]
    test: dict[str, list[LabeledPair]]


@dataclass(frozen=True)
class Scores:
    threshold: float
    per_language: dict[str, float]
    seconds: float
    mean: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", float(np.mean(list(self.per_language.values()))))


def held_out_pairs(data_dir: Path, settings: DemoSettings, languages: Sequence[str] = PAWSX_LANGUAGES) -> HeldOutPairs:
    """Seeded samples of the resplit validation and test pairs (pairs with ``NS`` left out)."""
    rng = np.random.default_rng(settings.seed)
    samples: dict[str, dict[str, list[LabeledPair]]] = {}
    for split, size in (("validation", settings.validation_pairs), ("test", settings.test_pairs)):
        pairs = read_pawsx_pairs(data_dir, split, languages, protocol="resplit")
        samples[split] = {}
        for language, rows in pairs.items():
            usable = [p for p in rows if not is_untranslated(p.first, p.second)]
            if not usable:
                raise InputError(f"no usable PAWS-X {split} pairs for {language!r} under {data_dir}")
            picks = rng.choice(len(usable), size=min(size, len(usable)), replace=False)
            samples[split][language] = [usable[int(i)] for i in sorted(picks)]
    return HeldOutPairs(samples["validation"], samples["test"])


def score(encoder: SentenceEncoder, pairs: HeldOutPairs, batch_size: int = 64) -> Scores:
    """Threshold fitted on the validation sample (pooled), accuracy per language on the test sample."""
    began = time.perf_counter()
    scorer = CosineScorer(encoder, batch_size, show_progress=False)
    # one encode over validation and test texts together, as the demo has always scored them
    result = evaluate_pawsx(scorer, pairs.validation, pairs.test, grouping="together")
    per_language = {lang: scores.at_pooled.accuracy for lang, scores in result.monolingual.items()}
    return Scores(result.pooled_threshold, per_language, time.perf_counter() - began)


def demo_config(model: str, output_dir: Path, settings: DemoSettings) -> TrainConfig:
    return TrainConfig.model_validate(
        {
            "model": {"name": model, "max_seq_length": settings.max_seq_length, "freeze_word_embeddings": True},
            "data": {"kind": "pawsx", "protocol": "resplit", "split": "train"},
            "loss": {"kind": "additive_margin", "margin": 0.3, "scale": 20.0, "explicit_negatives": 1},
            "optim": {"lr": settings.lr, "warmup_ratio": 0.1},
            "batch_size": settings.batch_size,
            "max_steps": settings.steps,
            "seed": settings.seed,
            "checkpoint_every": settings.steps,
            "keep_checkpoints": 1,
            "output_dir": str(output_dir),
        }
    )


@dataclass(frozen=True)
class DemoResult:
    before: Scores
    after: Scores
    training: TrainSummary
    model_folder: Path
