"""``GET /metrics`` (issue 30): Prometheus text with request counts by route and status, latency
histograms, the queue depth, batch sizes, texts and tokens encoded and 429s, checked after known requests."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.serving.app import create_app
from paraxl.serving.service import ParaxlService, QueueLimits

from .test_http import serving
from .test_service_backpressure import GatedEncoder


def sample(exposition: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with exactly ``labels`` (0 when absent: a counter never incremented)."""
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return 0.0


@pytest.fixture()
def encoder(tiny_model_dir: Path) -> BiEncoder:
    return BiEncoder.load(tiny_model_dir)


def test_requests_batches_and_texts_are_counted(encoder: BiEncoder) -> None:
    app = create_app(ParaxlService(encoder, model_name="tiny"))
    with TestClient(app) as client:
        for _ in range(3):
            assert client.post("/embed", json={"texts": ["the cat", "le chat est assis"]}).status_code == 200
        assert client.post("/embed", json={"texts": []}).status_code == 422
        assert client.post("/similarity", json={"pairs": [["a", "b"]]}).status_code == 200
        assert client.get("/no/such/path").status_code == 404
        assert client.get("/embed").status_code == 405
        response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    requests = "paraxl_http_requests_total"
    assert sample(text, requests, route="/embed", method="POST", status="200") == 3
    assert sample(text, requests, route="/embed", method="POST", status="422") == 1
    assert sample(text, requests, route="/similarity", method="POST", status="200") == 1
    assert sample(text, requests, route="other", method="GET", status="404") == 1  # no label per raw path
    assert sample(text, requests, route="/embed", method="GET", status="405") == 1
    assert sample(text, "paraxl_http_request_duration_seconds_count", route="/embed") == 5
    assert sample(text, "paraxl_http_request_duration_seconds_sum", route="/embed") > 0
    assert sample(text, "paraxl_batch_texts_count") == 4  # one forward pass per request, sent one by one
    assert sample(text, "paraxl_batch_texts_sum") == 8 == sample(text, "paraxl_sentences_encoded_total")
    assert sample(text, "paraxl_batch_texts_bucket", le="2.0") == 4
    expected_tokens = 3 * sum(encoder.tokenize(["the cat", "le chat est assis"])["attention_mask"].sum(dim=1).tolist())
    assert sample(text, "paraxl_tokens_encoded_total") >= expected_tokens > 0
    assert sample(text, "paraxl_queue_texts") == 0
    assert sample(text, "paraxl_batch_duration_seconds_count") == 4


def test_apps_keep_their_own_registries(encoder: BiEncoder) -> None:
    service = ParaxlService(encoder, model_name="tiny")
    first, second = create_app(service), create_app(service)  # the global registry would refuse this
    with TestClient(first) as client:
        client.post("/embed", json={"texts": ["a"]})
    with TestClient(second) as client:
        text = client.get("/metrics").text
    assert sample(text, "paraxl_http_requests_total", route="/embed", method="POST", status="200") == 0


def test_429s_and_the_queue_depth_are_reported(tiny_model_dir: Path) -> None:
    gated = GatedEncoder(BiEncoder.load(tiny_model_dir))
    service = ParaxlService(gated, model_name="tiny", queue=QueueLimits(max_queue=1, max_wait=10))  # type: ignore[arg-type]
    try:
        with serving(create_app(service)) as url, httpx.Client(base_url=url, timeout=20) as http:
            with ThreadPoolExecutor(2) as pool:
                running = pool.submit(http.post, "/embed", json={"texts": ["the cat"]})
                assert gated.entered.wait(10)
                queued = pool.submit(http.post, "/embed", json={"texts": ["le chat"]})
                deadline = time.monotonic() + 10
                while service.queue.queued_texts != 1:
                    assert time.monotonic() < deadline
                    time.sleep(0.005)
                assert [http.post("/embed", json={"texts": ["x"]}).status_code for _ in range(2)] == [429, 429]
                during = http.get("/metrics").text
                gated.gate.set()
                assert running.result(10).status_code == queued.result(10).status_code == 200
            after = http.get("/metrics").text
    finally:
        gated.gate.set()
    assert sample(during, "paraxl_queue_texts") == 1
    assert sample(during, "paraxl_overloaded_total", reason="queue_full") == 2
    assert sample(after, "paraxl_http_requests_total", route="/embed", method="POST", status="429") == 2
    assert sample(after, "paraxl_http_requests_total", route="/embed", method="POST", status="200") == 2
    assert sample(after, "paraxl_queue_texts") == 0


def test_metrics_sit_behind_the_api_key_when_one_is_set(encoder: BiEncoder) -> None:
    with TestClient(create_app(ParaxlService(encoder, model_name="tiny"), api_key="k")) as client:
        assert client.get("/metrics").status_code == 401
        refused = client.get("/metrics", headers={"Authorization": "Bearer k"}).text
        assert sample(refused, "paraxl_http_requests_total", route="/metrics", method="GET", status="401") == 1
