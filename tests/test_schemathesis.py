"""API fuzzing: Schemathesis generates requests from the app's own ``/openapi.json`` and checks every answer.

This is the main guard against bad requests (tests/test_http.py keeps the hand-written cases of
known past failures): for every operation, valid and invalid bodies alike must never get a 5xx,
and every response (status code, body, headers) must be one the schema documents. Five servers are
fuzzed: one with a calibration and an index (every route answers 200 or 4xx), a bare one (where
/paraphrase and /search answer 409), a busy one (every encoding refused with 429 + Retry-After, as a
full queue does), one with an API key the fuzzer does not send (401): those answers must be
documented too; one with a cross-encoder (a cascade on /paraphrase, rerank on /search); and a
cross-encoder served alone (/similarity and /paraphrase from it, every embedding route a 409). In
process (ASGI), derandomized and bounded, so it runs the same in CI every time.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.specs.openapi import checks as openapi_checks

from paraxl.decision.cascade import CascadeRule
from paraxl.decision.decider import FixedThreshold
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.cross_encoder import open_cross_encoder_scorer
from paraxl.serving.app import create_app
from paraxl.serving.cross_encoding import PairRule, SerialPairScorer
from paraxl.serving.cross_service import CrossEncoderService
from paraxl.serving.service import Overloaded, ParaxlService, ServiceLimits

from .test_serve_cross_encoder import save_tiny_cross_encoder
from .test_service import DOCS, FakeDecider, FakeSearcher

EXAMPLES = 25  # per operation, per mode, per server: bounded and derandomized
# small limits, so generated bodies reach the 413s too
LIMITS = ServiceLimits(max_batch=4, max_text_chars=40, max_k=5, max_body_bytes=4000)
CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def encoder(tiny_model_dir: Path) -> BiEncoder:
    return BiEncoder.load(tiny_model_dir)


def _busy(texts: list[str], prompt_name: str | None = None) -> NoReturn:
    raise Overloaded("server busy: the encoder queue is full; retry in 1 s", 1)


@pytest.fixture(scope="module")
def cross(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SerialPairScorer:
    folder = save_tiny_cross_encoder(tiny_model_dir, tmp_path_factory.mktemp("cross") / "ce")
    return SerialPairScorer(open_cross_encoder_scorer(folder), "ce", "fingerprint", max_wait=10.0)


def _app(encoder: BiEncoder, kind: str, cross: SerialPairScorer | None = None) -> FastAPI:
    """``configured``: a calibration and an index; ``bare``: neither (409s); ``busy``: every encoding is
    refused as the full queue refuses it (429 + Retry-After); ``keyed``: an API key the fuzzer lacks (401);
    ``cross``: a cascade (cosines in [0.2, 0.6) go to the cross-encoder) and rerank on the index;
    ``cross-alone``: the cross-encoder served alone (paraxl.serving.cross_service), deciding at 0.5."""
    if kind == "cross-alone":
        assert cross is not None
        return create_app(CrossEncoderService(cross, model_name="ce", decider=FixedThreshold(0.5), limits=LIMITS))
    if kind == "bare":
        return create_app(ParaxlService(encoder, model_name="tiny", limits=LIMITS))
    searcher = FakeSearcher(encoder.encode(DOCS, prompt_name="passage"), DOCS)
    if kind == "cross":
        assert cross is not None
        rule = PairRule(CascadeRule(0.2, 0.6, bi_threshold=0.5, cross_threshold=0.5), None, cross)
        return create_app(ParaxlService(encoder, model_name="tiny", searcher=searcher, limits=LIMITS,
                                        rule=rule, reranker=cross))  # fmt: skip
    service = ParaxlService(encoder, model_name="tiny", decider=FakeDecider(), searcher=searcher, limits=LIMITS)
    if kind == "busy":
        service.queue.encode = _busy  # type: ignore[method-assign]
    return create_app(service, api_key="fuzzer-does-not-know-it" if kind == "keyed" else None)


@pytest.fixture(scope="module", params=["configured", "bare", "busy", "keyed", "cross", "cross-alone"])
def api_schema(request: pytest.FixtureRequest, encoder: BiEncoder, cross: SerialPairScorer) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", _app(encoder, request.param, cross))


def _has_input(operation: schemathesis.APIOperation) -> bool:
    parts = (operation.body, operation.query, operation.path_parameters, operation.headers, operation.cookies)
    return any(len(part) for part in parts)


# Driven through Hypothesis directly (each operation's strategy), not schemathesis' pytest plugin:
# its fixture-based parametrization reads a pytest internal (Node._nodeid) that pytest 9 removed.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_answer_is_documented_and_none_is_a_5xx(
    api_schema: schemathesis.BaseSchema, mode: GenerationMode
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 5, "the schema lost its operations"
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not _has_input(operation):
            continue  # GET /health takes nothing: there is nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        try:
            fuzz()
        except BaseException as exc:
            exc.add_note(f"while fuzzing {operation.label} ({mode.value} examples)")
            raise


def test_the_search_schema_says_exactly_one_of_query_or_queries(encoder: BiEncoder) -> None:
    """``{}`` (or both at once) is a 422, and the schema says so, not only the server (a hole the fuzzer found)."""
    import jsonschema_rs  # schemathesis' own validator

    schema = _app(encoder, "configured").openapi()["components"]["schemas"]["SearchRequest"]
    valid = jsonschema_rs.validator_for(schema).is_valid
    assert valid({"query": "a"}) and valid({"queries": ["a"], "k": 2}) and valid({"query": None, "queries": ["a"]})
    assert not valid({}) and not valid({"k": 2}) and not valid({"query": "a", "queries": ["b"]})
