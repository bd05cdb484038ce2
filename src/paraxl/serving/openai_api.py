"""OpenAI-compatible routes: ``POST /v1/embeddings``, ``GET /v1/models`` and ``GET /v1/models/{id}``.

What the OpenAI clients (and the tools built on them: LangChain, LlamaIndex, LiteLLM, ...) send and
expect, over the same :class:`~paraxl.serving.service.ParaxlService` as ``/embed``: the vectors are
``/embed``'s (and ``paraxl encode``'s) for the model's default prompt. paraxl takes text, so token-id
arrays are refused (422); ``dimensions`` is accepted only when it is the model's own dimension (the
model cannot shorten its vectors). Errors on ``/v1/`` come back in OpenAI's shape
``{"error": {"message", "type", "param", "code"}}`` (:func:`openai_error`, used by the app's handlers).
"""

import base64
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, Path
from fastapi.responses import JSONResponse
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from paraxl.serving.admission import Admission
from paraxl.serving.cross_service import Served

PREFIX = "/v1/"
OWNER = "paraxl"
# a served model's name is a spec: bundled:NAME, hub:ORG/NAME or a folder path, never longer than a path
MAX_MODEL_ID = 4096

# OpenAI's error "type" per status (its API answers 4xx with invalid_request_error except these)
_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
_CODES = {401: "invalid_api_key", 404: "not_found", 413: "request_too_large", 429: "rate_limit_exceeded"}


class OpenAIErrorBody(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error for bad input, server_error for a bug")
    param: str | None = Field(description="the request field at fault, if one is")
    code: str | None = Field(description="e.g. model_not_found, request_too_large")


class OpenAIError(BaseModel):
    error: OpenAIErrorBody


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int = Field(description="position of the text in input")
    embedding: list[float] | str = Field(description="the vector, or its little-endian float32 bytes in base64")


class Usage(BaseModel):
    prompt_tokens: int = Field(description="tokens the model read (prompt prefix and special tokens included)")
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="when this server started (Unix seconds)")
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def openai_error(
    status: int,
    message: str,
    detail: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    *,
    code: str | None = None,
) -> JSONResponse:
    """An error in OpenAI's shape; ``param`` is the body field named by the first validation problem."""
    loc = [str(part) for part in (detail or [{}])[0].get("loc", [])]
    param = loc[1] if len(loc) > 1 and loc[0] == "body" else None
    kind = "server_error" if status >= 500 else _TYPES.get(status, "invalid_request_error")
    body = {"message": message, "type": kind, "param": param, "code": code or _CODES.get(status)}
    return JSONResponse(status_code=status, content={"error": body}, headers=headers)


def embeddings_request(service: Served) -> type[BaseModel]:
    """The request schema of ``service``: its limits, its dimension (built per app, like ``request_models``)."""
    limits, dimension = service.limits, service.dimension  # None: a cross-encoder (the route answers 409)
    Text = Annotated[str, StringConstraints(min_length=1, max_length=limits.max_text_chars), AfterValidator(_not_blank)]
    text_schema = {"type": "string", "minLength": 1, "maxLength": limits.max_text_chars}
    # a plain string is taken as a list of one (below); the schema states both forms
    input_schema = {
        "anyOf": [text_schema, {"type": "array", "items": text_schema, "minItems": 1, "maxItems": limits.max_batch}],
        "description": f"a text, or 1 to {limits.max_batch} texts (token-id arrays are refused: paraxl takes text)",
    }

    class EmbeddingsRequest(BaseModel):
        model_config = ConfigDict(
            extra="forbid",  # as OpenAI's API: an unknown argument is an error, not silently dropped
            json_schema_extra={"examples": [{"model": service.model_name, "input": ["The cat sits."]}]},
        )
        input: Annotated[list[Text], WithJsonSchema(input_schema)] = Field(min_length=1, max_length=limits.max_batch)
        model: str = Field(description=f"the served model: {service.model_name}")
        encoding_format: Literal["float", "base64"] = Field(
            default="float", description="base64: the little-endian float32 bytes of each vector"
        )
        dimensions: int | None = Field(
            default=None, strict=True, description=f"only {dimension}: this model cannot shorten its vectors"
        )
        user: str | None = Field(default=None, description="accepted and ignored")

        @field_validator("input", mode="before")
        @classmethod
        def _text_only(cls, value: object) -> object:
            if isinstance(value, str):
                return [value]
            if isinstance(value, list) and any(_is_token_ids(item) for item in value):
                raise PydanticCustomError(
                    "token_ids",
                    "paraxl takes text: send a string or a list of strings, not token ids",
                )
            return value

        @field_validator("dimensions")
        @classmethod
        def _own_dimension(cls, value: int | None) -> int | None:
            if value is not None and dimension is not None and value != dimension:
                raise PydanticCustomError(
                    "dimensions",
                    "this model gives {dimension}-dimensional vectors and does not support shortening them; "
                    "omit dimensions or send {dimension}",
                    {"dimension": dimension},
                )
            return value

    return EmbeddingsRequest


