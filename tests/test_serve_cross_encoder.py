"""The cross-encoder in the service (issue 28): a cascade/fusion rule on /paraphrase and rerank on /search,
checked against sentence-transformers' ``CrossEncoder.predict`` and naive loops; ``paraxl serve --cascade
/--rerank``; the Prometheus counters of pairs by decided_by and of cross-encoder calls."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sentence_transformers.cross_encoder import CrossEncoder
from typer.testing import CliRunner

from paraxl.cli.main import app as cli_app
from paraxl.decision import model_scorers
from paraxl.decision.cascade import CascadeRule
from paraxl.decision.fusion import FusionRule
from paraxl.decision.rule_decider import backend_note
from paraxl.decision.scorers import PairScorer
from paraxl.decision.two_model_file import ModelIdentity, TwoModelRule, load_rule, save_rule
from paraxl.inference.cross_encoder_export import export_cross_encoder
from paraxl.inference.cross_encoder_onnx import OnnxCrossEncoderScorer
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.loading.model import ResolvedModel
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.cross_encoder import load_cross_encoder, open_cross_encoder_scorer
from paraxl.serving.app import create_app
from paraxl.serving.cross_encoding import PairRule, SerialPairScorer
from paraxl.serving.service import ParaxlService, ServiceError

from .test_cross_encoder_onnx import save_cross_encoder
from .test_http import serving
from .test_metrics import sample
from .test_service import DOCS, FakeDecider, FakeSearcher
from .tiny import save_tiny

PAIRS = [
    ("the cat sat on the mat", "le chat"),
    ("the dog ran", "der hund ran"),
    ("le chat", "le chat"),
    ("der hund", "the cat sat"),
    ("the dog", "dog sat on the mat"),
    ("on the mat", "the mat"),
]
runner = CliRunner()


def save_tiny_cross_encoder(tiny_model_dir: Path, folder: Path) -> Path:
    """A tiny cross-encoder, saved by sentence-transformers: the tiny backbone, a seeded pooler, and a head
    along the first principal direction of the pooled outputs of a few pairs, so that its scores spread
    over (0, 1) (a random head scores every pair alike to 1e-5, too close to test an ordering on)."""
    torch.manual_seed(0)
    model = load_cross_encoder(tiny_model_dir, 64)
    pairs = PAIRS + [(query, doc) for query in ("the cat", "der hund ran") for doc in DOCS]
    features = model.tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    network: Any = model.model  # a BertForSequenceClassification
    classifier = network.classifier
    with torch.no_grad():
        network.eval()
        pooled = network.bert(**features).pooler_output  # (n, hidden)
        mean = pooled.mean(0)  # (hidden,)
        direction = torch.linalg.svd(pooled - mean, full_matrices=False)[2][0]  # (hidden,)
        scale = 2.0 / float(((pooled - mean) @ direction).std())  # logits of about +-2
        classifier.weight.copy_(scale * direction[None, :])
        classifier.bias.fill_(-scale * float(mean @ direction))
    model.save(str(folder))
    return folder


@pytest.fixture(scope="module")
def cross_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_cross_encoder(tiny_model_dir, tmp_path_factory.mktemp("cross") / "ce")


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> BiEncoder:
    return BiEncoder.load(tiny_model_dir)


@pytest.fixture(scope="module")
def reference(cross_dir: Path) -> CrossEncoder:
    return CrossEncoder(str(cross_dir))


def serial(cross_dir: Path) -> SerialPairScorer:
    return SerialPairScorer(open_cross_encoder_scorer(cross_dir), "ce", model_folder_fingerprint(cross_dir), 10.0)


def cosines(encoder: BiEncoder, pairs: list[tuple[str, str]]) -> np.ndarray:
    """Naive cosines with the model's default prompt (the rule records none: None = default)."""
    first = encoder.encode([a for a, _ in pairs])
    second = encoder.encode([b for _, b in pairs])
    return np.array(
        [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(first, second, strict=True)]
    )


def rule_service(encoder: BiEncoder, cross_dir: Path, rule: CascadeRule | FusionRule) -> ParaxlService:
    return ParaxlService(encoder, model_name="tiny", rule=PairRule(rule, None, serial(cross_dir)))


