"""The OpenAI-compatible routes: the official ``openai`` client against a live server, and the error shapes."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient

from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.serving.app import create_app
from paraxl.serving.service import ParaxlService, ServiceLimits

from .test_http import serving

LIMITS = ServiceLimits(max_batch=8, max_text_chars=50, max_k=5, max_body_bytes=4000)
TEXTS = ["The cat sits on the mat.", "Le chat est assis.", "der hund"]
OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> BiEncoder:
    return BiEncoder.load(tiny_model_dir)  # read only


@pytest.fixture(scope="module")
def service(encoder: BiEncoder) -> ParaxlService:
    return ParaxlService(encoder, model_name="tiny", limits=LIMITS, version="test")


@pytest.fixture(scope="module")
def client(service: ParaxlService) -> Iterator[openai.OpenAI]:
    """The official client on a live uvicorn server (127.0.0.1, free port), stopped after the module."""
    with (
        serving(create_app(service)) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30) as api,
    ):
        yield api


@pytest.fixture(scope="module")
def http(service: ParaxlService) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as test_client:
        yield test_client


def expected(encoder: BiEncoder, texts: list[str]) -> np.ndarray:
    """What `paraxl encode` gives: the model's default prompt (query for e5 and the tiny model)."""
    return encoder.encode(texts)


def token_count(encoder: BiEncoder, texts: list[str]) -> int:
    prefix = encoder.prompt_prefix()
    rows = [
        encoder.tokenizer(prefix + text, truncation=True, max_length=encoder.max_seq_length)["input_ids"]
        for text in texts
    ]
    return sum(len(row) for row in rows)


# ---------------------------------------------------------------- the official client


def test_client_float_vectors_equal_encode(client: openai.OpenAI, encoder: BiEncoder) -> None:
    response = client.embeddings.create(model="tiny", input=TEXTS, encoding_format="float")
    assert response.object == "list" and response.model == "tiny"
    assert [item.index for item in response.data] == [0, 1, 2]
    assert all(item.object == "embedding" for item in response.data)
    vectors = np.array([item.embedding for item in response.data], dtype=np.float32)
    np.testing.assert_allclose(vectors, expected(encoder, TEXTS), atol=1e-6)
    assert response.usage.prompt_tokens == response.usage.total_tokens == token_count(encoder, TEXTS)


def test_client_default_base64_is_decoded_by_the_client(client: openai.OpenAI, encoder: BiEncoder) -> None:
    # without encoding_format the client asks for base64 and decodes it itself
    response = client.embeddings.create(model="tiny", input=TEXTS)
    vectors = np.array([item.embedding for item in response.data], dtype=np.float32)
    np.testing.assert_allclose(vectors, expected(encoder, TEXTS), atol=1e-6)


def test_client_base64_is_little_endian_float32(client: openai.OpenAI, encoder: BiEncoder) -> None:
    raw = client.embeddings.with_raw_response.create(model="tiny", input=TEXTS, encoding_format="base64")
    body = raw.http_response.json()
    encoded = [item["embedding"] for item in body["data"]]
    assert all(isinstance(item, str) for item in encoded)
    vectors = np.stack([np.frombuffer(base64.b64decode(item), dtype="<f4") for item in encoded])
    np.testing.assert_allclose(vectors, expected(encoder, TEXTS), atol=1e-6)
    parsed = raw.parse()  # the client's own reading of the same answer
    assert [item.embedding for item in parsed.data] == encoded
    assert body["usage"] == {"prompt_tokens": token_count(encoder, TEXTS), "total_tokens": token_count(encoder, TEXTS)}


def test_client_single_string_and_own_dimensions(client: openai.OpenAI, encoder: BiEncoder) -> None:
    response = client.embeddings.create(
        model="tiny", input="der hund", encoding_format="float", dimensions=encoder.dimension, user="someone"
    )
    assert len(response.data) == 1
    np.testing.assert_allclose(response.data[0].embedding, expected(encoder, ["der hund"])[0], atol=1e-6)


def test_client_wrong_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.embeddings.create(model="text-embedding-3-small", input=TEXTS)
    assert caught.value.code == "model_not_found" and caught.value.param == "model"
    assert "tiny" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("text-embedding-3-small")


@pytest.mark.parametrize("token_ids", [[1, 2, 3], [[1, 2], [3]]])
def test_client_token_ids_are_refused(client: openai.OpenAI, token_ids: Any) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.embeddings.create(model="tiny", input=token_ids)
    assert "paraxl takes text" in caught.value.message and caught.value.param == "input"


