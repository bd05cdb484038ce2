"""Issue 27: a damaged model folder, a soup with bad weights, a resaved tokenizer, a missing local folder.

Every damage must end in one line on stderr and exit code 2 (never a traceback), nothing may be
unpickled, and a model saved twice from the same weights must give the same bytes.
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.errors import ModelFormatError, ModelSpecError
from paraxl.modeling.bi_encoder import BiEncoder

runner = CliRunner()


def encode_with(folder: Path, tmp_path: Path, *extra: str) -> tuple[int, str, str]:
    """``paraxl encode`` of two texts with the model in ``folder``: (exit code, stdout, stderr)."""
    source = tmp_path / "in.txt"
    source.write_text("the cat\nle chat\n", encoding="utf-8")
    target = tmp_path / "out.npy"
    target.unlink(missing_ok=True)
    result = runner.invoke(app, ["encode", str(source), "-o", str(target), "-m", str(folder), *extra])
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


class _Planted:
    """Unpickling this makes the folder ``marker``: proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return os.mkdir, (str(self.marker),)


def _copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "damaged"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def _truncate_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps(_Planted(path.parent / "UNPICKLED")))


def _torch_zip(path: Path) -> None:
    torch.save({"weights": _Planted(path.parent / "UNPICKLED")}, path)


def _unrelated_tensors(path: Path) -> None:
    save_file({"something.else": torch.zeros(3)}, str(path))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (_truncate_half, "model.safetensors"),
        (_empty, "model.safetensors"),
        (_pickle, "model.safetensors"),
        (_torch_zip, "model.safetensors"),
        (_unrelated_tensors, "model.safetensors"),
    ],
    ids=["truncated", "zero-bytes", "pickle", "torch-zip", "unrelated-tensors"],
)
def test_damaged_weights_are_one_line_and_never_unpickled(
    tiny_model_dir: Path, tmp_path: Path, damage: Callable[[Path], None], expected: str
) -> None:
    folder = _copy(tiny_model_dir, tmp_path)
    damage(folder / "model.safetensors")
    code, out, err = encode_with(folder, tmp_path)
    assert_one_line_error(code, out, err, expected)
    assert not (folder / "UNPICKLED").exists()
    assert not (tmp_path / "out.npy").exists()


def test_pytorch_bin_beside_an_unrelated_safetensors_is_refused_by_name(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path)
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    _pickle(folder / "pytorch_model.bin")
    save_file({"x": torch.zeros(2)}, str(folder / "adapter.safetensors"))
    code, out, err = encode_with(folder, tmp_path)
    assert_one_line_error(code, out, err, "model.safetensors", "pytorch_model.bin")
    assert not (folder / "UNPICKLED").exists()


def test_every_verb_that_loads_a_model_reports_damage_in_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path)
    _truncate_half(folder / "model.safetensors")
    for args in (
        ["similarity", "the cat", "le chat", "-m", str(folder)],
        ["pi", str(folder), "the cat", "le chat", "--threshold", "0.5"],
    ):
        result = runner.invoke(app, args)
        assert_one_line_error(result.exit_code, result.stdout, result.stderr, "model.safetensors")


def test_load_raises_model_format_error_naming_the_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path)
    (folder / "tokenizer.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelFormatError, match=r"tokenizer\.json"):
        BiEncoder.load(folder)


@pytest.mark.parametrize("relative", ["tokenizer.json", "model.safetensors", "onnx/model.onnx"])
def test_onnx_backend_reports_damage_in_one_line(tiny_model_dir: Path, tmp_path: Path, relative: str) -> None:
    from paraxl.inference.onnx_export import export_onnx

    folder = _copy(tiny_model_dir, tmp_path)
    export_onnx(folder, int8=False)
    _truncate_half(folder / relative)
    code, out, err = encode_with(folder, tmp_path, "--backend", "onnx")
    assert_one_line_error(code, out, err, str(folder))


def test_cross_encoder_load_reports_damage_as_model_format_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    from paraxl.modeling.cross_encoder import load_cross_encoder

    folder = _copy(tiny_model_dir, tmp_path)
    _truncate_half(folder / "model.safetensors")
    with pytest.raises(ModelFormatError, match=r"model\.safetensors: damaged"):
        load_cross_encoder(folder, max_length=32)


def _fault_cases(folder: Path) -> list[Path]:
    return sorted(path.relative_to(folder) for path in folder.rglob("*") if path.is_file())


def test_fault_injection_truncating_each_file_of_a_model_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Every file cut to half and to 0 bytes: a one-line error or a success, never a traceback."""
    counts = {"cases": 0, "one-line errors": 0, "successes": 0}
    for relative in _fault_cases(tiny_model_dir):
        for damage in (_truncate_half, _empty):
            case = tmp_path / f"case{counts['cases']}"
            case.mkdir()
            folder = _copy(tiny_model_dir, case)
            damage(folder / relative)
            code, out, err = encode_with(folder, case)
            counts["cases"] += 1
            if code == 0:
                counts["successes"] += 1
            else:
                assert_one_line_error(code, out, err)
                counts["one-line errors"] += 1
    print(f"model folder fault injection: {counts}")
    assert counts["cases"] == 2 * len(_fault_cases(tiny_model_dir))
    assert counts["one-line errors"] + counts["successes"] == counts["cases"]


# ------------------------------------------------------------------ soup (fail 5)
def _two_runs(tiny_model_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Two folders saved from the same loaded model (one layout, equal weights)."""
    model = BiEncoder.load(tiny_model_dir)
    model.save(tmp_path / "first")
    model.save(tmp_path / "second")
    return tmp_path / "first", tmp_path / "second"


@pytest.mark.parametrize("weights", ["inf,1", "nan,1", "1e308,1e308", "-1,2", "0,1"])
def test_soup_refuses_non_finite_or_non_positive_weights(tiny_model_dir: Path, tmp_path: Path, weights: str) -> None:
    first, second = _two_runs(tiny_model_dir, tmp_path)
    out = tmp_path / "soup"
    result = runner.invoke(app, ["soup", str(first), str(second), "--weights", weights, "-o", str(out)])
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, "weight")
    assert not out.exists()