def test_an_empty_band_is_the_bi_encoder_alone(encoder: BiEncoder, cross_dir: Path) -> None:
    service = rule_service(encoder, cross_dir, CascadeRule(0.5, 0.5, bi_threshold=0.6, cross_threshold=0.5))
    app = create_app(service)
    with TestClient(app) as client:
        results = client.post("/paraphrase", json={"pairs": PAIRS}).json()["results"]
        text = client.get("/metrics").text
    expected = cosines(encoder, PAIRS)
    assert [r["decided_by"] for r in results] == ["bi"] * len(PAIRS)
    np.testing.assert_allclose([r["score"] for r in results], expected, atol=1e-5)
    np.testing.assert_allclose([r["bi_score"] for r in results], expected, atol=1e-5)
    assert [r["is_paraphrase"] for r in results] == [bool(c >= 0.6) for c in expected]
    assert {r["threshold"] for r in results} == {0.6}
    assert all(r["cross_score"] is None and r["probability"] is None for r in results)
    assert sample(text, "paraxl_paraphrase_pairs_total", decided_by="bi") == len(PAIRS)
    assert sample(text, "paraxl_paraphrase_pairs_total", decided_by="cross") == 0
    assert sample(text, "paraxl_cross_encoder_pairs_total", purpose="paraphrase") == 0  # never ran


def test_a_full_band_is_the_cross_encoder_alone(encoder: BiEncoder, cross_dir: Path, reference: CrossEncoder) -> None:
    service = rule_service(encoder, cross_dir, CascadeRule(-2.0, 2.0, bi_threshold=0.6, cross_threshold=0.5))
    with TestClient(create_app(service)) as client:
        response = client.post("/paraphrase", json={"pairs": PAIRS})
        text = client.get("/metrics").text
        health = client.get("/health").json()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "cascade"
    results = body["results"]
    expected = reference.predict(PAIRS, convert_to_numpy=True)  # sigmoid scores of the one-output head
    assert [r["decided_by"] for r in results] == ["cross"] * len(PAIRS)
    np.testing.assert_allclose([r["cross_score"] for r in results], expected, atol=1e-6)
    np.testing.assert_allclose([r["score"] for r in results], expected, atol=1e-6)
    np.testing.assert_allclose([r["bi_score"] for r in results], cosines(encoder, PAIRS), atol=1e-5)
    assert [r["is_paraphrase"] for r in results] == [bool(s >= 0.5) for s in expected]
    assert {r["threshold"] for r in results} == {0.5}
    assert sample(text, "paraxl_paraphrase_pairs_total", decided_by="cross") == len(PAIRS)
    assert sample(text, "paraxl_cross_encoder_pairs_total", purpose="paraphrase") == len(PAIRS)
    assert sample(text, "paraxl_cross_encoder_duration_seconds_count", purpose="paraphrase") == 1  # one call
    assert health["rule"]["kind"] == "cascade" and health["rule"]["rule"]["lo"] == -2.0
    assert health["rule"]["cross_encoder"]["fingerprint"] == model_folder_fingerprint(cross_dir)
    assert health["calibration"] is None and health["rerank"] is None


def test_a_band_in_the_middle_splits_the_pairs(encoder: BiEncoder, cross_dir: Path, reference: CrossEncoder) -> None:
    expected_cos = cosines(encoder, PAIRS)
    ordered = np.sort(expected_cos)  # the 2nd..4th smallest cosines go to the cross-encoder; edges midway
    lo, hi = (ordered[0] + ordered[1]) / 2, (ordered[3] + ordered[4]) / 2
    service = rule_service(encoder, cross_dir, CascadeRule(float(lo), float(hi), 0.6, 0.5))
    observed: list[tuple[str, int]] = []
    service.pair_observer = _Recorder(observed)
    results = service.paraphrase(PAIRS)
    crossed = [bool(lo <= c < hi) for c in expected_cos]
    assert sum(crossed) == 3
    assert [r["decided_by"] for r in results] == ["cross" if c else "bi" for c in crossed]
    cross_expected = reference.predict([p for p, c in zip(PAIRS, crossed, strict=True) if c], convert_to_numpy=True)
    got = [r["cross_score"] for r in results if r["decided_by"] == "cross"]
    np.testing.assert_allclose(got, cross_expected, atol=1e-6)
    assert all(r["cross_score"] is None for r in results if r["decided_by"] == "bi")
    assert sorted(observed) == [("bi", 3), ("cross", 3), ("cross:paraphrase", 3)]


