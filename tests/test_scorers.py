"""decision/scorers.py: the PairScorer contract and the cosine scorers (oracles: naive cosines)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from paraxl.decision.scorers import CosineScorer, EmbeddingCosineScorer, PairScorer, score_pairs
from paraxl.modeling.bi_encoder import BiEncoder

from .eval_fixtures import BagOfWordsEmbedder

PAIRS = [("the cat sat", "le chat"), ("the dog ran", "the cat sat"), ("the cat sat", "der hund"), ("a", "le chat")]


class RecordingEmbedder(BagOfWordsEmbedder):
    """Remembers the texts of every ``embed`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(list(texts))
        return super().embed(texts)


def naive_cosines(vectors_first: np.ndarray, vectors_second: np.ndarray) -> np.ndarray:
    first, second = vectors_first.astype(np.float64), vectors_second.astype(np.float64)
    return np.array([a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(first, second, strict=True)])


def test_embedding_scorer_embeds_each_distinct_text_once_and_returns_float64_cosines() -> None:
    embedder = RecordingEmbedder()
    scorer: PairScorer = EmbeddingCosineScorer(embedder)
    scores = scorer.score(PAIRS)
    # first sides (distinct, in order), then the second sides not among them
    assert embedder.batches == [["the cat sat", "the dog ran", "a"], ["le chat", "der hund"]]
    reference = BagOfWordsEmbedder()
    expected = naive_cosines(reference.embed([a for a, _ in PAIRS]), reference.embed([b for _, b in PAIRS]))
    assert scores.dtype == np.float64 and scores.shape == (4,)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)
    assert EmbeddingCosineScorer(embedder).score([]).shape == (0,)


def test_cosine_scorer_is_score_pairs_with_its_settings(tiny_model_dir: Path) -> None:
    encoder = BiEncoder.load(tiny_model_dir)
    scores = CosineScorer(encoder, batch_size=2, prompt_name="").score(PAIRS)
    expected = score_pairs(encoder, [a for a, _ in PAIRS], [b for _, b in PAIRS], 2, prompt_name="")
    np.testing.assert_array_equal(scores, expected)
    first = encoder.encode([a for a, _ in PAIRS], prompt_name="")
    second = encoder.encode([b for _, b in PAIRS], prompt_name="")
    np.testing.assert_allclose(scores, naive_cosines(first, second), atol=1e-5)
    assert scores.dtype == np.float64


def test_cross_encoder_scorer_is_the_sigmoid_of_predict(tiny_model_dir: Path) -> None:
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    from paraxl.modeling.cross_encoder import CrossEncoderScorer, load_cross_encoder

    torch.manual_seed(0)
    model = load_cross_encoder(tiny_model_dir, max_length=64)
    torch.manual_seed(0)
    reference = CrossEncoder(str(tiny_model_dir), num_labels=1, max_length=64, activation_fn=torch.nn.Sigmoid())
    scores = CrossEncoderScorer(model, batch_size=3).score(PAIRS)
    assert scores.dtype == np.float64 and ((scores > 0) & (scores < 1)).all()
    np.testing.assert_allclose(scores, reference.predict(PAIRS, batch_size=16), atol=1e-5)
    assert CrossEncoderScorer(model).score([]).shape == (0,)
