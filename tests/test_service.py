"""The service layer without HTTP: answers against oracles, validation, the serial encoder."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from paraxl.decision.decider import FixedThreshold
from paraxl.errors import InputError
from paraxl.modeling.batching import Tokenized
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.serving.service import ParaxlService, SerialEncoder, ServiceError, ServiceLimits

TEXTS = ["the cat sat on the mat", "le chat", "der hund ran", "the dog"]
DOCS = ["the cat sat", "le chat sat on the mat", "der hund", "the dog ran", "on the mat"]


@dataclass(frozen=True)
class FakeDecider:
    """Threshold 0.3 and a logistic probability: easy to recompute in the test."""

    threshold: float = 0.3
    method: str = "fake-logistic"
    prompt_name: str | None = None

    def probability(self, scores: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-10.0 * (np.asarray(scores) - self.threshold)))

    def decide(self, scores: np.ndarray) -> np.ndarray:
        return np.asarray(scores) >= self.threshold


@dataclass(frozen=True)
class FakeHit:
    rank: int
    id: str
    text: str | None
    score: float


@dataclass(frozen=True)
class FakeInfo:
    backend: str
    dimension: int
    prompt_name: str | None


class FakeSearcher:
    """Exact inner-product search over fixed unit vectors (numpy argsort)."""

    def __init__(self, vectors: np.ndarray, texts: list[str]) -> None:
        self.vectors, self.texts = vectors, texts
        self.info = FakeInfo("fake-flat", int(vectors.shape[1]), "passage")

    def __len__(self) -> int:
        return len(self.texts)

    def search(self, queries: np.ndarray, k: int) -> list[list[FakeHit]]:
        scores = queries @ self.vectors.T  # (q, n)
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return [
            [FakeHit(rank + 1, f"d{j}", self.texts[j], float(scores[q, j])) for rank, j in enumerate(row)]
            for q, row in enumerate(order)
        ]


def make_service(encoder: BiEncoder, **kwargs: object) -> ParaxlService:
    return ParaxlService(encoder, model_name="tiny", **kwargs)  # type: ignore[arg-type]


def test_embed_equals_encoder_encode(tiny_encoder: BiEncoder) -> None:
    service = make_service(tiny_encoder)
    assert np.array_equal(service.embed(TEXTS), tiny_encoder.encode(TEXTS))
    assert np.array_equal(
        service.embed(TEXTS, prompt_name="passage"), tiny_encoder.encode(TEXTS, prompt_name="passage")
    )
    assert service.embed(TEXTS).dtype == np.float32


def test_similarity_equals_paired_cosine_and_a_loop(tiny_encoder: BiEncoder) -> None:
    service = make_service(tiny_encoder)
    pairs = list(zip(TEXTS, reversed(TEXTS), strict=True))
    scores = service.similarity(pairs)
    first = tiny_encoder.encode([a for a, _ in pairs])
    second = tiny_encoder.encode([b for _, b in pairs])
    naive = [float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(first, second, strict=True)]
    np.testing.assert_allclose(scores, naive, atol=1e-6)
    assert scores[1] == pytest.approx(scores[2], abs=1e-6)  # the same pair, swapped


def test_paraphrase_uses_the_deciders_threshold_and_probability(tiny_encoder: BiEncoder) -> None:
    decider = FakeDecider()
    service = make_service(tiny_encoder, decider=decider)
    pairs = [("the cat", "the cat"), ("the cat", "der hund ran on the mat"), ("le chat", "the cat")]
    results = service.paraphrase(pairs)
    scores = np.array(service.similarity(pairs))
    assert [r["score"] for r in results] == pytest.approx(scores.tolist(), abs=1e-6)
    for result, score in zip(results, scores, strict=True):
        assert result["threshold"] == 0.3
        assert result["probability"] == pytest.approx(1 / (1 + np.exp(-10 * (score - 0.3))), abs=1e-6)
        assert result["is_paraphrase"] is bool(score >= 0.3)
    assert results[0]["is_paraphrase"] is True  # identical texts: cosine 1


def test_paraphrase_scores_with_the_calibrations_prompt(tiny_encoder: BiEncoder) -> None:
    service = make_service(tiny_encoder, decider=FakeDecider(prompt_name=""))  # "" = calibrated without prompt
    pairs = [("the cat sat", "le chat"), ("der hund", "the dog")]
    got = [r["score"] for r in service.paraphrase(pairs)]
    first = tiny_encoder.encode([a for a, _ in pairs], prompt_name="")
    second = tiny_encoder.encode([b for _, b in pairs], prompt_name="")
    np.testing.assert_allclose(got, np.sum(first * second, axis=1), atol=1e-6)
    with_prompt = np.sum(tiny_encoder.encode(["the cat sat"]) * tiny_encoder.encode(["le chat"]))
    assert abs(got[0] - float(with_prompt)) > 1e-4  # the prompt does change the score


def test_fixed_threshold_without_and_with_a_calibration(tiny_encoder: BiEncoder) -> None:
    service = make_service(tiny_encoder, decider=FixedThreshold(0.99))
    result = service.paraphrase([("the cat", "the cat"), ("the cat", "der hund")])
    assert [r["probability"] for r in result] == [None, None]  # no probability model: null, not NaN
    assert [r["is_paraphrase"] for r in result] == [True, False]
    assert service.health()["calibration"] == {"method": "fixed-threshold", "threshold": 0.99}

    overridden = FixedThreshold(0.99, FakeDecider())
    service = make_service(tiny_encoder, decider=overridden)
    result = service.paraphrase([("le chat", "der hund")])[0]
    assert result["probability"] == pytest.approx(float(FakeDecider().probability(np.array(result["score"]))))
    assert result["is_paraphrase"] is (result["score"] >= 0.99)
    assert overridden.method == "fixed-threshold, fake-logistic probability"


def test_search_against_a_naive_ranking(tiny_encoder: BiEncoder) -> None:
    doc_vectors = tiny_encoder.encode(DOCS, prompt_name="passage")
    service = make_service(tiny_encoder, searcher=FakeSearcher(doc_vectors, DOCS))
    results = service.search(["the cat", "der hund"], k=3)
    queries = tiny_encoder.encode(["the cat", "der hund"], prompt_name="passage")  # the index's prompt
    for result, query in zip(results, queries, strict=True):
        naive = sorted(((float(np.dot(query, d)), f"d{j}") for j, d in enumerate(doc_vectors)), reverse=True)[:3]
        assert [hit["id"] for hit in result] == [doc_id for _, doc_id in naive]
        assert [hit["score"] for hit in result] == pytest.approx([s for s, _ in naive], abs=1e-6)
        assert [hit["rank"] for hit in result] == [1, 2, 3]
        assert result[0]["text"] == DOCS[int(str(result[0]["id"])[1:])]
    assert len(service.search(["the cat"], k=50)[0]) == len(DOCS)  # k over the index size: every item
    with_query_prompt = service.search(["the cat"], k=1, prompt_name="query")[0][0]["score"]
    query = tiny_encoder.encode(["the cat"], prompt_name="query")[0]
    assert with_query_prompt == pytest.approx(float(np.max(doc_vectors @ query)), abs=1e-6)


def test_health_reports_what_is_served(tiny_encoder: BiEncoder) -> None:
    searcher = FakeSearcher(tiny_encoder.encode(DOCS), DOCS)
    limits = ServiceLimits(max_batch=7)
    health = make_service(
        tiny_encoder, decider=FakeDecider(), searcher=searcher, limits=limits, backend="torch", version="9"
    ).health()
    assert health["status"] == "ok" and health["version"] == "9" and health["backend"] == "torch"
    assert health["dimension"] == 32 and health["prompts"] == ["passage", "query"]
    assert health["fingerprint"] == tiny_encoder.fingerprint and health["fingerprint"] is not None
    assert health["calibration"] == {"method": "fake-logistic", "threshold": 0.3}
    assert health["index"] == {"count": len(DOCS), "backend": "fake-flat", "prompt_name": "passage"}
    assert health["limits"] == {"max_batch": 7, "max_text_chars": 2000, "max_k": 100, "max_body_bytes": 1_000_000}
    bare = make_service(tiny_encoder).health()
    assert bare["calibration"] is None and bare["index"] is None


LIMITS = ServiceLimits(max_batch=3, max_text_chars=10, max_k=4)
VALIDATION_CASES = [
    ("embed", ([],), 422, "texts is empty"),
    ("embed", ("the cat",), 422, "texts must be a list, got str"),
    ("embed", (["a", "b", "c", "d"],), 413, "texts has 4 items; this server accepts at most 3"),
    ("embed", (["ok", "   "],), 422, "texts[1] is empty or only whitespace"),
    ("embed", (["ok", ""],), 422, "texts[1] is empty"),
    ("embed", (["ok", 5],), 422, "texts[1] must be a string, got int"),
    ("embed", (["x" * 11],), 413, "texts[0] has 11 characters; the limit is 10 (long texts are rejected"),
    ("embed", (["ok"], "nope"), 422, "unknown prompt_name 'nope'; this model has: passage, query"),
    ("similarity", ([],), 422, "pairs is empty"),
    ("similarity", ([("a", "b")] * 4,), 413, "pairs has 4 items"),
    ("similarity", ([("a", "b", "c")],), 422, "pairs[0] must be a list of two texts"),
    ("similarity", (["ab"],), 422, "pairs[0] must be a list of two texts"),
    ("similarity", ([("a", " ")],), 422, "pairs[0][1] is empty or only whitespace"),
    ("similarity", ([("a", None)],), 422, "pairs[0][1] must be a string, got NoneType"),
    ("similarity", ([("x" * 11, "a")],), 413, "pairs[0][0] has 11 characters"),
    ("paraphrase", ([],), 422, "pairs is empty"),
    ("search", (["a"], 0), 422, "k must be an integer from 1 to 4, got 0"),
    ("search", (["a"], 5), 422, "k must be an integer from 1 to 4, got 5"),
    ("search", (["a"], True), 422, "k must be an integer from 1 to 4, got True"),
    ("search", ([], 2), 422, "queries is empty"),
    ("search", (["a"] * 4, 2), 413, "queries has 4 items"),
    ("search", (["a"], 2, "bad"), 422, "unknown prompt_name 'bad'"),
]


@pytest.mark.parametrize(("method", "args", "status", "message"), VALIDATION_CASES)
def test_bad_input_is_a_service_error_with_status_and_message(
    tiny_encoder: BiEncoder, method: str, args: tuple[object, ...], status: int, message: str
) -> None:
    searcher = FakeSearcher(tiny_encoder.encode(DOCS), DOCS)
    service = make_service(tiny_encoder, decider=FakeDecider(), searcher=searcher, limits=LIMITS)
    with pytest.raises(ServiceError) as caught:
        getattr(service, method)(*args)
    assert caught.value.status == status
    assert message in caught.value.message


def test_features_not_configured_answer_409(tiny_encoder: BiEncoder) -> None:
    service = make_service(tiny_encoder)
    with pytest.raises(ServiceError, match="has no calibration") as caught:
        service.paraphrase([("the cat", "le chat")])
    assert caught.value.status == 409 and "--threshold" in caught.value.message
    with pytest.raises(ServiceError, match="no index") as caught:
        service.search(["the cat"])
    assert caught.value.status == 409 and "--index" in caught.value.message


def test_index_of_another_dimension_is_refused(tiny_encoder: BiEncoder) -> None:
    other = FakeSearcher(np.eye(4, 16, dtype=np.float32), ["a", "b", "c", "d"])
    with pytest.raises(InputError, match="16-dimensional vectors but model tiny gives 32"):
        make_service(tiny_encoder, searcher=other)


@pytest.mark.parametrize("bad", [{"max_batch": 0}, {"max_k": -1}, {"max_text_chars": True}])
def test_limits_must_be_positive_integers(bad: dict[str, int]) -> None:
    with pytest.raises(InputError, match="must be a positive integer"):
        ServiceLimits(**bad)


class SlowRecordingEncoder:
    """Wraps an encoder: records each call's size, fails if two calls overlap, sleeps to let a queue form."""

    def __init__(self, inner: BiEncoder) -> None:
        self.inner, self.settings = inner, inner.settings
        self.calls: list[int] = []
        self.active = 0
        self.overlapped = False

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def fingerprint(self) -> str | None:
        return None

    def prompt_prefix(self, prompt_name: str | None = None) -> str:
        return self.inner.prompt_prefix(prompt_name)

    def tokenize_texts(self, texts: Sequence[str], prompt_name: str | None = None) -> Tokenized:
        return self.inner.tokenize_texts(texts, prompt_name)

    def encode_tokenized(
        self, tokenized: Tokenized, batch_size: int = 32, show_progress: bool | None = None
    ) -> np.ndarray:
        self.active += 1
        self.overlapped |= self.active > 1
        try:
            time.sleep(0.02)
            self.calls.append(len(tokenized))
            return self.inner.encode_tokenized(tokenized, batch_size=batch_size)
        finally:
            self.active -= 1

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        prompt_name: str | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        return self.encode_tokenized(self.tokenize_texts(texts, prompt_name), batch_size)