def test_a_fusion_decides_every_pair_with_both_scores(
    encoder: BiEncoder, cross_dir: Path, reference: CrossEncoder
) -> None:
    rule = FusionRule(coef=(4.0, 0.5), intercept=-2.0, threshold=0.55)
    results = rule_service(encoder, cross_dir, rule).paraphrase(PAIRS)
    cos = cosines(encoder, PAIRS)
    cross = reference.predict(PAIRS, convert_to_numpy=True).astype(np.float64)
    for result, c, s in zip(results, cos, cross, strict=True):
        logit = math.log(s) - math.log1p(-s)
        probability = 1 / (1 + math.exp(-(4.0 * c + 0.5 * logit - 2.0)))
        assert result["decided_by"] == "fusion"
        assert result["probability"] == pytest.approx(probability, abs=1e-5) == result["score"]
        assert result["is_paraphrase"] is (probability >= 0.55) and result["threshold"] == 0.55
        assert result["cross_score"] == pytest.approx(s, abs=1e-6)


def test_a_bi_encoder_alone_says_it_decided(encoder: BiEncoder) -> None:
    result = ParaxlService(encoder, model_name="tiny", decider=FakeDecider()).paraphrase(PAIRS[:1])[0]
    assert result["decided_by"] == "bi" and result["bi_score"] == result["score"] and result["cross_score"] is None


class _Recorder:
    """A PairObserver writing what it hears into a list."""

    def __init__(self, seen: list[tuple[str, int]]) -> None:
        self.seen = seen

    def pairs_decided(self, decided_by: str, pairs: int) -> None:
        self.seen.append((decided_by, pairs))

    def cross_scored(self, purpose: str, pairs: int, seconds: float) -> None:
        self.seen.append((f"cross:{purpose}", pairs))

    def refused(self, reason: str) -> None:
        self.seen.append((reason, 0))


# ---------------------------------------------------------------- rerank on /search


def search_service(encoder: BiEncoder, cross_dir: Path | None) -> ParaxlService:
    searcher = FakeSearcher(encoder.encode(DOCS, prompt_name="passage"), DOCS)
    reranker = serial(cross_dir) if cross_dir is not None else None
    return ParaxlService(encoder, model_name="tiny", searcher=searcher, reranker=reranker)


def test_rerank_equals_a_naive_resort_of_the_top_k(
    encoder: BiEncoder, cross_dir: Path, reference: CrossEncoder
) -> None:
    service = search_service(encoder, cross_dir)
    queries = ["the cat", "der hund ran"]
    plain = service.search(queries, k=4)
    reranked = service.search(queries, k=2, rerank=True, rerank_top_k=4)
    for query, bi_hits, got in zip(queries, plain, reranked, strict=True):
        scores = reference.predict([(query, hit["text"]) for hit in bi_hits], convert_to_numpy=True)
        naive = sorted(range(4), key=lambda i: (-scores[i], i))[:2]  # by CE score, ties in bi order
        assert [hit["id"] for hit in got] == [bi_hits[i]["id"] for i in naive]
        assert [hit["bi_rank"] for hit in got] == [i + 1 for i in naive]
        assert [hit["rank"] for hit in got] == [1, 2]
        np.testing.assert_allclose([hit["cross_score"] for hit in got], scores[naive], atol=1e-4)  # other padding
        assert [hit["score"] for hit in got] == [bi_hits[i]["score"] for i in naive]  # the cosine, kept
    assert all(hit["cross_score"] is None and hit["bi_rank"] == hit["rank"] for hit in plain[0])


def test_rerank_over_http_and_its_refusals(encoder: BiEncoder, cross_dir: Path) -> None:
    with TestClient(create_app(search_service(encoder, cross_dir))) as client:
        ok = client.post("/search", json={"query": "the cat", "k": 2, "rerank": True, "rerank_top_k": 5})
        assert ok.status_code == 200, ok.text
        assert len(ok.json()["results"][0]) == 2 and ok.json()["results"][0][0]["cross_score"] is not None
        below_k = client.post("/search", json={"query": "the cat", "k": 3, "rerank": True, "rerank_top_k": 2})
        assert below_k.status_code == 422 and "at least k (3)" in below_k.json()["error"]
        alone = client.post("/search", json={"query": "the cat", "rerank_top_k": 2})
        assert alone.status_code == 422 and "goes with rerank" in alone.json()["error"]
        text = client.get("/metrics").text
        assert client.get("/health").json()["rerank"]["model"] == "ce"
    assert sample(text, "paraxl_cross_encoder_pairs_total", purpose="rerank") == 5
    with TestClient(create_app(search_service(encoder, None))) as client:
        refused = client.post("/search", json={"query": "the cat", "rerank": True})
        assert refused.status_code == 409 and "--rerank" in refused.json()["error"]
        assert client.post("/search", json={"query": "the cat", "rerank": "yes"}).status_code == 422


