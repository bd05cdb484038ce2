"""``paraxl eval --backend auto``: every registered task scores the same on torch and on ONNX fp32.

The oracle is the PyTorch run: each task's main score through ``auto`` (ONNX fp32 exported into
paraxl's cache, the user's folder untouched) must print the same at the precision the summary
reports it and lie within 1e-6 of torch's. Also: the two backends share one embedding cache,
int8 does not, and an export that fails its check falls back to torch and says so.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from paraxl.errors import ModelFormatError
from paraxl.evaluation.report import headline_text
from paraxl.evaluation.session import EvalOutcome, EvalRequest, run_evaluation
from paraxl.evaluation.tasks.registry import TASKS
from paraxl.inference import onnx_export
from paraxl.loading.fastest import MIRROR_ROOT, open_fastest_identical
from paraxl.modeling.bi_encoder import BiEncoder

from .eval_fixtures import write_benchmark_data, write_user_data


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every task's miniature data: the offline tasks, MTOP and STS22, STS17-extended in STS22's layout."""
    root = write_user_data(write_benchmark_data(tmp_path_factory.mktemp("bench")))
    (root / "sts17-crosslingual").mkdir()
    shutil.copy(root / "sts22" / "test.jsonl", root / "sts17-crosslingual" / "test.jsonl")
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("paraxl-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PARAXL_CACHE_DIR", str(folder))
        yield folder


def _evaluate(model: Path, data: Path, output: Path, backend: str, tasks: str, cache: bool) -> EvalOutcome:
    request = EvalRequest(
        model=str(model), tasks=tasks, data_dir=data, output_dir=output, backend=backend, use_cache=cache, plots=False
    )
    return run_evaluation(request)


@pytest.fixture(scope="module")
def runs(
    tiny_model_dir: Path, bench_dir: Path, cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, EvalOutcome]:
    """Every registered task on torch and on auto, without the embedding cache (each encodes for itself)."""
    root = tmp_path_factory.mktemp("identity")
    model = root / "model"
    shutil.copytree(tiny_model_dir, model)
    tasks = ",".join(TASKS)
    return {
        backend: _evaluate(model, bench_dir, root / backend, backend, tasks, False) for backend in ("torch", "auto")
    }


def test_auto_runs_onnx_and_records_it(runs: dict[str, EvalOutcome], cache: Path) -> None:
    assert {doc["model"]["backend"] for doc in runs["torch"].documents} == {"torch"}
    assert {doc["model"]["backend"] for doc in runs["auto"].documents} == {"onnx"}
    model_folder = Path(runs["auto"].documents[0]["model"]["folder"])
    assert not (model_folder / "onnx").exists()  # a user's folder is never written into
    assert not any((cache / MIRROR_ROOT).iterdir())  # without the cache, the one-off export is gone
    prints = {doc["model"]["fingerprint"] for run in runs.values() for doc in run.documents}
    assert len(prints) == 1  # torch and checked ONNX fp32: one numerics key
    assert "inference backend: onnx" in (runs["auto"].output_dir / "summary.md").read_text()


def test_every_task_scores_the_same_on_torch_and_onnx(runs: dict[str, EvalOutcome]) -> None:
    torch_run = {result.task.name: result for result in runs["torch"].results}
    onnx_run = {result.task.name: result for result in runs["auto"].results}
    assert list(torch_run) == list(onnx_run) == list(TASKS)
    for name, expected in torch_run.items():
        got = onnx_run[name]
        assert expected.main_score is not None and got.main_score is not None, name
        assert headline_text(got) == headline_text(expected), name  # as reported
        assert got.main_score == pytest.approx(expected.main_score, abs=1e-6), name
        for language, value in expected.scores.per_language.items():  # the per-language rows too
            assert got.scores.per_language[language] == pytest.approx(value, abs=1e-6), (name, language)


def test_torch_and_onnx_share_the_embedding_cache_and_int8_does_not(
    tiny_model_dir: Path, bench_dir: Path, cache: Path, tmp_path: Path
) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    first = _evaluate(model, bench_dir, tmp_path / "torch", "torch", "sts", True)
    assert first.documents[0]["embeddings"]["encoded"] > 0
    second = _evaluate(model, bench_dir, tmp_path / "auto", "auto", "sts", True)
    assert second.documents[0]["model"]["backend"] == "onnx"
    assert second.documents[0]["embeddings"]["encoded"] == 0  # every vector came from torch's cache
    assert second.results[0].main_score == first.results[0].main_score
    assert len(list((cache / MIRROR_ROOT).iterdir())) == 1  # with the cache on, the export is kept for next time
    onnx_export.export_onnx(model)  # the user exports int8 themselves (`paraxl export-onnx`)
    int8 = _evaluate(model, bench_dir, tmp_path / "int8", "onnx-int8", "sts", True)
    assert int8.documents[0]["embeddings"]["encoded"] == first.documents[0]["embeddings"]["encoded"]
    assert int8.documents[0]["model"]["fingerprint"] != first.documents[0]["model"]["fingerprint"]


def test_a_failed_check_falls_back_to_torch_loudly(
    tiny_model_dir: Path, bench_dir: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> tuple[float, float]:
        raise ModelFormatError("the ONNX export does not reproduce torch (max abs difference 0.1)")

    monkeypatch.setattr(onnx_export, "_check_against_torch", broken)
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    lines: list[str] = []
    request = EvalRequest(
        model=str(model), tasks="sts", data_dir=bench_dir, output_dir=tmp_path / "out", use_cache=False, plots=False
    )
    outcome = run_evaluation(request, log=lines.append)
    assert outcome.documents[0]["model"]["backend"] == "torch"
    warning = next(line for line in lines if line.startswith("WARNING"))
    assert "falling back" in warning and "does not reproduce torch" in warning


def test_a_folder_with_its_own_checked_export_runs_on_it(tiny_model_dir: Path, tmp_path: Path, cache: Path) -> None:
    """``export_user_folder=False`` (the demo): the folder's own export is used, none is made."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    encoder, choice = open_fastest_identical(model, export_user_folder=False)
    assert choice.backend == "torch" and not choice.fell_back and not (model / "onnx").exists()
    onnx_export.export_onnx(model, int8=False)
    encoder, choice = open_fastest_identical(model, export_user_folder=False)
    assert choice.backend == "onnx" and choice.numerics == BiEncoder.load(model).fingerprint
    texts = ["the cat sat on the mat", "der hund", "猫は犬"]
    assert abs(encoder.encode(texts) - BiEncoder.load(model).encode(texts)).max() <= onnx_export.EMBEDDING_TOLERANCE