def test_client_other_dimensions_are_refused(client: openai.OpenAI, encoder: BiEncoder) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.embeddings.create(model="tiny", input=TEXTS, dimensions=encoder.dimension // 2)
    assert "does not support shortening" in caught.value.message and caught.value.param == "dimensions"


def test_client_lists_the_served_model(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert [(m.id, m.object, m.owned_by) for m in models] == [("tiny", "model", "paraxl")]
    assert isinstance(models[0].created, int)
    assert client.models.retrieve("tiny").id == "tiny"


# ---------------------------------------------------------------- error shapes and usage over HTTP


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == OPENAI_ERROR_KEYS, body
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"model": "tiny", "input": [""]}, 422, "input"),
        ({"model": "tiny", "input": ["   "]}, 422, "input"),
        ({"model": "tiny", "input": []}, 422, "input"),
        ({"model": "tiny", "input": [1, "a"]}, 422, "input"),
        ({"model": "tiny", "input": [True]}, 422, "input"),
        ({"model": "tiny", "input": ["x" * 51]}, 413, "input"),
        ({"model": "tiny", "input": ["a"] * 9}, 413, "input"),
        ({"model": "tiny"}, 422, "input"),
        ({"input": "a"}, 422, "model"),
        ({"model": "tiny", "input": "a", "encoding_format": "int8"}, 422, "encoding_format"),
        ({"model": "tiny", "input": "a", "dimensions": "32"}, 422, "dimensions"),
        ({"model": "tiny", "input": "a", "logit_bias": 1}, 422, "logit_bias"),
    ],
)
def test_invalid_requests_answer_in_openai_shape(
    http: TestClient, body: dict[str, Any], status: int, param: str
) -> None:
    error = openai_error(http.post("/v1/embeddings", json=body), status)
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"].startswith(param)


def test_http_level_errors_answer_in_openai_shape(http: TestClient) -> None:
    malformed = http.post(
        "/v1/embeddings", content=b'{"model": "tiny", "input": [', headers={"content-type": "application/json"}
    )
    assert openai_error(malformed, 422)["type"] == "invalid_request_error"
    assert openai_error(http.post("/v1/embeddings", content=b"x" * 5000), 413)["code"] == "request_too_large"
    assert openai_error(http.get("/v1/nothing-here"), 404)["code"] == "not_found"
    assert openai_error(http.get("/v1/models/" + "x" * 5000), 413)["param"] is None  # longer than any model spec
    assert openai_error(http.get("/v1/embeddings"), 405)["type"] == "invalid_request_error"
    wrong = openai_error(http.post("/v1/embeddings", json={"model": "other", "input": "a"}), 404)
    assert wrong["code"] == "model_not_found"


def test_other_routes_keep_their_error_shape(http: TestClient) -> None:
    response = http.post("/embed", json={"texts": []})
    assert response.status_code == 422 and set(response.json()) == {"error", "detail"}
    assert isinstance(response.json()["error"], str)
    assert set(http.get("/nothing-here").json()) == {"error", "detail"}


def test_usage_counts_the_tokens_the_model_reads(encoder: BiEncoder) -> None:
    # a text past max_seq_length counts what the model reads: truncated, prompt and special tokens included
    long_text = " ".join(["the cat sat on the mat"] * 40)
    service = ParaxlService(encoder, model_name="tiny", limits=ServiceLimits(max_text_chars=2000))
    with TestClient(create_app(service)) as test_client:
        body = test_client.post("/v1/embeddings", json={"model": "tiny", "input": [long_text, "der hund"]}).json()
    assert body["usage"]["prompt_tokens"] == token_count(encoder, [long_text, "der hund"])
    assert service.count_tokens([long_text]) == [encoder.max_seq_length]
    np.testing.assert_allclose(body["data"][0]["embedding"], expected(encoder, [long_text])[0], atol=1e-6)


def test_counting_tokens_beside_encoding_threads(service: ParaxlService) -> None:
    # counting runs in request threads while the encoder tokenizes: it must never share the encoder's tokenizer
    failures: list[BaseException] = []

    def work(count: bool) -> None:
        try:
            for _ in range(20):
                service.count_tokens(TEXTS) if count else service.embed(TEXTS)
        except BaseException as exc:  # collected: a thread's exception would not fail the test
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures


def test_openapi_documents_the_routes(http: TestClient) -> None:
    schema = http.get("/openapi.json").json()
    assert {"/v1/embeddings", "/v1/models", "/v1/models/{model_id}"} <= set(schema["paths"])
    request = schema["paths"]["/v1/embeddings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    name = request["$ref"].rsplit("/", 1)[-1]
    input_schema = schema["components"]["schemas"][name]["properties"]["input"]
    assert [option["type"] for option in input_schema["anyOf"]] == ["string", "array"]