def test_rerank_of_an_index_without_texts_is_a_409(encoder: BiEncoder, cross_dir: Path) -> None:
    service = search_service(encoder, cross_dir)
    assert service.searcher is not None
    service.searcher.texts = [None] * len(DOCS)  # type: ignore[attr-defined]
    with pytest.raises(ServiceError) as caught:
        service.search(["the cat"], k=2, rerank=True)
    assert caught.value.status == 409 and "no stored text" in caught.value.message


def test_a_busy_cross_encoder_answers_429(encoder: BiEncoder, cross_dir: Path) -> None:
    scorer = SerialPairScorer(open_cross_encoder_scorer(cross_dir), "ce", "f", max_wait=0.05)
    seen: list[tuple[str, int]] = []
    scorer.observer = _Recorder(seen)
    scorer._lock.acquire()  # another request holds the cross-encoder
    try:
        with pytest.raises(ServiceError) as caught:
            scorer.score([("a", "b")])
    finally:
        scorer._lock.release()
    assert caught.value.status == 429 and "Retry-After" in caught.value.headers
    assert seen == [("cross_encoder_wait", 0)]


# ---------------------------------------------------------------- paraxl serve --cascade / --rerank


def write_rule(path: Path, bi: Path, cross: Path, *, bi_fingerprint: str | None = None) -> Path:
    stored = TwoModelRule(
        kind="cascade",
        bi=ModelIdentity(str(bi), str(bi), bi_fingerprint or model_folder_fingerprint(bi), None),
        cross=ModelIdentity(str(cross), str(cross), model_folder_fingerprint(cross)),
        rule={"lo": -2.0, "hi": 2.0, "bi_threshold": 0.5, "cross_threshold": 0.5},
    )
    return save_rule(path, stored)


def capture_app(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    captured: dict[str, Any] = {}

    def fake_run(app: FastAPI, host: str, port: int, log_level: str, **settings: Any) -> None:
        captured["app"] = app

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return captured


def test_serve_with_a_cascade_and_a_reranker(
    tiny_model_dir: Path, cross_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paraxl.serving.index import VectorIndex

    rule = write_rule(tmp_path / "cascade.json", tiny_model_dir, cross_dir)
    VectorIndex.build(BiEncoder.load(tiny_model_dir).encode(DOCS), [f"d{i}" for i in range(len(DOCS))], DOCS,
                      "exact", model=str(tiny_model_dir), model_fingerprint=BiEncoder.load(tiny_model_dir).fingerprint,
                      ).save(tmp_path / "index")  # fmt: skip
    captured = capture_app(monkeypatch)
    loads: list[Path] = []
    load = model_scorers.cross_encoder_scorer

    def counted(model: ResolvedModel, *args: Any) -> Any:
        loads.append(model.folder)
        return load(model, *args)

    monkeypatch.setattr(model_scorers, "cross_encoder_scorer", counted)
    options = ["--cascade", str(rule), "--index", str(tmp_path / "index"), "--rerank", str(cross_dir)]
    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), *options])
    assert result.exit_code == 0, result.stderr
    assert loads == [cross_dir]  # the rule's cross-encoder and the reranker are the same weights: loaded once
    assert "cascade of this model and the cross-encoder" in result.stdout and "rerank with" in result.stdout
    with serving(captured["app"]) as url, httpx.Client(base_url=url, timeout=60) as http:
        results = http.post("/paraphrase", json={"pairs": PAIRS[:2]}).json()["results"]
        assert [r["decided_by"] for r in results] == ["cross", "cross"]
        hits = http.post("/search", json={"query": "the cat", "k": 2, "rerank": True}).json()["results"][0]
        assert len(hits) == 2 and all(hit["cross_score"] is not None for hit in hits)
        health = http.get("/health").json()
        assert health["rule"]["cross_encoder"] == health["rerank"]  # the same weights on both routes


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--threshold", "0.5"], "--threshold does not apply with --cascade"),
        (["--rerank", "CROSS"], "--rerank re-scores search hits: it needs --index"),
        (["--cross-encoder", "CROSS"], "--cross-encoder goes with --cascade"),
        (["--cross-backend", "onnx"], "--cross-backend goes with --cascade RULE_FILE or --rerank"),
        (["--cascade", "RULE", "--cross-backend", "int4"], "unknown --cross-backend 'int4'"),
    ],
)
def test_serve_refuses_options_that_do_not_go_together(
    tiny_model_dir: Path, cross_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: list[str],
    message: str,
) -> None:  # fmt: skip
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    rule = write_rule(tmp_path / "cascade.json", tiny_model_dir, cross_dir)
    with_rule = ["--cascade", str(rule)] if options[0] == "--threshold" else []
    args = [{"CROSS": str(cross_dir), "RULE": str(rule)}.get(value, value) for value in options]
    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), *with_rule, *args])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_serve_refuses_a_rule_of_other_weights_and_a_reranker_that_is_no_cross_encoder(
    tiny_model_dir: Path, cross_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    other = save_tiny(tmp_path / "other", seed=1)
    rule = write_rule(tmp_path / "cascade.json", other, cross_dir)  # fitted on another bi-encoder
    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), "--cascade", str(rule)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "fitted with the bi-encoder" in lines[0] and "other weights" in lines[0]
    (tmp_path / "index").mkdir()
    result = runner.invoke(
        cli_app, ["serve", str(tiny_model_dir), "--index", str(tmp_path / "index"), "--rerank", str(other)]
    )
    assert result.exit_code == 2 and "is not a cross-encoder" in result.stderr
    # a cross-encoder is served alone for pairs (tests/test_serve_cross_alone.py), never with an index
    result = runner.invoke(cli_app, ["serve", str(cross_dir), "--index", str(tmp_path / "index")])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--index need a bi-encoder" in result.stderr


