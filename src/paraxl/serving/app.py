"""FastAPI adapter over :class:`~paraxl.serving.service.ParaxlService`: JSON in, JSON out, nothing else.

Endpoints: ``GET /health``, ``POST /embed``, ``POST /similarity``, ``POST /paraphrase``, ``POST /search``
(OpenAPI schema at ``/openapi.json``, interactive docs at ``/docs``).

Errors always come back as ``{"error": "<one readable line>", "detail": [...]}``:

* 413: body over ``max_body_bytes`` (refused from its ``Content-Length`` before a byte is read, and
  by counting the bytes of a chunked body, before any JSON is parsed: :class:`BodySizeLimit`), too
  many items, a text over ``max_text_chars``;
* 422: malformed JSON (also invalid UTF-8, nesting too deep for the decoder, integers over 4300
  digits), wrong types, unknown fields, empty texts, bad ``k`` or prompt name;
* 409: ``/paraphrase`` without a calibration (or rule), ``/search`` without an index, ``rerank``
  without a cross-encoder, and every embedding route of a cross-encoder served alone
  (:mod:`paraxl.serving.cross_service`);
* 404 / 405: unknown route / wrong method;
* 500: only for a bug, logged with its traceback; bad input never causes one.

The encoding endpoints hand their work to FastAPI's thread pool through :class:`Admission`, which
answers 429 on the event loop when the encoder queue is full (a refusal never waits for a thread);
in the threads the service validates in parallel and its ``SerialEncoder`` serialises (and merges)
the forward passes. No
endpoint takes a file path, and CORS is off (add a middleware yourself to expose it to browsers).
"""

import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paraxl.serving.admission import Admission
from paraxl.serving.answer_schemas import CrossEncoderSummary, ParaphraseResponse, RuleSummary, SearchResponse
from paraxl.serving.auth import add_api_key
from paraxl.serving.cross_service import Served
from paraxl.serving.encoder_queue import RequestClock
from paraxl.serving.limits import ServiceLimits
from paraxl.serving.metrics import add_metrics
from paraxl.serving.openai_api import PREFIX as OPENAI_PREFIX
from paraxl.serving.openai_api import add_openai_routes, openai_error
from paraxl.serving.playground import router as playground_router
from paraxl.serving.rerank_route import add_rerank_route
from paraxl.serving.service import DEFAULT_K, ServiceError

log = logging.getLogger("paraxl.serving")


class ErrorResponse(BaseModel):
    """Every error: one line for people, and pydantic's per-field details for validation errors."""

    error: str = Field(description="what was wrong, in one line")
    detail: list[dict[str, Any]] = Field(default_factory=list, description="per-field problems (loc, msg, type)")


# The answers of the operational limits, documented so that clients (and the fuzzer in
# tests/test_schemathesis.py, which checks every answer against the schema) know them: 429 from the
# encoder queue on every route that encodes, 401 on every route when the server has an API key.
BUSY: dict[str, Any] = {
    "model": ErrorResponse,
    "description": "busy: the encoder queue is full, or the request waited past its deadline; retry later",
    "headers": {"Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer"}}},
}
UNAUTHORIZED: dict[str, Any] = {"model": ErrorResponse, "description": "missing or wrong API key (--api-key)"}


class Calibration(BaseModel):
    method: str
    threshold: float


class IndexSummary(BaseModel):
    count: int
    backend: str
    prompt_name: str | None


class HealthResponse(BaseModel):
    status: str = Field(examples=["ok"])
    version: str | None
    model: str = Field(description="the model spec this server was started with")
    kind: Literal["bi_encoder", "cross_encoder"] = Field(
        default="bi_encoder", description="cross_encoder: pairs only (/similarity, /paraphrase), no embeddings"
    )
    backend: str | None = Field(description="inference backend: torch, onnx or onnx-int8")
    fingerprint: str | None = Field(description="sha256 over the model files that decide its vectors")
    dimension: int | None = Field(description="length of the vectors; null for a cross-encoder (no vectors)")
    max_seq_length: int = Field(description="tokens per text (a cross-encoder: per pair); the model truncates")
    prompts: list[str]
    default_prompt_name: str | None
    calibration: Calibration | None = Field(description="null: /paraphrase answers 409 (unless a rule decides)")
    rule: RuleSummary | None = Field(default=None, description="a cascade or fusion deciding /paraphrase")
    index: IndexSummary | None = Field(description="null: /search answers 409")
    rerank: CrossEncoderSummary | None = Field(default=None, description="null: /search rerank answers 409")
    limits: dict[str, int]


