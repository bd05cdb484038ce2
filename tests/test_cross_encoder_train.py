"""`paraxl train` on a cross-encoder config (tiny model): the final folder, resume after SIGKILL, config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.decision.threshold import best_threshold
from paraxl.errors import InputError
from paraxl.evaluation.pawsx_protocol import read_labelled
from paraxl.modeling.cross_encoder import open_cross_encoder_scorer
from paraxl.training.config import load_config
from paraxl.training.config_kinds import load_train_config
from paraxl.training.cross_encoder_config import CrossEncoderTrainConfig, resume_settings

from .scripts import REPO, load_benchmark_script
from .training_helpers import fake_pawsx, write_pairs

runner = CliRunner()


def write_config(path: Path, model_dir: Path, data: dict[str, Any], **fields: Any) -> Path:
    """A tiny cross-encoder config (JSON is YAML): 2 epochs, batch 8, lr 1e-3."""
    raw = {
        "model": {"kind": "cross_encoder", "name": str(model_dir), "max_seq_length": 32},
        "data": data,
        "batch_size": 8,
        "lr": 1e-3,
        "epochs": 2,
        "seed": 3,
        "output_dir": str(path.parent / "run"),
    } | fields
    path.write_text(json.dumps(raw, indent=1))
    return path


def test_train_writes_a_final_cross_encoder_that_sentence_transformers_loads(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    data = fake_pawsx(tmp_path / "data")
    pawsx = {"kind": "pawsx", "languages": ["en", "de"]}
    config = write_config(tmp_path / "ce.yaml", tiny_model_dir, pawsx, validation={"languages": ["en", "ja"]})
    result = runner.invoke(app, ["train", str(config), "--data-dir", str(data)])
    assert result.exit_code == 0, result.stderr
    assert "epochs of 96 pairs" in result.stdout and "validation accuracy by epoch" in result.stdout

    output = tmp_path / "run"
    final = output / "final"
    pairs = [("the cat 1 sat on the mat", "on the mat the cat 1 sat"), ("der hund", "the dog ran"), ("猫", "chat")]
    expected = CrossEncoder(str(final)).predict(pairs, convert_to_numpy=True)
    np.testing.assert_allclose(open_cross_encoder_scorer(final).score(pairs), expected, atol=1e-6)

    summary = json.loads((output / "summary.json").read_text())
    assert summary["kind"] == "cross_encoder" and summary["training"]["epochs_completed"] == 2
    assert summary["data"]["pairs"] == {"en": 48, "de": 48}  # 24 groups x 2 per language, NS row left out
    assert summary["data"]["untranslated_left_out"] == {"en": 1, "de": 1}
    assert summary["training"]["steps"] == 24  # 2 epochs x 96 / 8
    assert {record["path"] for record in summary["data"]["files"]} == {
        f"pawsx/resplit/{lang}/{split}.tsv" for lang, split in [("en", "train"), ("de", "train"), *_val(["en", "ja"])]
    }
    assert [item["epoch"] for item in summary["epochs"]] == [1, 2]
    assert all(item["train_loss"] > 0 for item in summary["epochs"])
    # the last epoch's validation: the best pooled threshold on the final model's validation scores
    validation = read_labelled(data, "validation", ("en", "ja"), "resplit")
    scores = open_cross_encoder_scorer(final).score([(p.first, p.second) for rows in validation.values() for p in rows])
    labels = np.array([p.label for rows in validation.values() for p in rows])
    threshold, accuracy = best_threshold(scores, labels)
    last = summary["epochs"][-1]
    assert last["validation_accuracy"] == pytest.approx(accuracy, abs=1e-9)
    assert last["threshold"] == pytest.approx(threshold, abs=1e-5)
    assert set(last["validation_accuracy_per_language"]) == {"en", "ja"}

    again = runner.invoke(app, ["train", str(config), "--data-dir", str(data)])
    assert again.exit_code != 0 and "holds a finished run" in again.stderr


def _val(languages: list[str]) -> list[tuple[str, str]]:
    return [(lang, "validation") for lang in languages]


def _cli(config: Path, *overrides: str) -> list[str]:
    return [sys.executable, "-m", "paraxl.cli.main", "train", str(config), *overrides]


def _train_in_process(config: Path, *overrides: str) -> str:
    """`paraxl train` here, on one thread as the killed subprocess (OMP_NUM_THREADS=1): its stderr."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = runner.invoke(app, ["train", str(config), *overrides])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("length_grouped", [False, True], ids=["random-batches", "length-grouped"])
