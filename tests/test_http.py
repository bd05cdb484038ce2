"""The HTTP service end to end: a real uvicorn server on a free port, a real httpx client; `paraxl serve`."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner

from paraxl.cli.main import app as cli_app
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.serving.app import create_app
from paraxl.serving.service import ParaxlService, ServiceLimits

from .test_service import DOCS, FakeDecider, FakeSearcher
from .tiny import save_tiny

LIMITS = ServiceLimits(max_batch=8, max_text_chars=50, max_k=5, max_body_bytes=4000)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on a free port; yield its base URL; shut it down cleanly."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        assert not thread.is_alive(), "uvicorn did not shut down"


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> BiEncoder:
    return BiEncoder.load(tiny_model_dir)  # read only: nothing here changes the folder


@pytest.fixture(scope="module")
def service(encoder: BiEncoder) -> ParaxlService:
    searcher = FakeSearcher(encoder.encode(DOCS, prompt_name="passage"), DOCS)
    return ParaxlService(
        encoder, model_name="tiny", decider=FakeDecider(), searcher=searcher, limits=LIMITS, version="test"
    )


@pytest.fixture(scope="module")
def client(service: ParaxlService) -> Iterator[httpx.Client]:
    with serving(create_app(service)) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def bare_client(encoder: BiEncoder) -> Iterator[httpx.Client]:
    """A server without calibration and without index."""
    bare = ParaxlService(encoder, model_name="tiny", limits=LIMITS)
    with serving(create_app(bare)) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def test_health(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["model"] == "tiny" and body["dimension"] == 32
    assert body["calibration"] == {"method": "fake-logistic", "threshold": 0.3}
    assert body["index"]["count"] == len(DOCS)
    assert body["limits"]["max_batch"] == 8


def test_embed_matches_the_encoder(client: httpx.Client, encoder: BiEncoder) -> None:
    texts = ["the cat sat", "le chat", "der hund"]
    response = client.post("/embed", json={"texts": texts, "prompt_name": "passage"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dimension"] == 32
    got = np.array(body["embeddings"], dtype=np.float32)  # JSON floats round-trip float32 exactly
    assert np.array_equal(got, encoder.encode(texts, prompt_name="passage"))


def test_similarity_and_paraphrase(client: httpx.Client, encoder: BiEncoder) -> None:
    pairs = [["the cat", "the cat"], ["the cat sat", "der hund ran"]]
    response = client.post("/similarity", json={"pairs": pairs})
    assert response.status_code == 200, response.text
    scores = response.json()["scores"]
    expected = np.sum(encoder.encode([a for a, _ in pairs]) * encoder.encode([b for _, b in pairs]), axis=1)
    np.testing.assert_allclose(scores, expected, atol=1e-6)

    response = client.post("/paraphrase", json={"pairs": pairs})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "fake-logistic"
    results = body["results"]
    np.testing.assert_allclose([r["score"] for r in results], scores, atol=1e-6)
    np.testing.assert_allclose(
        [r["probability"] for r in results], FakeDecider().probability(np.array(scores)), atol=1e-6
    )
    assert [r["is_paraphrase"] for r in results] == [s >= 0.3 for s in scores]
    assert {r["threshold"] for r in results} == {0.3}


def test_search_one_query_or_several(client: httpx.Client) -> None:
    one = client.post("/search", json={"query": "the cat", "k": 2})
    assert one.status_code == 200, one.text
    hits = one.json()["results"]
    assert len(hits) == 1 and [h["rank"] for h in hits[0]] == [1, 2]
    assert hits[0][0]["score"] >= hits[0][1]["score"] and hits[0][0]["text"] in DOCS
    several = client.post("/search", json={"queries": ["the cat", "der hund"], "k": 2})
    assert several.status_code == 200
    first = several.json()["results"][0]  # the same query in another batch: equal up to rounding
    assert [h["id"] for h in first] == [h["id"] for h in hits[0]]
    np.testing.assert_allclose([h["score"] for h in first], [h["score"] for h in hits[0]], atol=1e-6)
    assert len(client.post("/search", json={"query": "the cat"}).json()["results"][0]) == len(
        DOCS
    )  # k = max_k = 5 docs


def test_openapi_lists_the_six_endpoints_with_limits(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    openai_routes = {"/v1/embeddings", "/v1/models", "/v1/models/{model_id}"}  # tests/test_openai_api.py
    ours = {"/health", "/embed", "/similarity", "/paraphrase", "/search", "/rerank"}  # /rerank: test_serve_cross_alone
    assert set(schema["paths"]) == ours | openai_routes
    embed = schema["components"]["schemas"]["EmbedRequest"]
    assert embed["properties"]["texts"]["maxItems"] == 8
    assert embed["properties"]["texts"]["items"]["maxLength"] == 50
    assert embed["examples"] and embed["properties"]["texts"]["description"]
    assert "413" in schema["paths"]["/embed"]["post"]["responses"]


def _chunks(data: bytes, size: int = 500) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


BAD_REQUESTS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("post", "/embed", {"content": b'{"texts": ["a"', "headers": {"content-type": "application/json"}}, 422, "JSON"),
    ("post", "/embed", {"content": b"not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
    ("post", "/embed", {"content": b'{"texts": ["a"]}'}, 422, "Content-Type: application/json"),
    ("post", "/embed", {}, 422, "body"),
    ("post", "/embed", {"json": ["the cat"]}, 422, "JSON object"),
    ("post", "/embed", {"json": {"texts": "the cat"}}, 422, "texts"),
    ("post", "/embed", {"json": {"texts": [1, 2]}}, 422, "texts.0"),
    ("post", "/embed", {"json": {"texts": [None]}}, 422, "texts.0"),
    ("post", "/embed", {"json": {"texts": []}}, 422, "texts"),
    ("post", "/embed", {"json": {"texts": [""]}}, 422, "texts.0"),
    ("post", "/embed", {"json": {"texts": ["  \t "]}}, 422, "empty or only whitespace"),
    ("post", "/embed", {"json": {"texts": ["a"] * 9}}, 413, "at most 8"),
    ("post", "/embed", {"json": {"texts": ["x" * 51]}}, 413, "at most 50 characters"),
    ("post", "/embed", {"json": {"texts": ["a"], "prompt_name": "nope"}}, 422, "unknown prompt_name"),
    ("post", "/embed", {"json": {"texts": ["a"], "txt": ["b"]}}, 422, "txt"),
    ("post", "/similarity", {"json": {"pairs": [["a"]]}}, 422, "pairs.0"),
    ("post", "/similarity", {"json": {"pairs": [["a", "b", "c"]]}}, 422, "pairs.0"),
    ("post", "/similarity", {"json": {"pairs": "a,b"}}, 422, "pairs"),
    ("post", "/similarity", {"json": {"a": "x", "b": "y"}}, 422, "pairs"),
    ("post", "/similarity", {"json": {"pairs": [["a", "b"]] * 9}}, 413, "at most 8"),
    ("post", "/paraphrase", {"json": {"pairs": [[1, "b"]]}}, 422, "pairs.0.0"),
    ("post", "/search", {"json": {"query": "a", "k": 0}}, 422, "k"),
    ("post", "/search", {"json": {"query": "a", "k": 6}}, 422, "k"),
    ("post", "/search", {"json": {"query": "a", "k": "3"}}, 422, "k"),
    ("post", "/search", {"json": {"query": "a", "k": 2.5}}, 422, "k"),
    ("post", "/search", {"json": {"query": "a", "queries": ["b"]}}, 422, "exactly one of query or queries"),
    ("post", "/search", {"json": {"k": 2}}, 422, "exactly one of query or queries"),
    ("post", "/embed", {"content": b'{"texts": ["' + b"a" * 5000 + b'"]}'}, 413, "over the limit of 4000 bytes"),
    (
        "post",
        "/embed",
        {"content": _chunks(b'{"texts": ["' + b"a" * 5000 + b'"]}'), "headers": {"content-type": "application/json"}},
        413,
        "over the limit of 4000 bytes",
    ),
    ("get", "/nowhere", {}, 404, "Not Found"),
    ("get", "/embed", {}, 405, "Method Not Allowed"),
    ("post", "/health", {"json": {}}, 405, "Method Not Allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "message"),
    BAD_REQUESTS,
    ids=[f"{i}-{case[1]}-{case[3]}" for i, case in enumerate(BAD_REQUESTS)],
)
def test_malformed_requests_get_4xx_with_a_message(
    client: httpx.Client, method: str, path: str, kwargs: dict[str, Any], status: int, message: str
) -> None:
    if isinstance(kwargs.get("content"), type(_chunks(b""))):  # a generator is used up: make a fresh one
        kwargs = {**kwargs, "content": _chunks(b'{"texts": ["' + b"a" * 5000 + b'"]}')}
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert message in body["error"] or message in json.dumps(body["detail"])


def test_chunked_body_within_the_limit_is_served(client: httpx.Client) -> None:
    data = json.dumps({"texts": ["the cat", "le chat"]}).encode()
    response = client.post("/embed", content=_chunks(data, 7), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert len(response.json()["embeddings"]) == 2


def test_features_not_configured_answer_409(bare_client: httpx.Client) -> None:
    response = bare_client.post("/paraphrase", json={"pairs": [["the cat", "le chat"]]})
    assert response.status_code == 409
    assert "has no calibration" in response.json()["error"] and "--threshold" in response.json()["error"]
    response = bare_client.post("/search", json={"query": "the cat"})
    assert response.status_code == 409 and "--index" in response.json()["error"]
    health = bare_client.get("/health").json()
    assert health["calibration"] is None and health["index"] is None


def test_concurrent_clients_get_their_own_answers(client: httpx.Client, encoder: BiEncoder) -> None:
    requests = [[*["the cat", "der hund"][: 1 + i % 2], "le chat " * (i % 4 + 1)] for i in range(16)]
    answers: list[list[list[float]] | None] = [None] * len(requests)

    def worker(i: int) -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=30) as own:
            answers[i] = own.post("/embed", json={"texts": requests[i]}).json()["embeddings"]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for request, answer in zip(requests, answers, strict=True):  # merged batches: equal up to rounding
        np.testing.assert_allclose(np.array(answer), encoder.encode(request), atol=1e-5)


def test_a_bug_is_a_logged_500_without_internals(encoder: BiEncoder, caplog: pytest.LogCaptureFixture) -> None:
    broken = ParaxlService(encoder, model_name="tiny", limits=LIMITS)

    def explode(*args: object, **kwargs: object) -> list[float]:
        raise RuntimeError("secret internal state")

    broken.similarity = explode  # type: ignore[method-assign]
    with serving(create_app(broken)) as url, caplog.at_level("ERROR", logger="paraxl.serving"):
        response = httpx.post(f"{url}/similarity", json={"pairs": [["a", "b"]]}, timeout=30)
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error (logged on the server)", "detail": []}
    assert "secret internal state" in caplog.text


# ---------------------------------------------------------------- paraxl serve

runner = CliRunner()


def test_serve_help_names_the_safe_default_bind() -> None:
    result = runner.invoke(cli_app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "127.0.0.1" in result.stdout and "0.0.0.0 exposes" in result.stdout
    for option in ("--index", "--port", "--backend", "--max-batch", "--max-text-chars", "--max-body-bytes"):
        assert option in result.stdout


def test_serve_wires_model_threshold_and_limits(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    captured: dict[str, Any] = {}

    def fake_run(app: FastAPI, host: str, port: int, log_level: str, **settings: Any) -> None:
        captured.update(app=app, host=host, port=port, settings=settings)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), "--threshold", "0.8", "--max-batch", "3"])
    assert result.exit_code == 0, result.stderr
    assert captured["host"] == "127.0.0.1" and captured["port"] == 8000
    with serving(captured["app"]) as url, httpx.Client(base_url=url, timeout=30) as http:
        health = http.get("/health").json()
        assert health["calibration"] == {"method": "fixed-threshold", "threshold": 0.8}
        assert health["limits"]["max_batch"] == 3 and health["backend"] == "torch"
        paraphrase = http.post("/paraphrase", json={"pairs": [["the cat", "the cat"]]}).json()["results"][0]
        assert paraphrase["is_paraphrase"] is True and paraphrase["probability"] is None
        assert http.post("/embed", json={"texts": ["a"] * 4}).status_code == 413

    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir)])  # no calibration, no --threshold: 409
    assert result.exit_code == 0, result.stderr
    with serving(captured["app"]) as url:
        assert httpx.post(f"{url}/paraphrase", json={"pairs": [["a", "b"]]}, timeout=30).status_code == 409


@pytest.mark.parametrize(
    ("options", "message"),
    [(["--threshold", "1.5"], "--threshold is a cosine similarity in [-1, 1]"), (["--log-level", "loud"], "log-level")],
)
def test_serve_rejects_bad_options_in_one_line(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, options: list[str], message: str
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), *options])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_serve_refuses_an_index_of_another_model(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from paraxl.serving.index import VectorIndex

    other = save_tiny(tmp_path / "other", seed=1)  # same shape, other weights
    built_with = BiEncoder.load(other)
    index = VectorIndex.build(
        built_with.encode(DOCS), [f"d{i}" for i in range(len(DOCS))], DOCS, "flat",
        model=str(other), model_fingerprint=built_with.fingerprint,
    )  # fmt: skip
    index.save(tmp_path / "index")
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    model = tmp_path / "served"
    shutil.copytree(tiny_model_dir, model)
    result = runner.invoke(cli_app, ["serve", str(model), "--index", str(tmp_path / "index"), "--threshold", "0.5"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "fingerprint" in lines[0] and "error" in lines[0]