def _concurrent_embeds(service: ParaxlService, requests: list[list[str]]) -> list[np.ndarray]:
    results: list[np.ndarray | None] = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def worker(i: int) -> None:
        start.wait()
        results[i] = service.embed(requests[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(result is not None for result in results)
    return [result for result in results if result is not None]


@pytest.mark.parametrize("merge", [True, False])
def test_concurrent_requests_run_one_at_a_time_and_merge(tiny_encoder: BiEncoder, merge: bool) -> None:
    recorder = SlowRecordingEncoder(tiny_encoder)
    service = ParaxlService(recorder, model_name="tiny", micro_batch=merge)
    rng = np.random.default_rng(0)
    words = ["the", "cat", "dog", "sat", "on", "mat", "le", "chat", "der", "hund"]
    requests = [[" ".join(rng.choice(words, 3)) for _ in range(int(rng.integers(1, 5)))] for _ in range(16)]
    results = _concurrent_embeds(service, requests)
    for request, result in zip(requests, results, strict=True):  # oracle: each request encoded alone
        np.testing.assert_allclose(result, tiny_encoder.encode(request), atol=1e-5)
    assert not recorder.overlapped
    assert sum(recorder.calls) == sum(len(r) for r in requests)
    if merge:
        assert len(recorder.calls) < len(requests)  # queued requests shared forward passes
    else:
        assert len(recorder.calls) == len(requests)


def test_serial_encoder_merges_across_prompts_within_the_cap(tiny_encoder: BiEncoder) -> None:
    recorder = SlowRecordingEncoder(tiny_encoder)
    serial = SerialEncoder(recorder, max_merged_texts=4)  # type: ignore[arg-type]
    barrier = threading.Barrier(6)
    jobs = [(["the cat", "le chat"], "query"), (["der hund"], "passage")] * 3
    out: dict[int, np.ndarray] = {}

    def worker(i: int) -> None:
        barrier.wait()
        out[i] = serial.encode(*jobs[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(recorder.calls) <= 4
    for i, (texts, prompt) in enumerate(jobs):
        np.testing.assert_allclose(out[i], tiny_encoder.encode(texts, prompt_name=prompt), atol=1e-5)


def test_an_encoder_failure_reaches_every_waiting_caller(tiny_encoder: BiEncoder) -> None:
    class Failing(SlowRecordingEncoder):
        def encode_tokenized(self, tokenized: Tokenized, *args: object, **kwargs: object) -> np.ndarray:
            time.sleep(0.02)
            raise RuntimeError("boom")

    service = ParaxlService(Failing(tiny_encoder), model_name="tiny")
    failures: list[str] = []

    def worker() -> None:
        try:
            service.embed(["the cat"])
        except RuntimeError as exc:
            failures.append(str(exc))

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == ["boom"] * 5


def test_usage_counts_are_the_tokenizers_counts_from_one_tokenization(tiny_encoder: BiEncoder) -> None:
    texts = ["the cat", "le chat est assis sur le tapis", "猫", "cat " * 300]  # the last one truncated
    service = make_service(tiny_encoder, limits=ServiceLimits(max_text_chars=2000))
    for prompt_name, prefix in ((None, "query: "), ("passage", "passage: ")):
        expected = tiny_encoder.tokenizer(
            [prefix + text for text in texts], truncation=True, max_length=tiny_encoder.max_seq_length
        )["input_ids"]
        matrix, counts = service.embed_with_usage(texts, prompt_name)
        assert counts == [len(ids) for ids in expected] == service.count_tokens(texts, prompt_name)
        np.testing.assert_array_equal(matrix, tiny_encoder.encode(texts, prompt_name=prompt_name))
    with pytest.raises(ServiceError, match="unknown prompt_name"):
        service.count_tokens(texts, "nope")


def test_queued_requests_merge_into_one_call_equal_to_per_request_encodes(tiny_model_dir: object) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from .test_service_backpressure import GatedEncoder

    gated = GatedEncoder(BiEncoder.load(tiny_model_dir))  # type: ignore[arg-type]
    heard: list[tuple[int, int]] = []

    class Observer:
        def batch_encoded(self, texts: int, tokens: int, seconds: float) -> None:
            heard.append((texts, tokens))

        def refused(self, reason: str) -> None:
            raise AssertionError(reason)

    serial = SerialEncoder(gated, observer=Observer())  # type: ignore[arg-type]
    requests = [(["der hund", "cat " * 300], "query"), (["le chat"], "passage"), (["a b c", "x", "y"], "")]
    try:
        with ThreadPoolExecutor(4) as pool:
            first = pool.submit(serial.encode, ["the cat"])
            assert gated.entered.wait(10)  # the first call is running: the others queue up behind it
            queued = [pool.submit(serial.encode, texts, prompt) for texts, prompt in requests]
            deadline = time.monotonic() + 10
            while serial.queued_texts < 6:
                assert time.monotonic() < deadline
                time.sleep(0.005)
            gated.gate.set()
            results = [future.result(10) for future in queued]
            first.result(10)
    finally:
        gated.gate.set()
    assert gated.calls == [1, 6]  # the three queued requests (three prompts) in one encode call
    for (texts, prompt), result in zip(requests, results, strict=True):
        np.testing.assert_allclose(result, gated.inner.encode(texts, prompt_name=prompt), atol=1e-5)
    counts = [gated.inner.tokenize_texts(texts, prompt).total_tokens for texts, prompt in requests]
    assert heard == [(1, gated.inner.tokenize_texts(["the cat"]).total_tokens), (6, sum(counts))]