class EmbedResponse(BaseModel):
    model: str
    dimension: int
    embeddings: list[list[float]] = Field(description="one vector per text, in input order")


class SimilarityResponse(BaseModel):
    model: str
    scores: list[float] = Field(
        description="cosine similarity of each pair (a cross-encoder: its score in [0, 1]), in input order"
    )


# /search takes exactly one of query (a text) or queries (a list), the other absent or null: stated in
# the schema too, so that clients and the fuzzer know that {} or both at once is a 422
ONE_OF_QUERY_OR_QUERIES: dict[str, Any] = {
    "examples": [{"query": "a cat on a mat", "k": 5}, {"queries": ["a", "b"]}],
    "oneOf": [
        {"required": [given], "properties": {given: {"type": kind}, other: {"type": "null"}}}
        for given, kind, other in (("query", "string", "queries"), ("queries", "array", "query"))
    ],
}


@dataclass(frozen=True)
class RequestModels:
    """The request schemas of one service: built per app because they carry the service's limits."""

    embed: type[BaseModel]
    pairs: type[BaseModel]
    search: type[BaseModel]


def request_models(limits: ServiceLimits) -> RequestModels:
    """Request schemas whose field constraints are ``limits`` (so OpenAPI shows the real bounds)."""
    Text = Annotated[str, StringConstraints(min_length=1, max_length=limits.max_text_chars)]
    Pair = tuple[Text, Text]
    most = limits.max_batch
    prompt_field = Field(
        default=None,
        description="prompt to prefix, e.g. query or passage for e5 (default: the model's default prompt)",
    )
    # lax mode (JSON arrays must become tuples), but no coercion where it would hide a client bug:
    # pydantic never turns numbers into strings, and k is strict (no "5" or true for 5 or 1)
    strict = ConfigDict(extra="forbid")

    class EmbedRequest(BaseModel):
        model_config = ConfigDict(
            **strict, json_schema_extra={"examples": [{"texts": ["The cat sits.", "Le chat est assis."]}]}
        )
        texts: list[Text] = Field(description=f"1 to {limits.max_batch} non-empty texts", min_length=1, max_length=most)
        prompt_name: str | None = prompt_field

    class PairsRequest(BaseModel):
        model_config = ConfigDict(
            **strict, json_schema_extra={"examples": [{"pairs": [["The cat sits.", "Le chat est assis."]]}]}
        )
        pairs: list[Pair] = Field(
            description=f"1 to {limits.max_batch} [first, second] text pairs", min_length=1, max_length=most
        )

    class SearchRequest(BaseModel):
        model_config = ConfigDict(**strict, json_schema_extra=ONE_OF_QUERY_OR_QUERIES)
        query: Text | None = Field(default=None, description="one query (give this or queries)")
        queries: list[Text] | None = Field(
            default=None, description="several queries (give this or query)", min_length=1, max_length=most
        )
        k: int = Field(
            default=min(DEFAULT_K, limits.max_k),
            strict=True,
            ge=1,
            le=limits.max_k,
            description=f"hits per query, 1 to {limits.max_k}",
        )
        prompt_name: str | None = prompt_field
        rerank: bool = Field(
            default=False, strict=True, description="re-score the hits with the cross-encoder (needs --rerank)"
        )
        rerank_top_k: int | None = Field(
            default=None,
            strict=True,
            ge=1,
            le=limits.max_k,
            description="with rerank: hits the cross-encoder re-scores (default k; at least k), best k returned",
        )

        @model_validator(mode="after")
        def _one_of(self) -> Self:
            if (self.query is None) == (self.queries is None):
                raise ValueError("give exactly one of query or queries")
            return self

    return RequestModels(EmbedRequest, PairsRequest, SearchRequest)


