"""The response schemas of ``/paraphrase`` and ``/search``, and the ``/health`` sections of the cross-encoder.

Kept beside the FastAPI adapter (:mod:`paraxl.serving.app`), which names them as ``response_model``:
the OpenAPI schema, and so the fuzzer (tests/test_schemathesis.py), checks every answer against them.
"""

from typing import Literal

from pydantic import BaseModel, Field


class ParaphraseResult(BaseModel):
    score: float = Field(
        description="the deciding score: the bi-encoder's cosine, the cross-encoder's sigmoid score "
        "(decided_by cross) or the fused probability (decided_by fusion)"
    )
    probability: float | None = Field(
        description="calibrated (or fused) probability of paraphrase; null for a fixed threshold or a cascade"
    )
    is_paraphrase: bool
    threshold: float = Field(description="score >= threshold decides is_paraphrase")
    decided_by: Literal["bi", "cross", "fusion"] = Field(
        description="the model whose score decided: bi, cross (a cascade sent the pair to the cross-encoder) "
        "or fusion (both models' scores combined)"
    )
    bi_score: float | None = Field(
        description="the bi-encoder's cosine similarity; null when a cross-encoder is served alone"
    )
    cross_score: float | None = Field(description="the cross-encoder's score; null where it did not run")


class ParaphraseResponse(BaseModel):
    model: str
    method: str = Field(description="how the decision was calibrated: its method, or cascade / fusion")
    results: list[ParaphraseResult]


class SearchHit(BaseModel):
    rank: int = Field(description="1 = best")
    id: str
    text: str | None
    score: float = Field(description="cosine similarity")
    bi_rank: int = Field(description="rank by cosine (the bi-encoder's); equals rank without rerank")
    cross_score: float | None = Field(description="the cross-encoder's score of (query, text); null without rerank")


class SearchResponse(BaseModel):
    model: str
    results: list[list[SearchHit]] = Field(description="one ranked hit list per query, in input order")


class CrossEncoderSummary(BaseModel):
    model: str = Field(description="the cross-encoder's spec")
    fingerprint: str = Field(description="sha256 over its weight files")


class RuleSummary(BaseModel):
    kind: Literal["cascade", "fusion"]
    rule: dict[str, float | list[float]] = Field(description="the rule's numbers, as its file stores them")
    cross_encoder: CrossEncoderSummary
