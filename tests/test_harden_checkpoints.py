"""Issue 27: damaged checkpoints, torn metrics, stale temp folders and NaN weights, on real tiny runs.

A run of 4 steps (a checkpoint every step, 3 kept) is trained once; the "interrupted" copy is
that run without its summary, final model and last checkpoint, i.e. killed after logging step 4
and before checkpointing it. Each test damages a copy and runs ``paraxl train`` again through
the real CLI: one line reports the damage, the run falls back to the newest intact checkpoint
(or starts over) and ends with the uninterrupted run's weights.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from typer.testing import CliRunner

from paraxl.cli.main import app

from .training_helpers import write_pairs

runner = CliRunner()

STEPS = 4
LAST, PREVIOUS = "step-0000003", "step-0000002"  # the interrupted run's checkpoints


def _config(root: Path, name: str, pairs: Path, model_dir: Path) -> Path:
    raw = {
        "model": {"name": str(model_dir), "max_seq_length": 32},
        "data": {"kind": "pairs", "paths": [str(pairs)]},
        "output_dir": str(root / name),
        "batch_size": 4,
        "max_steps": STEPS,
        "checkpoint_every": 1,
        "keep_checkpoints": 3,
        "log_every": 1,
        "optim": {"lr": 1e-3, "warmup_ratio": 0.0},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _train(config: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["train", str(config)])
    output = result.stderr + result.stdout
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, output


@pytest.fixture(scope="module")
def runs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(pairs file, the uninterrupted run's output folder), trained once for the module."""
    root = tmp_path_factory.mktemp("runs")
    pairs = write_pairs(root / "pairs.tsv", groups=24)
    code, output = _train(_config(root, "reference", pairs, tiny_model_dir))
    assert code == 0, output
    return pairs, root / "reference"


