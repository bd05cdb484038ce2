from __future__ import annotations

from pathlib import Path

import pytest

from paraxl.errors import ModelSpecError
from paraxl.loading import specs as sources
from paraxl.loading.backends import load_encoder
from paraxl.loading.specs import resolve_model_folder


def test_local_folder_loads(tiny_model_dir: Path) -> None:
    assert load_encoder(str(tiny_model_dir)).dimension == 32


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty model spec"),
        ("bundled:multilingual-e5-smal", "did you mean 'bundled:multilingual-e5-small'"),
        ("multilingual-e5-small", "did you mean 'bundled:multilingual-e5-small'"),
        ("./no/such/folder", r"\./no/such/folder: no such folder"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ModelSpecError, match=message):
        resolve_model_folder(spec)


def test_file_is_not_a_model(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x")
    with pytest.raises(ModelSpecError, match="is a file"):
        resolve_model_folder(str(path))


def test_hub_ids_go_to_the_hub_with_revision(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[tuple[str, str | None]] = []

    def fake_snapshot(repo_id: str, revision: str | None, allow_patterns: list[str]) -> str:
        calls.append((repo_id, revision))
        assert not any(pattern.endswith((".bin", ".pt", ".pkl")) for pattern in allow_patterns)
        return str(tmp_path)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    assert sources.resolve_model_folder("hub:sentence-transformers/LaBSE@abc123") == tmp_path
    assert sources.resolve_model_folder("intfloat/multilingual-e5-small") == tmp_path
    assert calls == [("sentence-transformers/LaBSE", "abc123"), ("intfloat/multilingual-e5-small", None)]


def test_hub_failure_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def offline(*args: object, **kwargs: object) -> str:
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ModelSpecError, match=r"cannot fetch 'org/model'.*unreachable"):
        resolve_model_folder("hub:org/model")