@pytest.fixture(scope="module")
def exported_cross_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX tests' tiny cross-encoder with its fp32 and int8 exports (``cross_dir``'s steeper head
    puts its fp32 export 2.8e-5 from torch's scores, outside the 1e-5 bound: refused)."""
    folder = save_cross_encoder(tiny_model_dir, tmp_path_factory.mktemp("cross-export") / "ce")
    export_cross_encoder(folder)
    return folder


def test_serve_runs_the_cross_encoders_on_cross_backend_with_the_note_of_pi(
    tiny_model_dir: Path, exported_cross_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rule fitted on torch scores, served with --cross-backend onnx-int8: exactly pi's note on stderr, and
    the int8 export (loaded once for the rule and --rerank) gives /paraphrase's and /search's cross scores
    (oracle: the int8 scorer itself, told apart from torch); onnx (fp32: torch's scores) says nothing."""
    from paraxl.serving.index import VectorIndex

    folder, bi = exported_cross_dir, BiEncoder.load(tiny_model_dir)
    rule = write_rule(tmp_path / "cascade.json", tiny_model_dir, folder)  # no recorded backend: torch
    ids = [f"d{i}" for i in range(len(DOCS))]
    VectorIndex.build(bi.encode(DOCS), ids, DOCS, "exact", model=str(tiny_model_dir),
                      model_fingerprint=bi.fingerprint).save(tmp_path / "index")  # fmt: skip
    int8 = OnnxCrossEncoderScorer.load(folder, "onnx-int8")
    torch_scores = open_cross_encoder_scorer(folder).score(PAIRS)
    assert np.abs(int8.score(PAIRS) - torch_scores).max() > 1e-6  # int8 is told apart from torch below
    loads: list[str] = []
    load = model_scorers.cross_encoder_scorer

    def counted(model: ResolvedModel, *args: Any) -> Any:
        loads.append(model.backend)
        return load(model, *args)

    monkeypatch.setattr(model_scorers, "cross_encoder_scorer", counted)
    scorers: dict[str, PairScorer] = {"onnx-int8": int8, "onnx": open_cross_encoder_scorer(folder)}
    for backend, scorer in scorers.items():
        loads.clear()
        captured = capture_app(monkeypatch)
        options = ["--cascade", str(rule), "--cross-backend", backend, "--index", str(tmp_path / "index")]
        result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), *options, "--rerank", str(folder)])
        assert result.exit_code == 0, result.stderr
        assert loads == [backend]  # the rule's cross-encoder and the reranker: one model, on --cross-backend
        notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
        expected_note = backend_note(load_rule(rule), "torch", backend)
        assert notes == ([expected_note] if expected_note is not None else [])
        assert (backend == "onnx-int8") == (expected_note is not None)
        with TestClient(captured["app"]) as client:
            results = client.post("/paraphrase", json={"pairs": PAIRS}).json()["results"]
            hits = client.post("/search", json={"query": "the cat", "k": 3, "rerank": True}).json()["results"][0]
        assert [r["decided_by"] for r in results] == ["cross"] * len(PAIRS)
        np.testing.assert_allclose([r["cross_score"] for r in results], scorer.score(PAIRS), atol=2e-6)
        expected = scorer.score([("the cat", hit["text"]) for hit in hits])
        np.testing.assert_allclose([hit["cross_score"] for hit in hits], expected, atol=2e-6)
