"""``POST /rerank``: a query's texts ordered by a cross-encoder, in Hugging Face TEI's shape.

TEI (and Infinity) serve cross-encoders ("rerankers") on ``/rerank``: ``{"query": ..., "texts": [...],
"return_text": false}`` in, a JSON array of ``{"index", "score"[, "text"]}`` out, best first, where
``index`` points into ``texts`` and ``score`` is the sigmoid of the cross-encoder's logit. paraxl
answers the same for a cross-encoder served alone (``paraxl serve CE``) and for a bi-encoder served
with ``--rerank CE`` (409 without one). TEI's ``raw_scores`` and ``truncate`` are not taken (an unknown
field is a 422 naming it): scores are always sigmoid probabilities, and texts over the server's
``max_text_chars`` are refused (413), shorter ones truncated to the model's length as everywhere.

The cross-encoder runs in a worker thread, one call at a time; a request that waits longer than the
server's ``--max-wait-seconds`` for it is a 429 (:class:`~paraxl.serving.cross_encoding.SerialPairScorer`).
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoint's annotation at run time, and
# RerankRequest is a local class (it carries the service's limits), which a string annotation cannot name
from typing import Annotated, Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from paraxl.serving.cross_service import Served


class RerankResult(BaseModel):
    index: int = Field(description="position of the text in the request's texts")
    score: float = Field(description="the cross-encoder's score of (query, text), in [0, 1]; higher is better")
    text: str | None = Field(default=None, description="the text itself, with return_text (else left out)")


def add_rerank_route(app: FastAPI, service: Served, errors: dict[int | str, dict[str, Any]]) -> None:
    """``POST /rerank`` on ``app`` for ``service``; ``errors``: the documented error answers of the app."""
    limits = service.limits
    Text = Annotated[str, StringConstraints(min_length=1, max_length=limits.max_text_chars)]

    class RerankRequest(BaseModel):
        model_config = ConfigDict(
            extra="forbid",
            json_schema_extra={"examples": [{"query": "Where is the cat?", "texts": ["Le chat dort.", "Es regnet."]}]},
        )
        query: Text
        texts: list[Text] = Field(
            description=f"1 to {limits.max_batch} texts", min_length=1, max_length=limits.max_batch
        )
        return_text: bool = Field(default=False, strict=True, description="include each text in its result")

    @app.post(
        "/rerank",
        response_model=list[RerankResult],
        response_model_exclude_none=True,
        responses=errors,
        summary="A query's texts by cross-encoder score, best first (TEI's /rerank; needs a cross-encoder)",
    )
    async def rerank(request: RerankRequest) -> list[dict[str, object]]:
        query, texts, return_text = request.query, request.texts, request.return_text
        return await run_in_threadpool(lambda: service.rerank(query, texts, return_text=return_text))
