"""Optional API key (issue 30): ``Authorization: Bearer KEY`` on every route but /health and the docs,
401 + ``WWW-Authenticate: Bearer`` otherwise; ``paraxl serve --api-key`` / ``PARAXL_API_KEY``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from paraxl.cli.main import app as cli_app
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.serving.app import create_app
from paraxl.serving.service import ParaxlService

KEY = "s3cret-key"
runner = CliRunner()


@pytest.fixture(scope="module")
def service(tiny_model_dir: Path) -> ParaxlService:
    return ParaxlService(BiEncoder.load(tiny_model_dir), model_name="tiny")


def _refused(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "API key" in response.json()["error"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        f"Basic {KEY}",
        f"Bearer {KEY}x",
        f"Bearer {KEY[:-1]}",
        "Bearer é".encode("latin-1"),
    ],
)
def test_a_missing_or_wrong_key_is_401(service: ParaxlService, authorization: str | bytes | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with TestClient(create_app(service, api_key=KEY)) as client:
        for method, path, body in [
            ("POST", "/embed", {"texts": ["a"]}),
            ("GET", "/metrics", None),
            ("GET", "/nope", None),
        ]:
            _refused(client.request(method, path, json=body, headers=headers))


def test_the_right_key_passes_and_health_and_docs_are_open(service: ParaxlService) -> None:
    with TestClient(create_app(service, api_key=KEY)) as client:
        good = {"Authorization": f"Bearer {KEY}"}
        assert client.post("/embed", json={"texts": ["a"]}, headers=good).status_code == 200
        assert (
            client.post("/embed", json={"texts": ["a"]}, headers={"Authorization": f"bearer {KEY}"}).status_code == 200
        )
        for path in ("/health", "/openapi.json", "/docs"):
            assert client.get(path).status_code == 200, path


def test_a_401_on_the_openai_routes_is_in_openai_error_shape(service: ParaxlService) -> None:
    with TestClient(create_app(service, api_key=KEY)) as client:
        for method, path in [("POST", "/v1/embeddings"), ("GET", "/v1/models")]:
            response = client.request(
                method, path, json={"model": "tiny", "input": "a"}, headers={"Authorization": "x"}
            )
            assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and "API key" in error["message"]
            assert (error["type"], error["code"], error["param"]) == ("authentication_error", "invalid_api_key", None)


def test_the_playground_page_is_open_its_api_calls_are_not(service: ParaxlService) -> None:
    with TestClient(create_app(service, api_key=KEY)) as client:
        for path in ("/", "/playground/app.js", "/playground/style.css"):
            assert client.get(path).status_code == 200, path  # static files: the page asks for the key
        _refused(client.get("/playground/../metrics"))
        _refused(client.post("/embed", json={"texts": ["a"]}))


def test_without_a_key_nothing_is_checked(service: ParaxlService) -> None:
    with TestClient(create_app(service)) as client:
        assert client.post("/embed", json={"texts": ["a"]}).status_code == 200


def _served_app(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str] | None = None
) -> tuple[Any, FastAPI | None]:
    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **settings: captured.update(settings, app=app))
    result = runner.invoke(cli_app, ["serve", *args], env=env)
    return result, captured.get("app")


@pytest.mark.parametrize("how", ["option", "env"])
def test_serve_takes_the_key_from_the_option_or_the_environment(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    args = [str(tiny_model_dir), "--host", "0.0.0.0"]
    if how == "option":
        result, app = _served_app(monkeypatch, [*args, "--api-key", KEY])
    else:
        result, app = _served_app(monkeypatch, args, env={"PARAXL_API_KEY": KEY})
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr  # not loopback, but a key is required
    assert KEY not in result.output  # the secret is never echoed
    assert app is not None
    with TestClient(app) as client:
        _refused(client.post("/embed", json={"texts": ["a"]}))
        assert (
            client.post("/embed", json={"texts": ["a"]}, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        )


def test_serve_warns_beyond_loopback_without_a_key(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = _served_app(monkeypatch, [str(tiny_model_dir), "--host", "0.0.0.0"], env={"PARAXL_API_KEY": None})  # type: ignore[dict-item]
    assert result.exit_code == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "no authentication" in warnings[0] and "PARAXL_API_KEY" in warnings[0]


@pytest.mark.parametrize("key", ["", "   ", " padded ", "tab\there"])
def test_serve_refuses_an_unusable_key_in_one_line(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    result, app = _served_app(monkeypatch, [str(tiny_model_dir), "--api-key", key])
    assert result.exit_code == 2 and app is None
    assert len(result.stderr.strip().splitlines()) == 1 and "--api-key" in result.stderr
    assert "Traceback" not in result.output