def test_soup_refuses_a_nan_output_tensor_before_writing(tiny_model_dir: Path, tmp_path: Path) -> None:
    first, second = _two_runs(tiny_model_dir, tmp_path)
    tensors = load_file(str(second / "model.safetensors"))
    name = sorted(name for name, tensor in tensors.items() if tensor.is_floating_point())[0]
    tensors[name][0] = float("nan")
    save_file(tensors, str(second / "model.safetensors"), metadata={"format": "pt"})
    out = tmp_path / "soup"
    result = runner.invoke(app, ["soup", str(first), str(second), "-o", str(out)])
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, name)
    assert not out.exists()


def test_check_finite_tensors_names_the_tensor() -> None:
    from paraxl.modeling.finite import check_finite_tensors

    check_finite_tensors({"a": torch.ones(2), "ids": torch.arange(3)}, "here")
    with pytest.raises(ModelFormatError, match=r"here: b .*1 non-finite"):
        check_finite_tensors({"a": torch.ones(2), "b": torch.tensor([1.0, float("inf")])}, "here")


# ------------------------------------------------------------------ deterministic save (fail 6)
def test_saving_is_deterministic_after_encoding_with_truncation(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A model loaded and saved must give the same bytes whether or not it encoded (truncated) texts."""
    plain = tmp_path / "plain"
    BiEncoder.load(tiny_model_dir).save(plain)
    used = BiEncoder.load(tiny_model_dir)
    used.encode(["the cat sat on the mat " * 40, "le chat"])  # longer than max_seq_length: truncated
    used.tokenize_by_length(["the cat", "le chat"], 1)
    used.save(tmp_path / "used")
    again = BiEncoder.load(tmp_path / "used")  # a resumed run: loaded from a folder that was saved in use
    again.encode(["der hund " * 50])
    again.save(tmp_path / "again")
    for other in (tmp_path / "used", tmp_path / "again"):
        assert _fault_cases(other) == _fault_cases(plain)
        for relative in _fault_cases(plain):
            assert (other / relative).read_bytes() == (plain / relative).read_bytes(), relative


def test_a_resumed_twin_can_be_souped(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    BiEncoder.load(tiny_model_dir).save(first)
    resumed = BiEncoder.load(first)
    resumed.encode(["the cat sat on the mat " * 40])
    resumed.save(tmp_path / "mid")
    BiEncoder.load(tmp_path / "mid").save(tmp_path / "resumed")
    result = runner.invoke(app, ["soup", str(first), str(tmp_path / "resumed"), "-o", str(tmp_path / "soup")])
    assert result.exit_code == 0, result.stderr


# ------------------------------------------------------------------ local paths never reach the Hub (weak)
@pytest.mark.parametrize("spec", ["models/nope", "./nope", "/no/such/folder", "~/no-such-paraxl-model", "../nope"])
def test_a_path_like_spec_never_reaches_the_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str) -> None:
    import huggingface_hub

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the Hub was asked for {args}")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    from paraxl.loading.specs import resolve_model_folder

    with pytest.raises(ModelSpecError, match="no such folder"):
        resolve_model_folder(spec)
    result = runner.invoke(app, ["pi", spec, "the cat", "le chat", "--threshold", "0.5"])
    assert_one_line_error(result.exit_code, result.stdout, result.stderr, "no such folder")


def test_an_org_name_spec_without_such_folder_still_goes_to_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub

    asked: list[str] = []

    def fake_download(repo_id: str, **kwargs: object) -> str:
        asked.append(repo_id)
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    monkeypatch.chdir(tmp_path)
    from paraxl.loading.specs import resolve_model_folder

    with pytest.raises(ModelSpecError, match="Hugging Face Hub"):
        resolve_model_folder("intfloat/multilingual-e5-small")
    assert asked == ["intfloat/multilingual-e5-small"]
