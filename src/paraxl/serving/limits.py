"""How much one request may ask of the service (enforced by the service layer and mirrored in the HTTP schema)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from paraxl.errors import InputError


@dataclass(frozen=True)
class ServiceLimits:
    """Per-request bounds that keep one client from monopolising the (single) encoder.

    ``max_batch`` counts the items of one request (texts, pairs or queries); ``max_text_chars``
    bounds each text in characters: longer texts are *rejected* (413), never silently truncated,
    so a client always knows what was embedded (the model still truncates to its own token limit).
    ``max_body_bytes`` is checked before any JSON is parsed.
    """

    max_batch: int = 256
    max_text_chars: int = 2000
    max_k: int = 100
    max_body_bytes: int = 1_000_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"service limit {name} must be a positive integer, got {value!r}")

    def as_dict(self) -> dict[str, int]:
        """The limits as plain JSON-ready numbers (for /health)."""
        return {name: int(value) for name, value in asdict(self).items()}
