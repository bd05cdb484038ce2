"""What every service checks in a request's texts and pairs, against its :class:`ServiceLimits`.

Shared by the bi-encoder's service (:mod:`paraxl.serving.service`) and the cross-encoder's
(:mod:`paraxl.serving.cross_service`), so that both refuse the same input with the same status and
words: 413 for anything over a size limit, 422 for invalid input (the HTTP schema mirrors the limits,
these checks hold for callers that do not go through it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paraxl.serving.encoder_queue import ServiceError
from paraxl.serving.limits import ServiceLimits

TOO_LARGE = 413
INVALID = 422


@dataclass(frozen=True)
class RequestChecks:
    """The checks of one service's limits; each returns the checked value or raises :class:`ServiceError`."""

    limits: ServiceLimits

    def count(self, items: object, name: str) -> Sequence[object]:
        """``items`` as a non-empty list of at most ``max_batch`` items."""
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise ServiceError(INVALID, f"{name} must be a list, got {type(items).__name__}")
        if not items:
            raise ServiceError(INVALID, f"{name} is empty; send at least one")
        if len(items) > self.limits.max_batch:
            raise ServiceError(
                TOO_LARGE, f"{name} has {len(items)} items; this server accepts at most {self.limits.max_batch}"
            )
        return items

    def text(self, text: object, where: str) -> str:
        """``text`` as a non-blank string of at most ``max_text_chars`` characters (longer: refused, not cut)."""
        if not isinstance(text, str):
            raise ServiceError(INVALID, f"{where} must be a string, got {type(text).__name__}")
        if not text.strip():
            raise ServiceError(INVALID, f"{where} is empty or only whitespace")
        if len(text) > self.limits.max_text_chars:
            raise ServiceError(
                TOO_LARGE,
                f"{where} has {len(text)} characters; the limit is {self.limits.max_text_chars} "
                "(long texts are rejected, not truncated)",
            )
        return text

    def texts(self, texts: object, name: str) -> list[str]:
        return [self.text(text, f"{name}[{i}]") for i, text in enumerate(self.count(texts, name))]

    def pairs(self, pairs: object) -> tuple[list[str], list[str]]:
        """``pairs`` as the list of first texts and the list of second texts."""
        first: list[str] = []
        second: list[str] = []
        for i, pair in enumerate(self.count(pairs, "pairs")):
            if isinstance(pair, str | bytes) or not isinstance(pair, Sequence) or len(pair) != 2:
                raise ServiceError(INVALID, f"pairs[{i}] must be a list of two texts")
            first.append(self.text(pair[0], f"pairs[{i}][0]"))
            second.append(self.text(pair[1], f"pairs[{i}][1]"))
        return first, second
