"""Issue 27, the service: read timeouts and connection limits, JSON bodies that cannot be parsed, the bind warning."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from paraxl.cli.main import app as cli_app
from paraxl.errors import InputError
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.serving.app import create_app
from paraxl.serving.limits import ServerLimits
from paraxl.serving.server import uvicorn_settings
from paraxl.serving.service import ParaxlService, ServiceLimits

runner = CliRunner()


@pytest.fixture(scope="module")
def app(tiny_model_dir: Path) -> FastAPI:
    limits = ServiceLimits(max_batch=8, max_text_chars=50, max_k=5, max_body_bytes=400_000)
    return create_app(ParaxlService(BiEncoder.load(tiny_model_dir), model_name="tiny", limits=limits))


@contextmanager
def serving(app: FastAPI, limits: ServerLimits) -> Iterator[int]:
    """``app`` under uvicorn with the settings ``paraxl serve`` uses, on a free port of 127.0.0.1."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **uvicorn_settings(limits))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _seconds_until_closed(sock: socket.socket, bound: float) -> float:
    """Read until the server closes ``sock`` (b"" or a reset); fail after ``bound`` seconds."""
    start = time.monotonic()
    sock.settimeout(bound)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {bound} s")
    return time.monotonic() - start


def test_slow_connections_are_closed_after_the_request_timeout(app: FastAPI) -> None:
    limits = ServerLimits(request_timeout=1.0)
    slow_starts = [
        b"",  # connects and sends nothing
        b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: applic",  # half a header, then silence
        b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
    ]
    with serving(app, limits) as port:
        sockets = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in slow_starts]
        for sock, start in zip(sockets, slow_starts, strict=True):
            sock.sendall(start)
        # meanwhile a normal client is served
        response = httpx.post(f"http://127.0.0.1:{port}/embed", json={"texts": ["a"]}, timeout=10)
        assert response.status_code == 200
        for sock in sockets:
            with sock:
                assert _seconds_until_closed(sock, bound=6.0) < 4.0


def test_a_trickled_header_does_not_extend_the_timeout(app: FastAPI) -> None:
    with serving(app, ServerLimits(request_timeout=1.0)) as port, socket.create_connection(("127.0.0.1", port)) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(40):  # one header byte every 0.2 s: 8 s if nothing stops it
                sock.sendall(b"X")
                time.sleep(0.2)
        assert time.monotonic() - start < 4.0


def test_keep_alive_connections_serve_requests_in_a_row(app: FastAPI) -> None:
    with serving(app, ServerLimits(request_timeout=1.0)) as port, httpx.Client(timeout=10) as http:
        for _ in range(3):  # the same connection; each request starts its own clock
            assert http.get(f"http://127.0.0.1:{port}/health").status_code == 200
            time.sleep(0.6)


def test_settings_carry_the_limits() -> None:
    settings = uvicorn_settings(ServerLimits(keep_alive=3, max_connections=7, max_header_bytes=8192))
    assert settings["timeout_keep_alive"] == 3 and settings["limit_concurrency"] == 7
    assert settings["h11_max_incomplete_event_size"] == 8192
    with pytest.raises(InputError, match="request_timeout"):
        ServerLimits(request_timeout=float("nan"))


UNPARSABLE = [
    ("invalid UTF-8", b'{"texts": ["\xff\xfe"]}', "not valid UTF-8"),
    ("Latin-1", '{"texts": ["café"]}'.encode("latin-1"), "not valid UTF-8"),
    ("deep nesting", b'{"texts": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ("huge integer", b'{"texts": ["a"], "prompt_name": ' + b"9" * 5000 + b"}", "number too large"),
]


@pytest.mark.parametrize(("body", "reason"), [case[1:] for case in UNPARSABLE], ids=[case[0] for case in UNPARSABLE])
def test_bodies_that_cannot_be_parsed_answer_422(app: FastAPI, body: bytes, reason: str) -> None:
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/embed", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    error = response.json()
    assert set(error) == {"error", "detail"} and error["error"].startswith("body: ") and reason in error["error"]
    assert "\n" not in error["error"] and error["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("host", "warned"), [("0.0.0.0", True), ("::", True), ("192.168.1.5", True), ("127.0.0.1", False), ("::1", False)]
)
def test_serve_warns_when_the_host_is_not_loopback(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, host: str, warned: bool
) -> None:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **settings: captured.update(settings))
    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), "--host", host])
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    if warned:
        assert len(warnings) == 1 and host in warnings[0] and "no authentication" in warnings[0]
    else:
        assert warnings == []
    assert captured["host"] == host and captured["timeout_keep_alive"] == 5
    assert captured["limit_concurrency"] == ServerLimits().max_connections


def test_serve_takes_the_server_limits_as_options(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **settings: captured.update(settings))
    options = ["--request-timeout", "2.5", "--keep-alive-timeout", "7", "--max-connections", "9"]
    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), *options, "--max-header-bytes", "4096"])
    assert result.exit_code == 0, result.stderr
    assert captured["timeout_keep_alive"] == 7 and captured["limit_concurrency"] == 9
    assert captured["h11_max_incomplete_event_size"] == 4096 and captured["http"].request_timeout == 2.5
    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), "--request-timeout", "inf"])
    assert result.exit_code == 2 and "--request-timeout" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
