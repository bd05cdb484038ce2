"""The trainer on the tiny model: outputs, exact gradients (cached, 2 processes), resume after SIGKILL."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from paraxl.data.records import TextUnit
from paraxl.errors import InputError
from paraxl.losses.additive_margin import AdditiveMarginConfig, InfoNCEConfig
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.losses.multi_positive import MultiPositiveConfig
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.training.distributed import DistContext
from paraxl.training.layout import StepLayout, group_layout, pair_layout
from paraxl.training.objective import step_loss
from paraxl.training.step import accumulate_step_gradient
from paraxl.training.trainer import train

from .tiny import build_tiny_encoder
from .training_helpers import tiny_config, write_pairs, write_parallel

REPO = Path(__file__).resolve().parents[1]


def pair_groups(count: int = 8) -> list[TextUnit]:
    return [
        TextUnit(i, (f"the cat {i} sat", f"on the mat {i}", f"cat {i} mat"), ("", "", ""), (f"the dog {i} ran",))
        for i in range(count)
    ]


def layout_for(kind: str) -> StepLayout:
    groups = pair_groups()
    mini_batches = [groups[:4], groups[4:]]
    rng = np.random.default_rng(0)
    return group_layout(mini_batches, rng, 3) if kind == "multi_positive" else pair_layout(mini_batches, rng, 1)


LOSSES = {
    "am_mined": (AdditiveMarginConfig(margin=0.2), HardNegativeConfig(enabled=True, top_k=2)),
    "info_nce": (InfoNCEConfig(), HardNegativeConfig()),
    "multi_positive": (MultiPositiveConfig(members_per_group=3), HardNegativeConfig()),
}


def step_gradients(
    model: BiEncoder, kind: str, context: DistContext, grad_cache: bool, chunk: int = 3
) -> tuple[float, dict[str, torch.Tensor]]:
    layout = layout_for("multi_positive" if kind == "multi_positive" else "pairs")
    loss_config, mining = LOSSES[kind]
    model.zero_grad(set_to_none=True)

    def loss_fn(reps: torch.Tensor) -> torch.Tensor:
        return step_loss(reps, layout, loss_config, mining)

    loss = accumulate_step_gradient(model, layout, loss_fn, context=context, grad_cache=grad_cache, chunk_size=chunk)
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return loss, grads


def float64_tiny() -> BiEncoder:
    model = build_tiny_encoder(seed=3)
    model.backbone.double()
    model.freeze_word_embeddings()
    return model.eval()  # no dropout: one process and two must see the same network


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_cached_step_equals_plain_step(kind: str) -> None:
    model = float64_tiny()
    plain_loss, plain = step_gradients(model, kind, DistContext(), grad_cache=False)
    cached_loss, cached = step_gradients(model, kind, DistContext(), grad_cache=True)
    assert cached_loss == pytest.approx(plain_loss, rel=1e-12)
    assert plain.keys() == cached.keys() and len(plain) > 10
    assert "backbone.embeddings.word_embeddings.weight" not in plain  # frozen
    for name in plain:
        torch.testing.assert_close(cached[name], plain[name], rtol=1e-9, atol=1e-12)


def _gradient_worker(rank: int, world: int, init_file: str, out_dir: str, kind: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = float64_tiny()
        context = DistContext(rank=rank, world_size=world)
        loss, grads = step_gradients(model, kind, context, grad_cache=(kind != "info_nce"))
        torch.save({"loss": loss, "grads": grads}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("kind", sorted(LOSSES))
def test_two_processes_equal_one(kind: str, tmp_path: Path) -> None:
    """Negatives gathered across 2 gloo processes: same loss and gradients as 1 process."""
    mp.spawn(_gradient_worker, args=(2, str(tmp_path / "init"), str(tmp_path), kind), nprocs=2, join=True)
    single_loss, single = step_gradients(float64_tiny(), kind, DistContext(), grad_cache=False)
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert result["loss"] == pytest.approx(single_loss, rel=1e-12)
        assert result["grads"].keys() == single.keys()
        for name, grad in single.items():
            torch.testing.assert_close(result["grads"][name], grad, rtol=1e-9, atol=1e-12)


def test_mined_negatives_change_the_gradient() -> None:
    """A check that the mining path is live: with mining the gradient differs from without."""
    model = float64_tiny()
    _, mined = step_gradients(model, "am_mined", DistContext(), grad_cache=True)
    LOSSES["am_plain"] = (AdditiveMarginConfig(margin=0.2), HardNegativeConfig())
    try:
        _, plain = step_gradients(model, "am_plain", DistContext(), grad_cache=True)
    finally:
        del LOSSES["am_plain"]
    assert any(not torch.allclose(mined[name], plain[name]) for name in mined)


# ---------------------------------------------------------------- whole runs


def test_train_writes_a_sentence_transformers_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    data = {"kind": "pairs", "paths": [str(write_pairs(tmp_path / "pairs.tsv"))]}
    config = tiny_config(
        tiny_model_dir, tmp_path / "run", data, mining={"enabled": True}, mini_batches_per_step=2, max_steps=3
    )
    summary = train(config, show_progress=False)
    assert summary.steps == 3 and summary.examples == 3 * 2 * 4
    pairs = tmp_path / "pairs.tsv"  # no data dir: the absolute path, and the file's own hash
    digest = hashlib.sha256(pairs.read_bytes()).hexdigest()
    assert summary.data_files == [{"path": str(pairs.resolve()), "sha256": digest, "bytes": pairs.stat().st_size}]
    final = tmp_path / "run" / "final"
    texts = ["the cat sat", "le chat"]
    ours = BiEncoder.load(final).encode(texts)
    theirs = SentenceTransformer(str(final), device="cpu").encode(texts, prompt_name="query")
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(final / "model.safetensors")
    assert torch.equal(before["embeddings.word_embeddings.weight"], after["embeddings.word_embeddings.weight"])
    assert not torch.equal(
        before["encoder.layer.0.attention.self.query.weight"], after["encoder.layer.0.attention.self.query.weight"]
    )
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(np.isfinite(r["loss"]) and r["examples_per_s"] > 0 for r in records)
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["step-0000002", "step-0000003"]


def test_unfrozen_word_embeddings_are_trained(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`model.freeze_word_embeddings: false` (the ablation) really trains the word embeddings."""
    data = {"kind": "pairs", "paths": [str(write_pairs(tmp_path / "pairs.tsv"))]}
    config = tiny_config(tiny_model_dir, tmp_path / "run", data, model={"freeze_word_embeddings": False}, max_steps=2)
    train(config, show_progress=False)
    before = load_file(tiny_model_dir / "model.safetensors")["embeddings.word_embeddings.weight"]
    after = load_file(tmp_path / "run" / "final" / "model.safetensors")["embeddings.word_embeddings.weight"]
    assert not torch.equal(before, after)  # (AdamW's decay and moments move every row, not just those seen)


