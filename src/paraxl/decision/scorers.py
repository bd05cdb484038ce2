"""The pair-scoring contract: sentence pairs in, one similarity score per pair out.

A :class:`PairScorer` is all a threshold protocol needs (the PAWS-X evaluation, training
validation, ``paraxl calibrate``): a bi-encoder satisfies it with the cosine of the two
embeddings (:class:`CosineScorer`, :class:`EmbeddingCosineScorer`), a cross-encoder with the
sigmoid of its logit (:class:`paraxl.modeling.cross_encoder.CrossEncoderScorer`). Higher means
"more likely a paraphrase"; a pair is predicted a paraphrase when ``score >= threshold``.

Two cosine scorers, because two float paths have produced published numbers and stay
bit-identical: the encoder path (``paraxl pi``, ``calibrate``, training validation, the demo)
takes float32 cosines of one ``encode`` call; the embedder path (``paraxl eval``) takes float64
cosines of float64 unit rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from paraxl.errors import InputError
from paraxl.modeling.protocol import Embedder, SentenceEncoder
from paraxl.retrieval import paired_cosine, unit_rows

FloatArray = npt.NDArray[np.float64]
Pair = tuple[str, str]


class PairScorer(Protocol):
    """Anything that scores sentence pairs: ``score(pairs) -> (n,)`` float64, higher = more similar.

    A batching scorer may round differently depending on which pairs share a call (padding
    changes float sums), so callers that publish numbers keep their grouping of calls fixed.
    """

    def score(self, pairs: Sequence[Pair]) -> FloatArray: ...


class CrossScorer(PairScorer, Protocol):
    """A cross-encoder's :class:`PairScorer` (torch or ONNX), which also says how many tokens of a pair it reads."""

    @property
    def max_length(self) -> int:
        """Tokens per pair (both texts, truncated longest first)."""
        ...


def score_pairs(
    encoder: SentenceEncoder,
    first: Sequence[str],
    second: Sequence[str],
    batch_size: int = 64,
    *,
    prompt_name: str | None = None,
    show_progress: bool | None = None,
) -> FloatArray:
    """Cosine of each ``(first[i], second[i])``: (n,) float64.

    Each distinct text is embedded once, (u, dim), whichever side it is on, in one ``encode``
    call. ``prompt_name`` as in :meth:`SentenceEncoder.encode` (None: the model's default;
    ``""``: none).
    """
    if len(first) != len(second):
        raise InputError(f"{len(first)} first sentences but {len(second)} second sentences")
    if not first:
        return np.zeros(0, dtype=np.float64)
    distinct = list(dict.fromkeys([*first, *second]))
    row = {text: index for index, text in enumerate(distinct)}
    vectors = encoder.encode(distinct, batch_size=batch_size, prompt_name=prompt_name, show_progress=show_progress)
    left = vectors[[row[text] for text in first]]  # (n, dim)
    right = vectors[[row[text] for text in second]]  # (n, dim)
    cosines: FloatArray = paired_cosine(left, right).astype(np.float64)
    return cosines


class CosineScorer:
    """A :class:`PairScorer` over a sentence encoder: :func:`score_pairs` (one ``encode`` per call).

    Args:
        encoder: any backend (PyTorch, ONNX Runtime).
        batch_size: texts per forward pass.
        prompt_name: as in :meth:`SentenceEncoder.encode` (None: the model's default; ``""``: none).
        show_progress: a progress bar for large calls (None: the encoder's rule).
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        batch_size: int = 64,
        *,
        prompt_name: str | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.encoder = encoder
        self.batch_size = batch_size
        self.prompt_name = prompt_name
        self.show_progress = show_progress

    def score(self, pairs: Sequence[Pair]) -> FloatArray:
        """(n,) float64 cosines (float32 arithmetic, as ``paraxl pi`` prints them)."""
        return score_pairs(
            self.encoder,
            [first for first, _ in pairs],
            [second for _, second in pairs],
            self.batch_size,
            prompt_name=self.prompt_name,
            show_progress=self.show_progress,
        )


class EmbeddingCosineScorer:
    """A :class:`PairScorer` over an :class:`Embedder` (usually a cached encoder): float64 cosines.

    Each call embeds the distinct first sentences, then the distinct second sentences not among
    them: two ``embed`` calls, as ``paraxl eval`` has always made them, so a cached embedder
    encodes the same batches and the scores stay bit-identical to earlier result files.
    """

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def score(self, pairs: Sequence[Pair]) -> FloatArray:
        """(n,) float64 cosines: row-wise dot products of float64 unit rows."""
        if not pairs:
            return np.zeros(0, dtype=np.float64)
        firsts = list(dict.fromkeys(first for first, _ in pairs))
        row = {text: index for index, text in enumerate(firsts)}
        seconds = list(dict.fromkeys(second for _, second in pairs if second not in row))
        row |= {text: len(firsts) + index for index, text in enumerate(seconds)}
        vectors = [unit_rows(self.embedder.embed(firsts))]  # (u1, dim) float64
        if seconds:
            vectors.append(unit_rows(self.embedder.embed(seconds)))  # (u2, dim)
        unit = np.concatenate(vectors)  # (u1 + u2, dim)
        left = unit[[row[first] for first, _ in pairs]]  # (n, dim)
        right = unit[[row[second] for _, second in pairs]]  # (n, dim)
        cosines: FloatArray = np.sum(left * right, axis=1)  # (n,)
        return cosines
