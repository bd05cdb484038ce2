"""Backpressure: a bounded encoder queue answers 429 + Retry-After at once when full, and a request that
waits past its deadline leaves the queue with a 429 too; never a hang, a timeout or a 5xx (issue 30)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from paraxl.errors import InputError
from paraxl.modeling.batching import Tokenized
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.serving.app import create_app
from paraxl.serving.service import Overloaded, ParaxlService, QueueLimits, SerialEncoder

from .test_http import serving


class GatedEncoder:
    """Wraps an encoder: each ``encode`` call signals ``entered`` and then waits for ``gate``."""

    def __init__(self, inner: BiEncoder) -> None:
        self.inner, self.settings = inner, inner.settings
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.calls: list[int] = []

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

    def encode_tokenized(self, tokenized: Tokenized, batch_size: int = 32, **_: object) -> np.ndarray:
        self.entered.set()
        assert self.gate.wait(timeout=20), "the test never opened the gate"
        self.calls.append(len(tokenized))
        return self.inner.encode_tokenized(tokenized, batch_size=batch_size)

    def encode(
        self, texts: Sequence[str], batch_size: int = 32, prompt_name: str | None = None, **_: object
    ) -> np.ndarray:
        return self.encode_tokenized(self.tokenize_texts(texts, prompt_name), batch_size)


@pytest.fixture()
def gated(tiny_model_dir: object) -> Iterator[GatedEncoder]:
    encoder = GatedEncoder(BiEncoder.load(tiny_model_dir))  # type: ignore[arg-type]
    yield encoder
    encoder.gate.set()  # never leave a worker thread blocked


def _wait_for(condition: object, bound: float = 10.0) -> None:
    deadline = time.monotonic() + bound
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_a_full_queue_refuses_at_once_with_retry_after(gated: GatedEncoder) -> None:
    serial = SerialEncoder(gated, limits=QueueLimits(max_queue=2, max_wait=10))  # type: ignore[arg-type]
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(serial.encode, ["the cat"])
        assert gated.entered.wait(10)  # being encoded: not in the queue any more
        queued = pool.submit(serial.encode, ["le chat", "der hund"])
        _wait_for(lambda: serial.queued_texts == 2)
        start = time.monotonic()
        with pytest.raises(Overloaded, match="queue is full") as refused:
            serial.encode(["one more"])
        assert time.monotonic() - start < 0.5  # refused at once, not after a wait
        assert refused.value.status == 429 and refused.value.retry_after >= 1
        assert refused.value.headers == {"Retry-After": str(refused.value.retry_after)}
        gated.gate.set()
        assert running.result(10).shape == (1, 32) and queued.result(10).shape == (2, 32)
    assert serial.queued_texts == 0
    assert serial.encode(["served again"]).shape == (1, 32)  # recovered once the queue drained


def test_an_empty_queue_takes_a_request_larger_than_the_queue(gated: GatedEncoder) -> None:
    gated.gate.set()
    serial = SerialEncoder(gated, limits=QueueLimits(max_queue=1))  # type: ignore[arg-type]
    assert serial.encode(["a", "b", "c"]).shape == (3, 32)  # else a big request could never be served


def test_a_request_past_its_deadline_leaves_the_queue_with_429(gated: GatedEncoder) -> None:
    serial = SerialEncoder(gated, limits=QueueLimits(max_queue=10, max_wait=0.3))  # type: ignore[arg-type]
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(serial.encode, ["the cat"])
        assert gated.entered.wait(10)
        start = time.monotonic()
        with pytest.raises(Overloaded, match=r"waited 0\.3 s") as refused:
            serial.encode(["le chat", "der hund"])
        assert 0.25 < time.monotonic() - start < 2.0  # at its deadline, not when the encoder frees up
        assert refused.value.status == 429 and refused.value.retry_after == 1
        assert serial.queued_texts == 0  # withdrawn: nobody encodes it for a caller who left
        gated.gate.set()
        assert running.result(10).shape == (1, 32)
    assert gated.calls == [1]


@pytest.mark.parametrize("bad", [{"max_queue": 0}, {"max_queue": True}, {"max_wait": 0.0}, {"max_wait": float("inf")}])
def test_queue_limits_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(InputError, match="max_"):
        QueueLimits(**bad)  # type: ignore[arg-type]


def test_the_http_service_answers_429_with_retry_after_never_5xx(gated: GatedEncoder) -> None:
    service = ParaxlService(gated, model_name="tiny", queue=QueueLimits(max_queue=1, max_wait=10))  # type: ignore[arg-type]
    with serving(create_app(service)) as url, httpx.Client(base_url=url, timeout=20) as http:
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(http.post, "/embed", json={"texts": ["the cat"]})
            assert gated.entered.wait(10)
            queued = pool.submit(http.post, "/similarity", json={"pairs": [["a", "b"]]})
            _wait_for(lambda: service.queue.queued_texts == 2)  # an empty queue took it whole
            for path, body in [("/embed", {"texts": ["x"]}), ("/similarity", {"pairs": [["x", "y"]]})] * 3:
                start = time.monotonic()
                response = http.post(path, json=body)
                assert time.monotonic() - start < 1.0
                assert response.status_code == 429, response.text
                assert int(response.headers["Retry-After"]) >= 1
                assert "queue is full" in response.json()["error"]
            gated.gate.set()
            assert running.result(10).status_code == 200 and queued.result(10).status_code == 200
        assert http.post("/embed", json={"texts": ["after"]}).status_code == 200


def test_the_deadline_counts_the_wait_for_a_worker_thread(gated: GatedEncoder) -> None:
    """More requests than the server's worker threads (anyio's 40): those waiting for a thread are on
    the clock too. Before, each got its full wait again once it reached the queue (rounds of 40)."""
    service = ParaxlService(gated, model_name="tiny", queue=QueueLimits(max_queue=1000, max_wait=1.0))  # type: ignore[arg-type]
    clients = 130

    async def burst(url: str) -> list[tuple[int, float]]:
        limits = httpx.Limits(max_connections=clients + 5)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            await http.get("/health")  # connected and warm before the clock starts

            async def one() -> tuple[int, float]:
                start = time.monotonic()
                response = await http.post("/embed", json={"texts": ["the cat"]})
                return response.status_code, time.monotonic() - start

            return list(await asyncio.gather(*(one() for _ in range(clients))))

    with serving(create_app(service)) as url:
        threading.Timer(2.5, gated.gate.set).start()  # the first request is served once all have answered
        answers = asyncio.run(burst(url))
    refused = sorted(seconds for status, seconds in answers if status == 429)
    assert sorted(status for status, _ in answers) == [200] + [429] * (clients - 1)
    # with the clock starting only at the queue, the last of 4 rounds of 40 threads answered after
    # about 4 s; from arrival, about 1 s plus the time 130 connections take on a busy 2-core CI machine
    # (2.24 s seen there), so the bound sits between the two
    assert refused[-1] < 3.2, f"a 429 took {refused[-1]:.2f} s with a 1 s deadline"


def test_a_full_queue_answers_429_on_the_event_loop_while_every_worker_thread_waits(gated: GatedEncoder) -> None:
    """More requests admitted than the server has worker threads (anyio's 40): the next one is refused
    at once, from the event loop. Before, it waited for a thread, which only the encoder could free."""
    service = ParaxlService(gated, model_name="tiny", queue=QueueLimits(max_queue=50, max_wait=10))  # type: ignore[arg-type]
    app = create_app(service)
    admitted = 50  # 1 encoding (gated) + 49 waiting: 39 of them in threads, the rest for a thread

    async def overload(url: str) -> tuple[list[int], list[tuple[int, float]]]:
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=80)) as http:
            await http.get("/health")
            first = asyncio.create_task(http.post("/embed", json={"texts": ["first"]}))
            while not gated.entered.is_set():
                await asyncio.sleep(0.01)
            rest = [asyncio.create_task(http.post("/embed", json={"texts": [f"t{i}"]})) for i in range(admitted - 1)]
            while service.queue.queued_texts + app.state.admission.waiting_texts < admitted - 1:
                await asyncio.sleep(0.01)

            async def probe() -> tuple[int, float]:
                start = time.monotonic()
                response = await http.post("/similarity", json={"pairs": [["a", "b"]]})
                return response.status_code, time.monotonic() - start

            probes = [await probe() for _ in range(5)]
            gated.gate.set()
            served = [response.status_code for response in await asyncio.gather(first, *rest)]
            return served, probes

    with serving(app) as url:
        served, probes = asyncio.run(overload(url))
    assert served == [200] * admitted
    assert [status for status, _ in probes] == [429] * 5
    assert max(seconds for _, seconds in probes) < 1.0  # not the 10 s deadline, nor the gate's opening
    assert service.queue.queued_texts == 0 and app.state.admission.waiting_texts == 0


def test_admission_refuses_what_would_wait_past_the_deadline_at_the_encoders_speed() -> None:
    """Texts ahead / the encoder's texts per second over max_wait: 429 now, not at the deadline."""
    from types import SimpleNamespace

    from paraxl.serving.admission import Admission

    refusals: list[str] = []
    queue = SimpleNamespace(
        queued_texts=8,
        limits=QueueLimits(max_queue=100, max_wait=1.0),
        texts_per_second=10.0,  # 8 queued texts: 0.8 s of work
        observer=SimpleNamespace(refused=refusals.append),
        retry_after=lambda: 1,
    )
    admission = Admission(queue)  # type: ignore[arg-type]
    admission._admit(2)  # 8 texts ahead: 0.8 s
    admission._admit(1)  # 10 texts ahead: 1.0 s, within the wait (its own texts do not count: the
    assert admission.waiting_texts == 3  # deadline is for being taken for encoding, not for being done)
    with pytest.raises(Overloaded, match=r"about 1\.1 s of work"):
        admission._admit(1)  # 11 texts ahead of the encoder: 1.1 s
    queue.texts_per_second = 0.0  # speed unknown (nothing encoded yet): only the count applies
    admission._admit(50)
    assert admission.waiting_texts == 53 and refusals == ["wait_predicted"]


def test_admission_counts_a_request_until_the_queue_decides_and_releases_it_once_on_every_path() -> None:
    """Counted from admission until the encoder queue takes or refuses the job (not just until a worker
    thread starts: validating and tokenizing take time too), released exactly once, also on a 4xx or a
    cancelled request, so the count can never leak."""
    import asyncio
    import time
    from types import SimpleNamespace

    from paraxl.serving.admission import Admission
    from paraxl.serving.encoder_queue import queue_decided

    queue = SimpleNamespace(
        queued_texts=0, limits=QueueLimits(max_queue=100, max_wait=1.0), texts_per_second=0.0, observer=None
    )
    admission = Admission(queue)  # type: ignore[arg-type]
    seen: list[int] = []

    def reaches_the_queue() -> str:
        seen.append(admission.waiting_texts)  # still counted while the thread validates and tokenizes
        decided = queue_decided.get()
        assert decided is not None
        decided()
        decided()  # a second encode in the same request: counted down once only
        seen.append(admission.waiting_texts)
        return "ok"

    assert asyncio.run(admission.run(5, reaches_the_queue)) == "ok" and seen == [5, 0]

    def refused_by_validation() -> str:
        raise ValueError("a 422 before the queue")

    with pytest.raises(ValueError):
        asyncio.run(admission.run(3, refused_by_validation))
    assert admission.waiting_texts == 0

    async def client_gone() -> None:
        task = asyncio.ensure_future(admission.run(4, lambda: time.sleep(0.2)))
        await asyncio.sleep(0.05)
        assert admission.waiting_texts == 4
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(client_gone())
    assert admission.waiting_texts == 0 and queue_decided.get() is None