def create_app(service: Served, *, api_key: str | None = None) -> FastAPI:
    """The HTTP application for ``service``; request schemas carry the service's limits; ``api_key``:
    every route but ``/health`` and the docs needs ``Authorization: Bearer <api_key>``."""
    app = FastAPI(
        title="paraxl",
        version=service.version or "0",
        description="Multilingual sentence embeddings and cross-lingual paraphrase identification "
        f"with {service.model_name}. Errors: 413 too large, 422 invalid, 409 feature not configured.",
        responses={401: UNAUTHORIZED} if api_key is not None else None,
    )
    app.add_middleware(BodySizeLimit, max_bytes=service.limits.max_body_bytes)
    app.add_middleware(RequestClock)  # a request's queue deadline runs from its last body byte
    add_api_key(app, api_key, _auth_error)  # 401 before a body is read, when a key is set
    add_metrics(app, service)  # GET /metrics; its middleware, added last, wraps and counts the others
    admission = Admission(service.queue)  # 429s decided on the event loop, not after waiting for a thread
    app.state.admission = admission
    _add_routes(app, service, request_models(service.limits), admission)
    add_openai_routes(
        app, service, admission, keyed=api_key is not None
    )  # /v1/embeddings, /v1/models: what OpenAI clients call
    app.include_router(playground_router)  # GET /: the playground page (not in the OpenAPI schema)
    _install_error_handlers(app)
    return app