def _interrupted_copy(runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the reference run as a kill after logging step 4 leaves it: checkpoints 2 and 3,
    metrics of steps 1-4, no summary or final model. Returns its config file and folder."""
    pairs, reference = runs
    config = _config(tmp_path, "run", pairs, tiny_model_dir)
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "summary.json").unlink()
    shutil.rmtree(run / "final")
    shutil.rmtree(run / "checkpoints" / "step-0000004")
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [PREVIOUS, LAST]
    recorded = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(recorded | {"output_dir": str(run)}, indent=2) + "\n")
    return config, run


def _same_final_weights(run: Path, reference: Path) -> None:
    expected = load_file(reference / "final" / "model.safetensors")
    actual = load_file(run / "final" / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # the last byte of the last tensor: the file still loads, with another weight
    path.write_bytes(bytes(data))


def _checkpoint_files(runs: tuple[Path, Path]) -> list[str]:
    folder = runs[1] / "checkpoints" / "step-0000004"
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _damaged_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("checkpoint ") and " is damaged (" in line]


def _logged_steps(run: Path) -> list[int]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["step"] for line in lines]


# ---------------------------------------------------------------- tests


def test_the_interrupted_copy_resumes_from_its_last_checkpoint(
    runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    """The baseline the fault tests start from: nothing damaged, the last checkpoint is used."""
    config, run = _interrupted_copy(runs, tiny_model_dir, tmp_path)
    code, output = _train(config)
    assert code == 0, output
    assert f"resuming from {run / 'checkpoints' / LAST}" in output.replace("\n", "")
    assert not _damaged_lines(output)
    _same_final_weights(run, runs[1])
    assert _logged_steps(run) == list(range(1, STEPS + 1))


def test_checkpoints_have_a_manifest_of_every_file(runs: tuple[Path, Path]) -> None:
    folder = runs[1] / "checkpoints" / "step-0000004"
    manifest = json.loads((folder / "manifest.json").read_text())
    listed = set(manifest["files"])
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    assert listed == present
    assert {"optimizer.pt", "model/model.safetensors", "model/config.json", "state.json"} <= listed


def _fault_cases() -> list[str]:
    # the files of a checkpoint (the tiny run's); the manifest itself is one of them
    return [
        "manifest.json",
        "model/1_Pooling/config.json",
        "model/config.json",
        "model/config_sentence_transformers.json",
        "model/model.safetensors",
        "model/modules.json",
        "model/paraxl_config.json",
        "model/sentence_bert_config.json",
        "model/special_tokens_map.json",
        "model/tokenizer.json",
        "model/tokenizer_config.json",
        "optimizer.pt",
        "rng.pt",
        "scheduler.pt",
        "state.json",
    ]


def test_fault_cases_cover_every_checkpoint_file(runs: tuple[Path, Path]) -> None:
    assert set(_checkpoint_files(runs)) <= set(_fault_cases())


# truncated: every file; one byte changed: the files that still load with it (a checksum's job)
FAULTS = [(name, _truncate) for name in _fault_cases()] + [
    ("model/model.safetensors", _flip_last_byte),
    ("optimizer.pt", _flip_last_byte),
    ("model/tokenizer.json", _flip_last_byte),
]


@pytest.mark.parametrize(("name", "damage"), FAULTS, ids=[f"{n}-{d.__name__.strip('_')}" for n, d in FAULTS])
def test_a_damaged_last_checkpoint_falls_back_to_the_previous_one(
    name: str, damage: Callable[[Path], None], runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    config, run = _interrupted_copy(runs, tiny_model_dir, tmp_path)
    target = run / "checkpoints" / LAST / name
    if not target.is_file():
        pytest.skip(f"the tiny model's checkpoint has no {name}")
    damage(target)
    code, output = _train(config)
    assert code == 0, output
    damaged = _damaged_lines(output)
    assert len(damaged) == 1 and LAST in damaged[0], output
    assert f"resuming from {run / 'checkpoints' / PREVIOUS}" in output.replace("\n", "")
    _same_final_weights(run, runs[1])
    assert _logged_steps(run) == list(range(1, STEPS + 1))  # steps 3 and 4 redone, logged once


def test_no_intact_checkpoint_starts_over(runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path) -> None:
    config, run = _interrupted_copy(runs, tiny_model_dir, tmp_path)
    _truncate(run / "checkpoints" / LAST / "optimizer.pt")
    _truncate(run / "checkpoints" / PREVIOUS / "model" / "model.safetensors")
    code, output = _train(config)
    assert code == 0, output
    assert len(_damaged_lines(output)) == 2, output
    assert "starting over" in output and "resuming from" not in output
    _same_final_weights(run, runs[1])
    assert _logged_steps(run) == list(range(1, STEPS + 1))


@pytest.mark.parametrize(
    "name", ["optimizer.pt", "model/model.safetensors", "model/config.json", "state.json", "rng.pt", "scheduler.pt"]
)
def test_a_checkpoint_without_manifest_still_resumes_and_falls_back(
    name: str, runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Checkpoints written before manifests: loaded unverified; a load error still falls back."""
    config, run = _interrupted_copy(runs, tiny_model_dir, tmp_path)
    for checkpoint in (LAST, PREVIOUS):
        (run / "checkpoints" / checkpoint / "manifest.json").unlink(missing_ok=True)
    _truncate(run / "checkpoints" / LAST / name)
    code, output = _train(config)
    assert code == 0, output
    damaged = _damaged_lines(output)
    assert len(damaged) == 1 and LAST in damaged[0], output
    assert f"resuming from {run / 'checkpoints' / PREVIOUS}" in output.replace("\n", "")
    _same_final_weights(run, runs[1])


def test_an_old_checkpoint_without_manifest_resumes(
    runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    config, run = _interrupted_copy(runs, tiny_model_dir, tmp_path)
    (run / "checkpoints" / LAST / "manifest.json").unlink(missing_ok=True)
    code, output = _train(config)
    assert code == 0, output
    assert f"resuming from {run / 'checkpoints' / LAST}" in output.replace("\n", "")
    _same_final_weights(run, runs[1])


def test_a_torn_last_metrics_line_is_dropped_with_a_note(
    runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    config, run = _interrupted_copy(runs, tiny_model_dir, tmp_path)
    metrics = run / "metrics.jsonl"
    text = metrics.read_text()
    metrics.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])  # half of the last line
    code, output = _train(config)
    assert code == 0, output
    assert "metrics.jsonl" in output and "torn" in output
    _same_final_weights(run, runs[1])
    assert _logged_steps(run) == list(range(1, STEPS + 1))


def test_a_damaged_line_inside_metrics_is_one_line_error(
    runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    config, run = _interrupted_copy(runs, tiny_model_dir, tmp_path)
    metrics = run / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join([lines[0], lines[1][:10], *lines[2:]]) + "\n")
    code, output = _train(config)
    assert code == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "metrics.jsonl:2:" in errors[0], output


def test_an_unreadable_run_config_is_one_line_error(
    runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    config, run = _interrupted_copy(runs, tiny_model_dir, tmp_path)
    _truncate(run / "config.json")
    code, output = _train(config)
    assert code == 2, output
    assert len(output.strip().splitlines()) == 1 and "config.json" in output


def test_stale_temp_folders_are_removed_at_start(runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path) -> None:
    """A checkpoint write killed midway leaves `.step-N.XXXXXXXX.tmp`: removed, with a note; nothing else is."""
    config, run = _interrupted_copy(runs, tiny_model_dir, tmp_path)
    checkpoints = run / "checkpoints"
    stale = checkpoints / ".step-0000004.k2_9ab7x.tmp"
    shutil.copytree(checkpoints / LAST, stale)
    replaced = checkpoints / ".step-0000002.qz81mm0a.old"
    (replaced / "replaced").mkdir(parents=True)
    kept = [checkpoints / ".mine.tmp", checkpoints / "notes.txt", checkpoints / ".step-0000004.tmp"]
    kept[0].mkdir()
    kept[1].write_text("mine\n")
    kept[2].mkdir()
    code, output = _train(config)
    assert code == 0, output
    assert not stale.exists() and not replaced.exists()
    assert all(path.exists() for path in kept)
    notes = [line for line in output.splitlines() if "interrupted checkpoint write" in line]
    assert len(notes) == 1 and "2" in notes[0], output
    _same_final_weights(run, runs[1])


def test_nan_weights_are_refused_before_a_checkpoint(
    runs: tuple[Path, Path], tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step that leaves a NaN weight: the run stops with one line naming the step, nothing written."""
    import paraxl.training.trainer as trainer

    real = trainer.accumulate_step_gradient
    calls = {"n": 0}

    def poisoned(model: torch.nn.Module, *args: object, **kwargs: object) -> float:
        loss = real(model, *args, **kwargs)  # type: ignore[arg-type]
        calls["n"] += 1
        if calls["n"] == 2:  # the second step's gradient is NaN: AdamW writes NaN weights
            for parameter in model.parameters():
                if parameter.grad is not None:
                    parameter.grad.fill_(float("nan"))
        return loss

    monkeypatch.setattr(trainer, "accumulate_step_gradient", poisoned)
    config = _config(tmp_path, "nan", runs[0], tiny_model_dir)
    code, output = _train(config)
    assert code == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "step 2" in errors[0] and "non-finite" in errors[0], output
    checkpoints = sorted(p.name for p in (tmp_path / "nan" / "checkpoints").iterdir())
    assert checkpoints == ["step-0000001"]
    assert not (tmp_path / "nan" / "final").exists()
