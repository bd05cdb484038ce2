"""Training speed settings: precision (auto / bf16 autocast), the phase clock, one graph vs GradCache.

Oracles: the GradCache step against one graph (dropout on, float32: the no-grad pass is only a
memory saving), the step with and without a phase clock, bf16 gradients against float32's, and
an uninterrupted bf16 run against one resumed from a checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from paraxl.data.records import TextUnit
from paraxl.losses.additive_margin import AdditiveMarginConfig
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.losses.phases import PhaseClock, no_clock
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.training.distributed import DistContext
from paraxl.training.layout import StepLayout, pair_layout
from paraxl.training.objective import step_loss
from paraxl.training.precision import autocast_for, cpu_flags, native_bf16_cpu, resolve_precision
from paraxl.training.step import accumulate_step_gradient
from paraxl.training.trainer import train

from .scripts import REPO
from .tiny import build_tiny_encoder
from .training_helpers import fake_pawsx, tiny_config, write_pairs

CPU = torch.device("cpu")


# ---------------------------------------------------------------- precision


def test_cpu_flags_parse_proc_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16\n\n")
    assert cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512f", "avx512_bf16"}
    assert cpu_flags(tmp_path / "absent") == set()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [({"avx2", "avx512f", "avx512_bf16"}, "bf16"), ({"amx_tile", "amx_bf16"}, "bf16"), ({"avx2", "avx512f"}, "fp32")],
)
def test_auto_precision_is_bf16_only_with_native_bf16(flags: set[str], expected: str) -> None:
    assert native_bf16_cpu(flags) == (expected == "bf16")
    assert resolve_precision("auto", CPU, flags) == expected
    assert resolve_precision("fp32", CPU, flags) == "fp32"  # explicit settings are kept as given
    assert resolve_precision("bf16", CPU, set()) == "bf16"


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        resolve_precision("fp16", CPU)


# ---------------------------------------------------------------- one step


def _layout() -> StepLayout:
    units = [
        TextUnit(i, (f"the cat {i} sat", f"on the mat {i}"), ("", ""), (f"the dog {i} ran on the mat",))
        for i in range(8)
    ]
    return pair_layout([units[:4], units[4:]], np.random.default_rng(0), 1)


def _gradients(
    model: BiEncoder, *, grad_cache: bool, precision: str = "fp32", clock: PhaseClock | None = None
) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and gradients of one mined AM step, dropout on, the RNG seeded the same each call."""
    layout = _layout()
    loss_config, mining = AdditiveMarginConfig(margin=0.2), HardNegativeConfig(enabled=True, top_k=1)
    model.zero_grad(set_to_none=True)
    torch.manual_seed(11)
    loss = accumulate_step_gradient(
        model,
        layout,
        partial(step_loss, layout=layout, loss=loss_config, mining=mining),
        context=DistContext(),
        grad_cache=grad_cache,
        chunk_size=3,
        autocast=autocast_for("bf16" if precision == "bf16" else "fp32", CPU),
        clock=clock if clock is not None else no_clock,
    )
    return loss, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _train_mode_tiny() -> BiEncoder:
    model = build_tiny_encoder(seed=5)
    model.freeze_word_embeddings()
    return model.train()  # dropout on: the two paths must draw the same masks


def test_one_graph_equals_grad_cache_with_dropout() -> None:
    """The no-grad mega-batch pass only bounds memory: one graph gives the same loss and gradients."""
    model = _train_mode_tiny()
    cached_loss, cached = _gradients(model, grad_cache=True)
    plain_loss, plain = _gradients(model, grad_cache=False)
    assert plain_loss == pytest.approx(cached_loss, abs=1e-5)
    assert plain.keys() == cached.keys() and len(plain) > 10
    for name in plain:
        torch.testing.assert_close(plain[name], cached[name], rtol=1e-5, atol=1e-5)
    no_dropout_loss, _ = _gradients(model.eval(), grad_cache=True)
    assert abs(no_dropout_loss - cached_loss) > 1e-4  # dropout was live, so the masks had to match


@pytest.mark.parametrize("grad_cache", [True, False])
def test_phase_clock_times_without_changing_the_step(grad_cache: bool) -> None:
    model = _train_mode_tiny()
    loss, grads = _gradients(model, grad_cache=grad_cache)
    clock = PhaseClock()
    timed_loss, timed = _gradients(model, grad_cache=grad_cache, clock=clock)
    assert timed_loss == loss
    assert all(torch.equal(timed[name], grads[name]) for name in grads)
    expected = {"tokenize", "forward", "loss", "backward"} | ({"no_grad_pass"} if grad_cache else set())
    assert set(clock.seconds) == expected
    assert all(seconds >= 0 for seconds in clock.seconds.values())


@pytest.mark.parametrize("grad_cache", [True, False])
def test_bf16_step_takes_its_loss_in_float32_near_fp32(grad_cache: bool) -> None:
    """Under bf16 autocast the loss sees float32 embeddings; loss and gradient stay near fp32's."""
    model = _train_mode_tiny()
    seen: list[torch.dtype] = []
    layout = _layout()
    reps_loss = partial(step_loss, layout=layout, loss=AdditiveMarginConfig(), mining=HardNegativeConfig())

    def spy(reps: torch.Tensor) -> torch.Tensor:
        seen.append(reps.dtype)
        return reps_loss(reps)

    autocast = autocast_for("bf16", CPU)
    accumulate_step_gradient(
        model, layout, spy, context=DistContext(), grad_cache=grad_cache, chunk_size=3, autocast=autocast
    )
    assert seen and set(seen) == {torch.float32}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32
    loss32, grads32 = _gradients(model, grad_cache=grad_cache)
    loss16, grads16 = _gradients(model, grad_cache=grad_cache, precision="bf16")
    assert loss16 == pytest.approx(loss32, rel=0.05)
    flat32 = torch.cat([grads32[name].flatten() for name in grads32])
    flat16 = torch.cat([grads16[name].flatten() for name in grads32])
    assert torch.nn.functional.cosine_similarity(flat32, flat16, dim=0) > 0.97