def add_openai_routes(app: FastAPI, service: Served, admission: Admission, *, keyed: bool = False) -> None:
    """Add the ``/v1/`` routes for ``service`` to ``app``; ``admission``: the app's (429 on the event loop;
    one per app: a second one on the same queue would count only its own routes' requests);
    ``keyed``: the app requires an API key (its 401s on these routes are in OpenAI's shape too)."""
    unauthorized: dict[int | str, dict[str, Any]] = (
        {401: {"model": OpenAIError, "description": "missing or wrong API key"}} if keyed else {}
    )
    EmbeddingsRequest = embeddings_request(service)
    card = ModelCard(id=service.model_name, created=int(time.time()), owned_by=OWNER)
    errors: dict[int | str, dict[str, Any]] = {code: {"model": OpenAIError} for code in (404, 409, 413, 422)}
    errors[429] = {"model": OpenAIError, "description": "busy: retry after the Retry-After header's seconds"}
    errors.update(unauthorized)
    if service.embeds:
        service.count_tokens(["warm up"])  # builds the encoder's TextTokenizer now, not in the first request

    @app.post(
        "/v1/embeddings",
        response_model=EmbeddingsResponse,
        responses=errors,
        summary="Embed texts (OpenAI-compatible)",
        tags=["OpenAI"],
    )
    async def embeddings(request: EmbeddingsRequest) -> Any:  # type: ignore[valid-type]
        texts: list[str] = request.input  # type: ignore[attr-defined]
        if request.model != service.model_name:  # type: ignore[attr-defined]
            return _unknown_model(request.model, service.model_name)  # type: ignore[attr-defined]
        as_base64 = request.encoding_format == "base64"  # type: ignore[attr-defined]
        return await admission.run(len(texts), lambda: _embeddings(service, texts, as_base64=as_base64))

    @app.get(
        "/v1/models",
        response_model=ModelList,
        responses=unauthorized,
        summary="The served model (OpenAI-compatible)",
        tags=["OpenAI"],
    )
    def models() -> ModelList:
        return ModelList(data=[card])

    @app.get(
        "/v1/models/{model_id:path}",
        response_model=ModelCard,
        # 413: an id over MAX_MODEL_ID
        responses={**{code: {"model": OpenAIError} for code in (404, 413)}, **unauthorized},
        summary="One model (OpenAI-compatible)",
        tags=["OpenAI"],
    )
    def model(model_id: Annotated[str, Path(max_length=MAX_MODEL_ID)]) -> Any:
        return card if model_id == service.model_name else _unknown_model(model_id, service.model_name)


def _embeddings(service: Served, texts: list[str], *, as_base64: bool) -> dict[str, Any]:
    """The answer of ``/v1/embeddings`` (in a worker thread: encoding and token counting block)."""
    matrix, counts = service.embed_with_usage(texts)  # (n, dim) float32 and token counts: one tokenization
    tokens = sum(counts)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _base64(row) if as_base64 else row.tolist()}
            for i, row in enumerate(matrix)
        ],
        "model": service.model_name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _unknown_model(asked: str, served: str) -> JSONResponse:
    message = f"model {asked!r} is not served here; this server serves {served!r} (see GET /v1/models)"
    detail = [{"loc": ["body", "model"], "msg": message, "type": "model_not_found"}]
    return openai_error(404, message, detail, code="model_not_found")


def _not_blank(text: str) -> str:
    if not text.strip():  # as the service refuses it, but with the field's position for param
        raise PydanticCustomError("string_blank", "empty or only whitespace")
    return text


def _is_token_ids(item: object) -> bool:
    """An int (not a bool: JSON true is no token id) or a list: what OpenAI takes as token ids."""
    return isinstance(item, list) or (isinstance(item, int) and not isinstance(item, bool))


def _base64(row: np.ndarray) -> str:
    """OpenAI's base64 format: the vector's little-endian float32 bytes."""
    return base64.b64encode(np.ascontiguousarray(row, dtype="<f4").tobytes()).decode("ascii")
