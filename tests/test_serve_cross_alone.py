"""A cross-encoder served alone (``paraxl serve CE``, :mod:`paraxl.serving.cross_service`): /similarity and
/paraphrase from sentence-transformers' ``CrossEncoder.predict`` (the oracle), the embedding routes a clear
409 (OpenAI's error shape on /v1), its Prometheus counters, and the options that need a bi-encoder refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sentence_transformers.cross_encoder import CrossEncoder
from typer.testing import CliRunner

from paraxl.cli.main import app as cli_app
from paraxl.decision.decider import FixedThreshold
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.modeling.cross_encoder import open_cross_encoder_scorer
from paraxl.serving.app import create_app
from paraxl.serving.cross_encoding import SerialPairScorer
from paraxl.serving.cross_service import CrossEncoderService
from paraxl.serving.encoder_queue import ServiceError

from .test_http import serving
from .test_metrics import sample
from .test_serve_cross_encoder import PAIRS, save_tiny_cross_encoder

runner = CliRunner()


@pytest.fixture(scope="module")
def cross_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_cross_encoder(tiny_model_dir, tmp_path_factory.mktemp("cross-alone") / "ce")


@pytest.fixture(scope="module")
def oracle(cross_dir: Path) -> np.ndarray:
    """sentence-transformers' own scores of PAIRS: the sigmoid of the logit (its default activation)."""
    model = CrossEncoder(str(cross_dir), local_files_only=True)
    return np.asarray(model.predict([list(pair) for pair in PAIRS]), dtype=np.float64)


def make_service(cross_dir: Path, threshold: float | None) -> CrossEncoderService:
    scorer = SerialPairScorer(open_cross_encoder_scorer(cross_dir), str(cross_dir), "f" * 64, max_wait=5.0)
    decider = FixedThreshold(threshold) if threshold is not None else None
    return CrossEncoderService(scorer, model_name="ce", decider=decider, backend="torch", version="0")


def test_similarity_and_paraphrase_are_the_cross_encoders_scores(cross_dir: Path, oracle: np.ndarray) -> None:
    threshold = float(np.median(oracle))  # some pairs on each side
    service = make_service(cross_dir, threshold)
    assert np.allclose(service.similarity(PAIRS), oracle, atol=1e-6)
    results = service.paraphrase(PAIRS)
    assert [r["is_paraphrase"] for r in results] == [bool(s >= threshold) for s in service.similarity(PAIRS)]
    assert {r["decided_by"] for r in results} == {"cross"} and all(r["bi_score"] is None for r in results)
    assert np.allclose([r["cross_score"] for r in results], oracle, atol=1e-6)
    assert all(r["threshold"] == threshold and r["probability"] is None for r in results)


def test_without_a_decider_paraphrase_is_409_and_embeddings_are_always_409(cross_dir: Path) -> None:
    service = make_service(cross_dir, None)
    calls: list[Any] = [
        lambda: service.paraphrase(PAIRS),
        lambda: service.embed(["a"]),
        lambda: service.embed_with_usage(["a"]),
        lambda: service.count_tokens(["a"]),
        lambda: service.search(["a"]),
    ]
    for call in calls:
        with pytest.raises(ServiceError) as caught:
            call()
        assert caught.value.status == 409
    with pytest.raises(ServiceError) as caught:
        service.similarity([["a", " "]])  # the same checks as the bi-encoder's service
    assert caught.value.status == 422 and "pairs[0][1] is empty" in str(caught.value)


def test_the_http_routes_of_a_cross_encoder(cross_dir: Path, oracle: np.ndarray) -> None:
    app = create_app(make_service(cross_dir, 0.5))
    client = TestClient(app)
    health = client.get("/health").json()
    assert health["kind"] == "cross_encoder" and health["dimension"] is None and health["prompts"] == []
    assert health["calibration"] == {"method": "fixed-threshold", "threshold": 0.5}
    answer = client.post("/similarity", json={"pairs": [list(p) for p in PAIRS]})
    assert answer.status_code == 200 and np.allclose(answer.json()["scores"], oracle, atol=1e-6)
    decided = client.post("/paraphrase", json={"pairs": [list(p) for p in PAIRS]}).json()
    assert [r["is_paraphrase"] for r in decided["results"]] == [bool(s >= 0.5) for s in answer.json()["scores"]]
    for route, body in (("/embed", {"texts": ["a"]}), ("/search", {"query": "a"})):
        refused = client.post(route, json=body)
        assert refused.status_code == 409 and "is a cross-encoder" in refused.json()["error"]
    assert client.get("/v1/models").json()["data"][0]["id"] == "ce"
    metrics = client.get("/metrics").text
    assert sample(metrics, "paraxl_paraphrase_pairs_total", decided_by="cross") == len(PAIRS)
    assert sample(metrics, "paraxl_cross_encoder_pairs_total", purpose="paraphrase") == 2 * len(PAIRS)


