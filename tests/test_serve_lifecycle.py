"""``paraxl serve`` as a real process: SIGTERM stops accepting, lets the request in flight finish and
exits 0 (issue 30); the queue and shutdown options reach the service and uvicorn."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest
import uvicorn
from typer.testing import CliRunner

from paraxl.cli.main import app as cli_app

PARAXL = Path(sys.executable).parent / "paraxl"
runner = CliRunner()


def _lines(stream: IO[str], into: queue.Queue[str]) -> None:
    for line in stream:
        into.put(line)


def _port_of(process: subprocess.Popen[str], lines: queue.Queue[str], bound: float) -> int:
    """The port uvicorn reports on stderr ("Uvicorn running on http://127.0.0.1:PORT")."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            assert process.poll() is None, "paraxl serve exited while starting"
            continue
        if found := re.search(r"running on http://127\.0\.0\.1:(\d+)", line):
            return int(found.group(1))
    pytest.fail(f"paraxl serve did not start in {bound} s")


def test_sigterm_drains_the_request_in_flight_and_exits_zero(tiny_model_dir: Path) -> None:
    command = [str(PARAXL), "serve", str(tiny_model_dir), "--port", "0", "--shutdown-timeout", "10"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(process.stderr, lines), daemon=True).start()
    try:
        port = _port_of(process, lines, bound=60)
        body = json.dumps({"texts": ["the cat sits", "le chat est assis"]}).encode()
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        head = (
            f"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        client.sendall(head.encode() + body[:10])  # in flight: header read, body still arriving
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(OSError):  # stopped accepting
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        client.sendall(body[10:])
        response = b""
        while chunk := client.recv(65536):
            response += chunk
        client.close()
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        assert json.loads(response.split(b"\r\n\r\n", 1)[1])["dimension"] == 32
        assert process.wait(timeout=15) == 0  # not 143 (killed by the re-raised SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    log = "".join(lines.queue)
    assert "Traceback" not in log


def test_serve_passes_queue_and_shutdown_options(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **settings: captured.update(settings, app=app))
    options = ["--max-queue", "7", "--max-wait-seconds", "2.5", "--shutdown-timeout", "4"]
    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), *options])
    assert result.exit_code == 0, result.stderr
    assert captured["timeout_graceful_shutdown"] == 4.0
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or os.name != "posix"  # restored after the run


@pytest.mark.parametrize("option", ["--max-wait-seconds", "--shutdown-timeout"])
@pytest.mark.parametrize("value", ["0", "inf", "nan"])
def test_serve_refuses_bad_seconds_in_one_line(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, option: str, value: str
) -> None:
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    result = runner.invoke(cli_app, ["serve", str(tiny_model_dir), option, value])
    assert result.exit_code == 2 and option in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