def test_resume_after_sigkill_after_the_first_epoch_gives_the_same_weights(
    tiny_model_dir: Path, tmp_path: Path, length_grouped: bool
) -> None:
    """Kill a CLI run once epoch 1's checkpoint is written; the same command again continues from it
    (epoch 2 only) and ends with the bit-identical weights of an uninterrupted run."""
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    pairs = write_pairs(tmp_path / "pairs.tsv", groups=100)  # 200 pairs: 25 steps per epoch
    data = {"kind": "pairs", "paths": [str(pairs)]}
    config = write_config(tmp_path / "ce.yaml", tiny_model_dir, data, length_grouped=length_grouped)
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    process = subprocess.Popen(
        _cli(config, f"output_dir={killed}"), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    first_epoch = killed / "checkpoint-25" / "trainer_state.json"  # the Trainer writes it last
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and not first_epoch.is_file():
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert first_epoch.is_file() and not (killed / "final").exists()

    _train_in_process(config, f"output_dir={reference}")  # the uninterrupted run
    resumed = _train_in_process(config, f"output_dir={killed}")  # the same command again
    assert "resuming from" in resumed and "checkpoint-25 (epoch 1 of 2)" in resumed
    assert "epoch 2:" in resumed and "epoch 1:" not in resumed  # it trained epoch 2 only
    expected = load_file(reference / "final" / "model.safetensors")
    actual = load_file(killed / "final" / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["training"]["resumed_from"].endswith("checkpoint-25")
    assert [item["epoch"] for item in summary["epochs"]] == [1, 2]
    assert [path.name for path in killed.glob("checkpoint-*")] == ["checkpoint-50"]


def test_the_config_continues_a_checkpoint_folder_of_the_benchmark_script(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = fake_pawsx(tmp_path / "data")
    folder = tmp_path / "checkpoints"
    argv = ["--model", str(tiny_model_dir), "--data-dir", str(data), "--languages", "en", "--epochs", "2"]
    argv += ["--batch-size", "8", "--lr", "0.001", "--max-length", "32", "--seed", "3"]
    argv += ["--checkpoint-dir", str(folder), "--stop-after-epochs", "1", "--output", str(tmp_path / "ce.json")]
    assert load_benchmark_script("cross_encoder_pawsx").main(argv) == 0
    capsys.readouterr()
    config = write_config(tmp_path / "ce.yaml", tiny_model_dir, {"kind": "pawsx", "languages": ["en"]})
    result = runner.invoke(app, ["train", str(config), f"output_dir={folder}", "--data-dir", str(data)])
    assert result.exit_code == 0, result.stderr
    assert "resuming from" in result.stderr and "(epoch 1 of 2)" in result.stderr
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["training"]["resumed_from"].endswith("checkpoint-6")  # 48 pairs / 8
    assert "test_accuracy" in summary["epochs"][0]  # the script's epoch-1 record, kept
    assert (folder / "final" / "model.safetensors").is_file()


def test_the_reference_config_has_the_benchmark_scripts_settings() -> None:
    import argparse

    script = load_benchmark_script("cross_encoder_pawsx")
    config = load_train_config(REPO / "configs" / "pawsx-cross-encoder.yaml")
    assert isinstance(config, CrossEncoderTrainConfig)
    defaults = argparse.Namespace(
        model="bundled:multilingual-e5-small",
        epochs=3,
        batch_size=32,
        lr=2e-5,
        max_length=128,
        seed=0,
        limit_train=None,
    )
    assert resume_settings(config) == script.resume_settings(defaults, ("en", "de", "es", "fr", "ja", "ko", "zh"))
    # through JSON (resume.json) too
    assert json.loads(json.dumps(resume_settings(config))) == resume_settings(config)


# ---------------------------------------------------------------- config errors and overrides


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


CONFIG = """\
model:
  kind: cross_encoder
  name: some/model
data:
  kind: pairs
  paths: [pairs.tsv]
batch_size: 16
lr: 3.0e-5
output_dir: runs/x
"""


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (CONFIG.replace("lr: 3.0e-5", "optim: {lr: 1}"), "unknown key 'optim'", 8),
        (CONFIG.replace("  paths", "  pahts"), "unknown key 'data.pahts'; did you mean 'paths'?", 6),
        (CONFIG.replace("kind: cross_encoder", "kind: cross-encoder"), "did you mean 'cross_encoder'?", 2),
        (CONFIG.replace("kind: pairs", "kind: xnli"), "data.kind: 'xnli' is not a data kind", 5),
        (CONFIG + "epochs: 0\n", "epochs: Input should be greater than or equal to 1", 10),
        (CONFIG.replace("  paths", "  swap_negatives: true\n  paths"), "a cross-encoder trains on the labelled", 4),
        (CONFIG.replace("  paths", "  label: null\n  paths"), "`label` must name the label column", 4),
        (CONFIG.replace("  name: some/model\n", "  max_length: 64\n"), "did you mean 'max_seq_length'?", 3),
    ],
)
def test_a_bad_config_is_an_input_error_at_its_yaml_line(tmp_path: Path, text: str, message: str, line: int) -> None:
    with pytest.raises(InputError, match=message) as caught:
        load_train_config(_write(tmp_path / "ce.yaml", text))
    assert caught.value.line == line


def test_overrides_apply_to_a_cross_encoder_config(tmp_path: Path) -> None:
    path = _write(tmp_path / "ce.yaml", CONFIG)
    config = load_train_config(path, ["epochs=5", "lr=1.0e-4", "data.languages=[en]", "validation.batch_size=8"])
    assert isinstance(config, CrossEncoderTrainConfig)
    assert (config.epochs, config.lr, config.batch_size) == (5, 1e-4, 16)
    assert config.data.languages == ["en"] and config.validation is not None and config.validation.batch_size == 8
    assert resume_settings(config)["epochs"] == 5 and resume_settings(config)["data"]["languages"] == ["en"]
    with pytest.raises(InputError, match=r"override 'lr=-1': lr: Input should be greater than 0") as caught:
        load_train_config(path, ["lr=-1"])
    assert caught.value.line is None
    with pytest.raises(InputError, match=r"override 'model.kind=bi': model.kind: 'bi' is not a model kind"):
        load_train_config(path, ["model.kind=bi"])


def test_bi_encoder_configs_load_as_before(tmp_path: Path) -> None:
    """No `model.kind`, or `kind: bi_encoder`: the same TrainConfig and record as load_config gives."""
    for name in ("pawsx-infonce.yaml", "multitask.yaml"):
        path = REPO / "configs" / name
        config = load_train_config(path, ["seed=7"])
        assert config == load_config(path, ["seed=7"])
        assert config.model_dump(mode="json") == load_config(path, ["seed=7"]).model_dump(mode="json")
    text = (REPO / "configs" / "pawsx-infonce.yaml").read_text().replace("model:\n", "model:\n  kind: bi_encoder\n")
    explicit = load_train_config(_write(tmp_path / "bi.yaml", text))
    assert json.dumps(explicit.model_dump(mode="json")) == json.dumps(
        load_config(REPO / "configs" / "pawsx-infonce.yaml").model_dump(mode="json")
    )
    # switched by an override, a bi-encoder file is checked as a cross-encoder config: its keys are refused
    with pytest.raises(InputError, match=r"unknown key 'model\.freeze_word_embeddings'") as caught:
        load_train_config(REPO / "configs" / "pawsx-infonce.yaml", ["model.kind=cross_encoder"])
    assert caught.value.line == 6


def test_pairs_without_labels_are_refused_at_their_line_before_the_model_loads(tmp_path: Path) -> None:
    from paraxl.training.cross_encoder_run import train_cross_encoder_config

    pairs = _write(tmp_path / "pairs.tsv", "sentence1\tsentence2\nthe cat\tle chat\n")
    text = CONFIG.replace("pairs.tsv", str(pairs)).replace("some/model", str(tmp_path / "absent-model"))
    config = load_train_config(_write(tmp_path / "ce.yaml", text), [f"output_dir={tmp_path / 'run'}"])
    assert isinstance(config, CrossEncoderTrainConfig)
    with pytest.raises(InputError, match="no 0/1 label") as caught:
        train_cross_encoder_config(config)
    assert caught.value.line == 2 and str(pairs) in str(caught.value)


def test_overwrite_keeps_the_finished_run_when_the_new_config_fails(tmp_path: Path) -> None:
    """--overwrite removes the earlier run only once the data and the model are found: a typo in the
    config must not cost the finished model."""
    from paraxl.training.cross_encoder_run import remove_run, train_cross_encoder_config

    run = tmp_path / "run"
    for folder in ("final", "checkpoint-6", "notes"):
        (run / folder).mkdir(parents=True)
    for name in ("summary.json", "resume.json", "config.json", "final/model.safetensors", "notes/keep.txt"):
        (run / name).write_text("{}")
    text = CONFIG.replace("pairs.tsv", str(tmp_path / "absent.tsv")).replace("some/model", str(tmp_path))
    config = load_train_config(_write(tmp_path / "ce.yaml", text), [f"output_dir={run}"])
    assert isinstance(config, CrossEncoderTrainConfig)
    with pytest.raises(InputError, match=r"absent\.tsv"):
        train_cross_encoder_config(config, overwrite=True)
    assert (run / "summary.json").is_file() and (run / "final" / "model.safetensors").is_file()
    assert (run / "checkpoint-6").is_dir() and (run / "resume.json").is_file()
    remove_run(run)  # what --overwrite does once the config checks out: the trainer's files only
    assert sorted(path.name for path in run.iterdir()) == ["notes"]


def padded_ratio(batches: list[list[int]], lengths: list[int]) -> float:
    """Tokens a batch pads to (its longest pair's length per row) over the pairs' own tokens."""
    return sum(max(lengths[i] for i in batch) * len(batch) for batch in batches) / sum(lengths)


def test_length_grouped_batches_cover_every_pair_once_and_pad_little() -> None:
    """The sampler the trainer gets with `length_grouped: true`, against its default random batches."""
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from torch.utils.data import RandomSampler

    from paraxl.training.cross_encoder import LengthGroupedBatches

    rng = np.random.default_rng(0)
    lengths = [int(n) for n in rng.integers(5, 121, size=3200)]
    dataset = list(range(len(lengths)))  # only its length is read
    make = LengthGroupedBatches(tuple(lengths))

    def epochs(sampler: Any, first: int = 0) -> list[list[list[int]]]:
        """Two epochs of batches, announced as the trainer does (``set_epoch`` on the index sampler)."""
        served = []
        for epoch in (first, first + 1):
            sampler.sampler.set_epoch(epoch)
            served.append(list(sampler))
        return served

    grouped = epochs(make(dataset, 32, False, seed=7))
    resumed = epochs(make(dataset, 32, False, seed=7), first=1)  # a fresh sampler told epoch 1: a resume
    default = DefaultBatchSampler(
        RandomSampler(dataset, generator=torch.Generator().manual_seed(7)),  # type: ignore[arg-type]
        batch_size=32,
        drop_last=False,
    )
    shuffled = [list(default), list(default)]
    assert resumed[0] == grouped[1] and grouped[0] != grouped[1]  # (seed, epoch) decides an epoch's batches
    assert epochs(make(dataset, 32, False, seed=8))[0] != grouped[0]
    for epoch in grouped:
        assert sorted(i for batch in epoch for i in batch) == dataset and len(epoch) == 100
        assert padded_ratio(epoch, lengths) < 1.05  # measured 1.01-1.02
    assert all(padded_ratio(epoch, lengths) > 1.5 for epoch in shuffled)  # measured ~1.8 at 5-120 tokens
    with pytest.raises(ValueError, match="3200 pair lengths for a dataset of 3 rows"):
        make([0, 1, 2], 32, False)


def test_length_grouped_training_is_another_run_than_random_batches(tiny_model_dir: Path, tmp_path: Path) -> None:
    pairs = write_pairs(tmp_path / "pairs.tsv", groups=40)
    data = {"kind": "pairs", "paths": [str(pairs)]}
    weights = {}
    for grouped in (False, True):
        config = write_config(tmp_path / f"ce-{grouped}.yaml", tiny_model_dir, data, epochs=1, length_grouped=grouped)
        _train_in_process(config, f"output_dir={tmp_path / str(grouped)}")
        weights[grouped] = load_file(tmp_path / str(grouped) / "final" / "model.safetensors")
        recorded = json.loads((tmp_path / str(grouped) / "resume.json").read_text())["settings"]
        assert recorded.get("length_grouped", False) is grouped  # absent when off: older folders resume
    assert any(not torch.equal(weights[True][name], weights[False][name]) for name in weights[False])


def test_the_training_step_benchmark_runs_on_a_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    config = write_config(tmp_path / "ce.yaml", tiny_model_dir, {"kind": "pawsx", "languages": ["en", "de"]})
    script = load_benchmark_script("bench_cross_encoder_training")
    argv = ["--data-dir", str(data), "--config", str(config), "--batches", "3", "--rounds", "2",
            "--output-dir", str(tmp_path / "results"), "--name", "smoke", "--precisions", "fp32,bf16"]  # fmt: skip
    assert script.main(argv) == 0
    document = json.loads((tmp_path / "results" / "smoke.json").read_text())
    assert document["pairs"] == 96 and document["steps_per_epoch"] == 12  # 96 pairs in batches of 8
    rows = document["samplers"]
    assert list(rows) == ["random/fp32", "length_grouped/fp32", "random/bf16", "length_grouped/bf16"]
    assert document["timed_steps_per_sampler"] == 6
    assert all(len(row["seconds_per_step_runs"]) == 6 and row["seconds_per_step"] > 0 for row in rows.values())
    assert rows["random/fp32"]["speedup_over_random_fp32"] == 1.0
    grouped, random = rows["length_grouped/fp32"], rows["random/fp32"]
    assert 1.0 <= grouped["padded_over_real_tokens"] <= random["padded_over_real_tokens"]
    assert rows["length_grouped/bf16"]["padded_over_real_tokens"] == grouped["padded_over_real_tokens"]
    plans = script.epoch_plans([5, 9, 7, 3, 8, 2, 6], 2, seed=1)  # every pair once per epoch, either way
    assert all(sorted(i for batch in plan for i in batch) == list(range(7)) for plan in plans.values())
    assert script.spaced([[i] for i in range(10)], 3) == [[0], [3], [6]]
    table = (tmp_path / "results" / "smoke.md").read_text()
    assert document["machine"]["model"] in table and "| length_grouped | bf16 |" in table
    assert script.main([*argv[:-1], "fp16"]) == 2  # an unknown precision: one line, before any model loads
    bi_encoder = tmp_path / "bi.yaml"
    bi_encoder.write_text(f"model: {{name: {tiny_model_dir}}}\ndata: {{kind: pawsx}}\noutput_dir: x\n")
    assert script.main([*argv[:2], "--config", str(bi_encoder)]) == 2


def test_precision_auto_follows_the_cpu_and_a_resume_keeps_it(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`precision: auto` is bf16 autocast where the CPU computes bf16 natively (faked here), fp32
    elsewhere; the resolved precision is in resume.json, so a run continued where it resolves
    otherwise is refused instead of changing precision halfway."""
    import paraxl.training.precision as precision

    pairs = write_pairs(tmp_path / "pairs.tsv", groups=20)
    config = write_config(tmp_path / "ce.yaml", tiny_model_dir, {"kind": "pairs", "paths": [str(pairs)]}, epochs=1)
    weights, said = {}, {}
    for name, native in (("plain", False), ("native", True)):
        monkeypatch.setattr(precision, "native_bf16_cpu", lambda flags=None, native=native: native)
        said[name] = _train_in_process(config, f"output_dir={tmp_path / name}", "precision=auto")
        weights[name] = load_file(tmp_path / name / "final" / "model.safetensors")
    summaries = {name: json.loads((tmp_path / name / "summary.json").read_text()) for name in weights}
    assert "precision fp32" in said["plain"] and "precision bf16" in said["native"]
    assert summaries["plain"]["training"]["precision"] == "fp32" and "precision" not in summaries["plain"]["settings"]
    assert summaries["native"]["training"]["precision"] == summaries["native"]["settings"]["precision"] == "bf16"
    assert any(not torch.equal(weights["plain"][key], weights["native"][key]) for key in weights["plain"])

    (tmp_path / "native" / "summary.json").unlink()  # an unfinished run, continued on a CPU without bf16
    monkeypatch.setattr(precision, "native_bf16_cpu", lambda flags=None: False)
    result = runner.invoke(app, ["train", str(config), f"output_dir={tmp_path / 'native'}", "precision=auto"])
    assert result.exit_code != 0 and "precision" in result.stderr