def _add_routes(app: FastAPI, service: Served, models: RequestModels, admission: Admission) -> None:
    # FastAPI reads each endpoint's parameter annotation to pick its body schema: these locals
    # are the per-service classes built by request_models
    EmbedRequest, PairsRequest, SearchRequest = models.embed, models.pairs, models.search
    errors: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (409, 413, 422)}
    errors[429] = BUSY

    @app.get("/health", response_model=HealthResponse, summary="What is served, and the limits")
    def health() -> dict[str, object]:
        return service.health()

    @app.post("/embed", response_model=EmbedResponse, responses=errors, summary="Embed texts")
    async def embed(request: EmbedRequest) -> dict[str, object]:  # type: ignore[valid-type]
        texts, prompt = request.texts, request.prompt_name  # type: ignore[attr-defined]
        matrix = await admission.run(len(texts), lambda: service.embed(texts, prompt))  # (n, dim) float32
        return {"model": service.model_name, "dimension": int(matrix.shape[1]), "embeddings": matrix.tolist()}

    @app.post("/similarity", response_model=SimilarityResponse, responses=errors, summary="Cosine of text pairs")
    async def similarity(request: PairsRequest) -> dict[str, object]:  # type: ignore[valid-type]
        pairs = request.pairs  # type: ignore[attr-defined]
        return {
            "model": service.model_name,
            "scores": await admission.run(2 * len(pairs), lambda: service.similarity(pairs)),
        }

    @app.post(
        "/paraphrase",
        response_model=ParaphraseResponse,
        responses=errors,
        summary="Decide whether text pairs are paraphrases (needs a calibration or --threshold)",
    )
    async def paraphrase(request: PairsRequest) -> dict[str, object]:  # type: ignore[valid-type]
        pairs = request.pairs  # type: ignore[attr-defined]
        results = await admission.run(2 * len(pairs), lambda: service.paraphrase(pairs))
        return {"model": service.model_name, "method": service.decision_method, "results": results}

    @app.post(
        "/search", response_model=SearchResponse, responses=errors, summary="Nearest indexed texts (needs --index)"
    )
    async def search(request: SearchRequest) -> dict[str, object]:  # type: ignore[valid-type]
        queries = request.queries if request.queries is not None else [request.query or ""]  # type: ignore[attr-defined]
        k, prompt = request.k, request.prompt_name  # type: ignore[attr-defined]
        rerank, depth = request.rerank, request.rerank_top_k  # type: ignore[attr-defined]
        hits = await admission.run(
            len(queries), lambda: service.search(queries, k, prompt, rerank=rerank, rerank_top_k=depth)
        )
        return {"model": service.model_name, "results": hits}

    add_rerank_route(app, service, errors)  # POST /rerank: TEI's reranker route


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        # Retry-After on a 429
        return _error(exc.status, exc.message, headers=exc.headers or None, path=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": list(error.get("loc", ())), "msg": _message(error), "type": error.get("type", "")}
            for error in exc.errors()
        ]
        too_large = any(_over_limit(problem) for problem in problems)
        first = problems[0] if problems else {"loc": [], "msg": "invalid request", "type": ""}
        where = ".".join(str(part) for part in first["loc"][1:]) or "body"
        if first["type"] == "json_invalid":
            where = "body"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return _error(413 if too_large else 422, f"{where}: {first['msg']}{more}", problems, path=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # FastAPI's "error parsing the body" (400) for whatever its JSON decoder raised besides
            # JSONDecodeError: invalid UTF-8, nesting past the recursion limit, an integer over
            # Python's 4300 digits. Malformed JSON all the same: 422 with the reason, as documented.
            message = f"body: {_unparsable_reason(exc.__cause__)}"
            detail = [{"loc": ["body"], "msg": message[6:], "type": "json_invalid"}]
            return _error(422, message, detail, path=request.url.path)
        headers = dict(exc.headers) if exc.headers else None
        return _error(exc.status_code, str(exc.detail), headers=headers, path=request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal server error (logged on the server)", path=request.url.path)


class BodyTooLarge(StarletteHTTPException):
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body over the limit of {max_bytes} bytes")


class BodySizeLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, before the JSON parser sees it.

    A declared ``Content-Length`` over the limit is answered at once, without reading the body; a
    chunked body is counted as it arrives and refused as soon as it passes the limit (FastAPI turns
    the :class:`BodyTooLarge` raised from ``receive`` into a response through our handlers).
    FastAPI's own ``max_body_size`` does the same, but answers the first case with a plain-text
    body from outside the app's exception handlers; this keeps every error in the JSON shape above.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            error = BodyTooLarge(self.max_bytes)
            await _error(error.status_code, str(error.detail), path=scope["path"])(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        await self.app(scope, counted, send)


def _over_limit(problem: dict[str, Any]) -> bool:
    """A text over max_text_chars, or a top-level list (``body.texts``) over max_batch: 413, not 422.

    A pair with three members is also "too_long" for pydantic, but that is malformed, not large.
    """
    return problem["type"] == "string_too_long" or (problem["type"] == "too_long" and len(problem["loc"]) == 2)


def _unparsable_reason(cause: BaseException) -> str:
    """One line saying why a body that is not valid JSON for Python's decoder was refused."""
    if isinstance(cause, UnicodeDecodeError):
        return f"not valid UTF-8 (byte {cause.start}: {cause.reason}); send JSON as UTF-8"
    if isinstance(cause, RecursionError):
        return "invalid JSON: nested too deeply"
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return "invalid JSON: a number too large (over 4300 digits)"
    return f"cannot be parsed as JSON ({type(cause).__name__})"


def _message(error: Any) -> str:
    """pydantic's message, with the JSON decoder's reason for malformed JSON."""
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return f"invalid JSON at character {error['loc'][-1]}: {reason}"
    if error.get("type") == "model_attributes_type" and tuple(error.get("loc", ())) == ("body",):
        return "the body must be a JSON object, sent with Content-Type: application/json"
    return str(error.get("msg", "invalid"))


def _auth_error(status: int, message: str, headers: dict[str, str], path: str) -> JSONResponse:
    return _error(status, message, headers=headers, path=path)


def _error(
    status: int,
    message: str,
    detail: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    *,
    path: str = "",
) -> JSONResponse:
    if path.startswith(OPENAI_PREFIX):  # the one place the OpenAI routes get OpenAI's error shape
        return openai_error(status, message, detail, headers)
    return JSONResponse(status_code=status, content={"error": message, "detail": detail or []}, headers=headers)