def test_multi_positive_run_on_parallel_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    paths = [str(p) for p in write_parallel(tmp_path)]
    data = {"kind": "parallel", "paths": paths, "languages": ["a", "b", "c"]}
    config = tiny_config(
        tiny_model_dir, tmp_path / "run", data, loss={"kind": "multi_positive", "members_per_group": 2}
    )
    summary = train(config, show_progress=False)
    assert summary.steps == 3
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()


def test_bf16_autocast_step_runs(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = {"kind": "pairs", "paths": [str(write_pairs(tmp_path / "pairs.tsv"))]}
    config = tiny_config(tiny_model_dir, tmp_path / "run", data, precision="bf16", max_steps=2)
    train(config, show_progress=False)
    loss = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(loss) == 2 and all(np.isfinite(loss))


def test_finished_run_and_changed_config_are_protected(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = {"kind": "pairs", "paths": [str(write_pairs(tmp_path / "pairs.tsv"))]}
    config = tiny_config(tiny_model_dir, tmp_path / "run", data, max_steps=2)
    train(config, show_progress=False)
    with pytest.raises(InputError, match="holds a finished run"):
        train(config, show_progress=False)
    (tmp_path / "run" / "summary.json").unlink()  # as if it had been killed after its last checkpoint
    changed = tiny_config(tiny_model_dir, tmp_path / "run", data, max_steps=2, seed=7)
    with pytest.raises(InputError, match="seed"):
        train(changed, show_progress=False)
    train(changed, overwrite=True, show_progress=False)


# ---------------------------------------------------------------- resume after SIGKILL


def _cli(config: Path) -> list[str]:
    return [sys.executable, "-m", "paraxl.cli.main", "train", str(config)]


def _write_run_config(tmp_path: Path, model_dir: Path, name: str, steps: int, multi: bool = False) -> Path:
    """The paper-1 recipe on pair data; ``multi``: as one task of two, beside multi-positive on parallel files."""
    pairs = write_pairs(tmp_path / "pairs.tsv", groups=40)
    task: dict[str, Any] = {
        "data": {"kind": "pairs", "paths": [str(pairs)]},
        "loss": {"kind": "additive_margin", "margin": 0.2},
        "mining": {"enabled": True, "top_k": 1},
        "mini_batches_per_step": 2,
        "batch_size": 4,
    }
    if multi:
        parallel = [str(p) for p in write_parallel(tmp_path)]
        mpcl = {"kind": "multi_positive", "members_per_group": 2}
        second = {"name": "mpcl", "data": {"kind": "parallel", "paths": parallel}, "loss": mpcl, "batch_size": 4}
        shape: dict[str, Any] = {"tasks": [{"name": "pairs"} | task, second]}
    else:
        shape = task
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        json.dumps(
            {"model": {"name": str(model_dir), "max_seq_length": 32}}
            | shape
            | {
                "output_dir": str(tmp_path / name),
                "max_steps": steps,
                "checkpoint_every": 3,
                "log_every": 1,
                "optim": {"lr": 1e-3, "warmup_ratio": 0.2},
            }
        )
    )
    return path


@pytest.mark.parametrize(("shape", "steps"), [("one-task", 60), ("multi-task", 40)])
def test_resume_after_sigkill_gives_the_same_weights(
    tiny_model_dir: Path, tmp_path: Path, shape: str, steps: int
) -> None:
    """Kill a CLI run at a random step, run the same command again: same final weights as uninterrupted
    (for one task, and for two tasks drawn per step, each with its own sampler position)."""
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    multi = shape == "multi-task"
    reference = _write_run_config(tmp_path, tiny_model_dir, "reference", steps, multi)
    subprocess.run(_cli(reference), env=env, check=True, capture_output=True, timeout=300)

    killed = _write_run_config(tmp_path, tiny_model_dir, "killed", steps, multi)
    kill_after = random.Random(os.environ.get("PYTEST_SEED", "0")).randrange(4, steps // 2)
    process = subprocess.Popen(_cli(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = tmp_path / "killed" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        lines = metrics.read_text().splitlines() if metrics.exists() else []
        if len(lines) >= kill_after:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "final").exists()

    resumed = subprocess.run(_cli(killed), env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    expected = load_file(tmp_path / "reference" / "final" / "model.safetensors")
    actual = load_file(tmp_path / "killed" / "final" / "model.safetensors")
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert logged == list(range(1, steps + 1))  # redone steps are not logged twice
    if multi:  # the same task at every step, both tasks trained
        tasks = [
            [json.loads(line)["task"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
            for run in ("reference", "killed")
        ]
        assert tasks[0] == tasks[1] and set(tasks[0]) == {"pairs", "mpcl"}
    shutil.rmtree(tmp_path / "reference")


def test_torchrun_two_processes_train_like_one(tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 paraxl train` ends with the weights of a 1-process run (no dropout)."""
    model = build_tiny_encoder(seed=5)
    model.backbone.config.hidden_dropout_prob = 0.0
    model.backbone.config.attention_probs_dropout_prob = 0.0
    model.save(tmp_path / "no-dropout")
    env = os.environ | {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    finals = []
    for name, launcher in {
        "one": [sys.executable, "-m", "paraxl.cli.main"],
        "two": [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "paraxl.cli.main",
        ],
    }.items():
        config = _write_run_config(tmp_path, tmp_path / "no-dropout", name, steps=4)
        done = subprocess.run([*launcher, "train", str(config)], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        finals.append(load_file(tmp_path / name / "final" / "model.safetensors"))
    assert finals[0].keys() == finals[1].keys()
    for name, tensor in finals[0].items():
        torch.testing.assert_close(finals[1][name], tensor, rtol=1e-4, atol=1e-5, msg=name)


def test_pair_validation_uses_one_pooled_threshold(tiny_encoder: BiEncoder, tmp_path: Path) -> None:
    from paraxl.data.readers import read_labeled_pairs
    from paraxl.decision.threshold import accuracy_at, best_threshold
    from paraxl.retrieval import paired_cosine
    from paraxl.training.validation import PairValidation

    pairs = read_labeled_pairs(write_pairs(tmp_path / "v.tsv"), language="en")
    by_language = {"en": pairs[:20], "de": pairs[20:]}
    result = PairValidation(by_language).evaluate(tiny_encoder)
    scores, labels = {}, {}
    for lang, group in by_language.items():
        first = tiny_encoder.encode([p.first for p in group])
        second = tiny_encoder.encode([p.second for p in group])
        scores[lang], labels[lang] = paired_cosine(first, second), np.array([p.label for p in group])
    threshold, accuracy = best_threshold(np.concatenate(list(scores.values())), np.concatenate(list(labels.values())))
    assert result["accuracy"] == pytest.approx(accuracy)
    assert result["threshold"] == pytest.approx(threshold, abs=1e-6)
    for lang in by_language:
        assert result[f"accuracy_{lang}"] == pytest.approx(accuracy_at(scores[lang], labels[lang], threshold))


def test_validation_on_real_pawsx_selects_best(tiny_model_dir: Path, tmp_path: Path, data_dir: Path) -> None:
    data = {"kind": "pairs", "paths": [str(write_pairs(tmp_path / "pairs.tsv"))]}
    validation = {"split": "validation", "languages": ["en", "de"], "every_steps": 1}
    config = tiny_config(tiny_model_dir, tmp_path / "run", data, validation=validation, max_steps=2)
    summary = train(config, data_dir=data_dir, show_progress=False)
    assert summary.first_validation is not None and summary.last_validation is not None
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    checked = [r["step"] for r in records if "validation" in r]
    assert checked == [0, 1, 2]
    best = json.loads((tmp_path / "run" / "best" / "paraxl_validation.json").read_text())
    assert best["step"] == summary.best_step and best["accuracy"] == summary.best_metric
    assert summary.best_metric == max(r["validation"]["accuracy"] for r in records if "validation" in r)