# ---------------------------------------------------------------- whole runs


def test_summary_records_the_resolved_precision(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = {"kind": "pairs", "paths": [str(write_pairs(tmp_path / "pairs.tsv"))]}
    config = tiny_config(tiny_model_dir, tmp_path / "run", data, precision="auto", max_steps=1)
    summary = train(config, show_progress=False)
    expected = resolve_precision("auto", CPU)
    assert summary.precision == expected
    written = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert written["precision"] == expected
    assert written["threads"]["intra_op_threads"] == torch.get_num_threads() <= written["threads"]["physical_cores"]


def test_bf16_resume_gives_the_same_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A bf16 run resumed from its step-3 checkpoint ends bit-identical to the uninterrupted run."""
    data = {"kind": "pairs", "paths": [str(write_pairs(tmp_path / "pairs.tsv", groups=40))]}
    fields = {"precision": "bf16", "max_steps": 6, "checkpoint_every": 3, "mini_batches_per_step": 2}
    fields |= {"mining": {"enabled": True, "top_k": 1}}
    train(tiny_config(tiny_model_dir, tmp_path / "reference", data, **fields), show_progress=False)
    run = tmp_path / "resumed"
    train(tiny_config(tiny_model_dir, run, data, **fields), show_progress=False)
    # as if killed after the step-3 checkpoint: later outputs gone, metrics of steps 4-6 left to be redone
    for later in (run / "final", run / "checkpoints" / "step-0000006"):
        shutil.rmtree(later)
    (run / "summary.json").unlink()
    summary = train(tiny_config(tiny_model_dir, run, data, **fields), show_progress=False)
    assert summary.resumed_from_step == 3
    expected = load_file(tmp_path / "reference" / "final" / "model.safetensors")
    actual = load_file(run / "final" / "model.safetensors")
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name


# ---------------------------------------------------------------- the benchmark script


def load_bench() -> ModuleType:
    """benchmarks/bench_training.py as a module, registered in sys.modules (its dataclasses need that)."""
    spec = importlib.util.spec_from_file_location("bench_training_script", REPO / "benchmarks" / "bench_training.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_variants_and_flop_count() -> None:
    bench = load_bench()
    variant = bench.Variant.parse("bf16+nocache+chunk16+k8+threads1")
    assert (variant.precision, variant.grad_cache, variant.chunk, variant.mega, variant.threads) == (
        "bf16",
        False,
        16,
        8,
        1,
    )
    with pytest.raises(SystemExit, match="unknown variant token"):
        bench.Variant.parse("fp32+fast")
    model = build_tiny_encoder(seed=0)
    mask_a = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    mask_b = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]])
    chunks = [{"input_ids": torch.ones_like(m), "attention_mask": m} for m in (mask_a, mask_b)]
    encoder = model.backbone.get_submodule("encoder")
    params = sum(p.numel() for p in encoder.parameters())  # the layers: no embeddings, no pooler
    forward = 2 * params * (10 + 12) + 4 * 32 * 2 * (2 * 5**2 + 3 * 4**2)  # matmuls + attention (hidden 32, 2 layers)
    assert bench.step_flops(model, chunks, True) == (4 * forward, 8 + 7, 22)  # no-grad pass + forward + backward
    assert bench.step_flops(model, chunks, False)[0] == 3 * forward


def test_bench_refuses_a_multi_task_config(monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench()
    monkeypatch.setattr("sys.argv", ["bench", "--config", str(REPO / "configs" / "multitask.yaml"), "--set"])
    with pytest.raises(SystemExit, match=r"multitask\.yaml: has `tasks:`; this benchmark profiles a one-task"):
        bench.main()


def test_bench_runs_on_the_tiny_model(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = load_bench()
    data = fake_pawsx(tmp_path / "data")
    out = tmp_path / "profile.json"
    overrides = [*bench.RECIPE, f"model.name={tiny_model_dir}", "model.max_seq_length=32", "batch_size=2"]
    argv = ["bench", "--data-dir", str(data), "--variants", "fp32,bf16+nocache", "--steps", "2", "--warmup", "1"]
    argv += ["--peak-seconds", "0.03", "--out", str(out), "--set", *overrides]
    monkeypatch.setattr("sys.argv", argv)
    bench.main()
    result = json.loads(out.read_text())
    fp32, bf16 = result["variants"]
    assert fp32["timed_steps"] == bf16["timed_steps"] == 2 and fp32["precision"] == "fp32"
    assert len(fp32["losses"]) == 3 and fp32["losses"][0] == pytest.approx(bf16["losses"][0], rel=0.05)  # same step
    assert fp32["phase_share"]["no_grad_pass"] > 0 and bf16["phase_share"]["no_grad_pass"] == 0
    assert 0 <= fp32["padding_share"] <= fp32["padding_share_unsorted"] < 1
    assert fp32["achieved_gflops"] > 0 and result["gemm_peak_gflops"][str(torch.get_num_threads())]["bf16"]["peak"] > 0
    assert "| fp32 |" in out.with_suffix(".md").read_text()