def test_the_openai_client_gets_a_clear_error_in_openais_shape(cross_dir: Path) -> None:
    with serving(create_app(make_service(cross_dir, None))) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIStatusError) as caught:
            client.embeddings.create(model="ce", input=["a cat"])
    assert caught.value.status_code == 409
    error = caught.value.body
    assert isinstance(error, dict) and "is a cross-encoder" in error["message"]


def test_paraxl_serve_runs_a_cross_encoder_alone(
    cross_dir: Path, oracle: np.ndarray, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured: dict[str, FastAPI] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **settings: captured.update(app=app))
    result = runner.invoke(cli_app, ["serve", str(cross_dir), "--threshold", "0.5"])
    assert result.exit_code == 0, result.stderr
    assert "a cross-encoder gives no embeddings" in result.stdout
    client = TestClient(captured["app"])
    health = client.get("/health").json()
    assert health["kind"] == "cross_encoder" and health["fingerprint"] == model_folder_fingerprint(cross_dir)
    assert health["max_seq_length"] == CrossEncoder(str(cross_dir), local_files_only=True).max_length
    scores = client.post("/similarity", json={"pairs": [list(p) for p in PAIRS]}).json()["scores"]
    assert np.allclose(scores, oracle, atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "1.5"], "--threshold"),
        (["--rerank", "CE"], "--rerank need a bi-encoder"),
        (["--cross-backend", "onnx"], "--cross-backend need a bi-encoder"),
    ],
)
def test_serve_refuses_what_a_cross_encoder_alone_cannot_do(
    cross_dir: Path, extra: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    extra = [str(cross_dir) if part == "CE" else part for part in extra]
    result = runner.invoke(cli_app, ["serve", str(cross_dir), *extra])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_rerank_is_sentence_transformers_rank_in_teis_shape(cross_dir: Path) -> None:
    """/rerank (TEI's route) on a cross-encoder served alone: the same order and scores as sentence-transformers'
    ``CrossEncoder.rank``, TEI's answer shape (index, score, text only with return_text), bad input a 4xx."""
    query, texts = "the cat sat on the mat", ["le chat", "der hund ran", "the mat", "the dog ran", "le chat"]
    expected = CrossEncoder(str(cross_dir), local_files_only=True).rank(query, texts)
    client = TestClient(create_app(make_service(cross_dir, None)))
    answer = client.post("/rerank", json={"query": query, "texts": texts})
    assert answer.status_code == 200
    results = answer.json()
    assert all(set(result) == {"index", "score"} for result in results)
    assert [r["index"] for r in results] == [int(e["corpus_id"]) for e in expected]
    assert np.allclose([r["score"] for r in results], [float(e["score"]) for e in expected], atol=1e-6)
    order = [r["index"] for r in results]
    # the same text twice: the same score up to the GEMMs' row-dependent rounding (rows of one batch can take
    # different kernel paths: 2.5e-6 apart in one CI run on an AVX2 CPU, bitwise equal elsewhere; the other
    # texts' scores lie >= 2.8e-3 apart), so the two sit side by side. How exact ties keep the input order is
    # test_rerank's, with scores that tie exactly.
    twice = [r["score"] for r in results if r["index"] in (0, 4)]
    assert abs(twice[0] - twice[1]) < 1e-4 and abs(order.index(4) - order.index(0)) == 1
    with_text = client.post("/rerank", json={"query": query, "texts": texts, "return_text": True}).json()
    assert [r["text"] for r in with_text] == [texts[r["index"]] for r in results]
    for body, status in (
        ({"query": query, "texts": []}, 422),
        ({"query": query, "texts": ["a"], "raw_scores": True}, 422),  # an unknown field is named, not ignored
        ({"query": " ", "texts": ["a"]}, 422),
        ({"query": query, "texts": ["x" * 3000]}, 413),  # over max_text_chars: too large, as on every route
    ):
        assert client.post("/rerank", json=body).status_code == status, body


def test_rerank_on_a_bi_encoder_needs_its_rerank_cross_encoder(tiny_model_dir: Path, cross_dir: Path) -> None:
    from paraxl.modeling.bi_encoder import BiEncoder
    from paraxl.serving.service import ParaxlService

    encoder = BiEncoder.load(tiny_model_dir)
    bare = TestClient(create_app(ParaxlService(encoder, model_name="tiny")))
    refused = bare.post("/rerank", json={"query": "a cat", "texts": ["le chat"]})
    assert refused.status_code == 409 and "--rerank" in refused.json()["error"]
    reranker = SerialPairScorer(open_cross_encoder_scorer(cross_dir), "ce", "f" * 64, max_wait=5.0)
    served = TestClient(create_app(ParaxlService(encoder, model_name="tiny", reranker=reranker)))
    texts = ["le chat", "der hund ran", "the mat"]
    expected = CrossEncoder(str(cross_dir), local_files_only=True).rank("a cat", texts)
    results = served.post("/rerank", json={"query": "a cat", "texts": texts}).json()
    assert [r["index"] for r in results] == [int(e["corpus_id"]) for e in expected]
