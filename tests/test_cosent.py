"""The graded-similarity objective: CoSENT / AnglE loss, scored-pair layout, config rules, a tiny run."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from paraxl.data.records import ScoredPair, TextUnit
from paraxl.errors import InputError
from paraxl.losses.cosent import CosentConfig, pair_similarity, scored_pair_loss
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.losses.registry import contrastive_loss, pair_kinds, scored_kinds, step_needs
from paraxl.losses.step import ScoredPairSteps
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.training.config import load_config
from paraxl.training.distributed import DistContext
from paraxl.training.layout import pair_layout, scored_pair_layout, step_layout
from paraxl.training.objective import step_loss
from paraxl.training.step import accumulate_step_gradient
from paraxl.training.trainer import train

from .test_sts_pairs import write_sts
from .tiny import build_tiny_encoder
from .training_helpers import tiny_config

REPO = Path(__file__).resolve().parents[1]


def random_batch(n: int, dim: int, seed: int, levels: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(n, dim) float64 embeddings of each pair's two sentences and (n,) gold scores with ties."""
    generator = torch.Generator().manual_seed(seed)
    first = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    second = torch.randn(n, dim, generator=generator, dtype=torch.float64)
    scores = torch.randint(0, levels, (n,), generator=generator).double() / (levels - 1)
    return first, second, scores


def naive_cosent(first: torch.Tensor, second: torch.Tensor, scores: torch.Tensor, scale: float) -> torch.Tensor:
    """Su's formula by a double loop: log(1 + sum over gold_i > gold_j of exp(scale (cos_j - cos_i)))."""
    cosines = [torch.dot(a, b) / (a.norm() * b.norm()) for a, b in zip(first, second, strict=True)]
    total = torch.ones((), dtype=first.dtype)
    for i in range(len(cosines)):
        for j in range(len(cosines)):
            if scores[i] > scores[j]:
                total = total + torch.exp(scale * (cosines[j] - cosines[i]))
    return torch.log(total)


# ---------------------------------------------------------------- the loss


@pytest.mark.parametrize(("similarity", "dim"), [("cosine", 8), ("angle", 8), ("angle", 7)])
def test_loss_and_gradients_equal_sentence_transformers(similarity: str, dim: int) -> None:
    """Oracle: sentence-transformers' CoSENTLoss / AnglELoss on the same embeddings (odd dim: padded)."""
    from sentence_transformers.sentence_transformer.losses import AnglELoss, CoSENTLoss

    reference = (CoSENTLoss if similarity == "cosine" else AnglELoss)(model=None, scale=13.0)  # type: ignore[arg-type]
    first, second, scores = random_batch(12, dim, seed=1)
    ours_in = [first.clone().requires_grad_(), second.clone().requires_grad_()]
    theirs_in = [first.clone().requires_grad_(), second.clone().requires_grad_()]
    ours = scored_pair_loss(*ours_in, scores, scale=13.0, similarity=similarity)  # type: ignore[arg-type]
    theirs = reference.compute_loss_from_embeddings(theirs_in, scores)
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    ours.backward()
    theirs.backward()
    for mine, reference_input in zip(ours_in, theirs_in, strict=True):
        assert mine.grad is not None and reference_input.grad is not None
        torch.testing.assert_close(mine.grad, reference_input.grad, rtol=1e-10, atol=1e-12)


def test_loss_equals_the_naive_double_loop() -> None:
    first, second, scores = random_batch(9, 5, seed=2, levels=4)
    torch.testing.assert_close(
        scored_pair_loss(first, second, scores, scale=20.0), naive_cosent(first, second, scores, 20.0)
    )


def test_angle_similarity_is_a_complex_division() -> None:
    """Oracle for |cos + sin|: the real + imaginary part of conj(y) x / (|x| |y|) on complex halves."""
    first, second, _ = random_batch(5, 6, seed=3)
    x = torch.complex(first[:, :3], first[:, 3:])
    y = torch.complex(second[:, :3], second[:, 3:])
    quotient = (x * y.conj()).sum(dim=1) / (first.norm(dim=1) * second.norm(dim=1))
    torch.testing.assert_close(pair_similarity(first, second, "angle"), (quotient.real + quotient.imag).abs())


def test_loss_reads_only_the_order_of_scores_and_is_zero_on_ties() -> None:
    first, second, scores = random_batch(8, 4, seed=4)
    squashed = scores**3 * 0.5  # same order, other values
    torch.testing.assert_close(scored_pair_loss(first, second, scores), scored_pair_loss(first, second, squashed))
    leaf = first.clone().requires_grad_()
    tied = scored_pair_loss(leaf, second, torch.full((8,), 0.4, dtype=torch.float64))
    assert float(tied.detach()) == 0.0 and tied.requires_grad  # no ordered pair: 0, still in the graph
    tied.backward()  # GradCache's replay needs a loss it can differentiate


# ---------------------------------------------------------------- layout and registry


def scored_units(count: int = 8) -> list[TextUnit]:
    return [
        ScoredPair(i, (f"the cat {i} sat", f"dog {i} ran on"), ("en", "en"), score=(i % 4) / 3) for i in range(count)
    ]


def test_scored_layout_puts_each_pair_and_its_score_in_place() -> None:
    units = scored_units()
    layout = step_layout(ScoredPairSteps(), [units[:4], units[4:]], np.random.default_rng(0))
    assert layout.texts[:8] == [u.texts[0] for u in units[:4]] + [u.texts[1] for u in units[:4]]
    assert layout.mini_batch_texts == [slice(0, 8), slice(8, 16)]
    assert layout.anchors.tolist() == [0, 1, 2, 3, 8, 9, 10, 11]
    assert layout.positives.tolist() == [4, 5, 6, 7, 12, 13, 14, 15]
    assert layout.pair_groups.tolist() == list(range(8))
    torch.testing.assert_close(layout.pair_scores, torch.tensor([(i % 4) / 3 for i in range(8)]))
    assert layout.negatives.shape == (8, 0) and layout.pairs_per_mini_batch == 4


def test_unscored_layouts_carry_no_scores_and_scored_needs_scored_units() -> None:
    plain = [TextUnit(i, (f"a {i}", f"b {i}"), ("", "")) for i in range(4)]
    assert pair_layout([plain], np.random.default_rng(0), 0).pair_scores.shape == (0,)
    with pytest.raises(ValueError, match="needs ScoredPair units"):
        scored_pair_layout([plain])
    with pytest.raises(ValueError, match="needs a gold score per pair"):
        contrastive_loss(
            torch.randn(8, 4), pair_layout([plain], np.random.default_rng(0), 0), CosentConfig(), HardNegativeConfig()
        )
    with pytest.raises(ValueError, match=r"score must lie in \[0, 1\]"):
        ScoredPair(0, ("a", "b"), ("", ""), score=1.5)


def test_registry_knows_cosent_as_scored_not_as_a_pair_loss() -> None:
    assert step_needs(CosentConfig()) == ScoredPairSteps()
    assert "cosent" not in pair_kinds() and scored_kinds() == ["cosent"]


def test_step_loss_is_the_mean_of_each_mini_batch_loss() -> None:
    units = scored_units()
    layout = scored_pair_layout([units[:4], units[4:]])
    reps = torch.randn(16, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    config = CosentConfig(scale=7.0, similarity="angle")
    expected = [
        scored_pair_loss(reps[0:4], reps[4:8], layout.pair_scores[:4], scale=7.0, similarity="angle"),
        scored_pair_loss(reps[8:12], reps[12:16], layout.pair_scores[4:], scale=7.0, similarity="angle"),
    ]
    assert float(expected[0]) > 0 and float(expected[1]) > 0
    torch.testing.assert_close(
        contrastive_loss(reps, layout, config, HardNegativeConfig()), torch.stack(expected).mean()
    )


# ---------------------------------------------------------------- exact gradients: cached, two processes


def float64_tiny() -> BiEncoder:
    model = build_tiny_encoder(seed=3)
    model.backbone.double()
    model.freeze_word_embeddings()
    return model.eval()  # no dropout: every variant must see the same network


def cosent_gradients(model: BiEncoder, context: DistContext, grad_cache: bool) -> tuple[float, dict[str, torch.Tensor]]:
    units = scored_units()
    layout = scored_pair_layout([units[:4], units[4:]])
    model.zero_grad(set_to_none=True)

    def loss_fn(reps: torch.Tensor) -> torch.Tensor:
        return step_loss(reps, layout, CosentConfig(), HardNegativeConfig())

    loss = accumulate_step_gradient(model, layout, loss_fn, context=context, grad_cache=grad_cache, chunk_size=3)
    return loss, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def test_cached_step_equals_plain_step() -> None:
    model = float64_tiny()
    plain_loss, plain = cosent_gradients(model, DistContext(), grad_cache=False)
    cached_loss, cached = cosent_gradients(model, DistContext(), grad_cache=True)
    assert cached_loss == pytest.approx(plain_loss, rel=1e-12) and plain_loss > 0
    assert plain.keys() == cached.keys() and len(plain) > 10
    for name in plain:
        torch.testing.assert_close(cached[name], plain[name], rtol=1e-9, atol=1e-12)


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        loss, grads = cosent_gradients(float64_tiny(), DistContext(rank=rank, world_size=world), grad_cache=True)
        torch.save({"loss": loss, "grads": grads}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one(tmp_path: Path) -> None:
    """Each process embeds half the texts; gathered, the loss and gradients are one process's."""
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    single_loss, single = cosent_gradients(float64_tiny(), DistContext(), grad_cache=False)
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert result["loss"] == pytest.approx(single_loss, rel=1e-12)
        for name, grad in single.items():
            torch.testing.assert_close(result["grads"][name], grad, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- config rules


def config_error(tmp_path: Path, text: str) -> InputError:
    path = tmp_path / "config.yaml"
    path.write_text("output_dir: runs/x\nmax_steps: 5\n" + text)
    with pytest.raises(InputError) as caught:
        load_config(path)
    return caught.value


def test_sts_with_cosent_is_a_valid_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("output_dir: runs/x\nmax_steps: 5\ndata: {kind: sts, languages: [en, ko]}\nloss: {kind: cosent}\n")
    config = load_config(path)
    assert config.data is not None and config.data.kind == "sts" and config.data.split == "train"
    assert config.loss.kind == "cosent" and config.loss.scale == 20.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: {kind: sts}\n", "data kind sts holds scored pairs .*cosent.*, not loss kind additive_margin"),
        ("data: {kind: sts}\nloss: {kind: multi_positive}\n", "not loss kind multi_positive"),
        (
            "data: {kind: pawsx}\nloss: {kind: cosent}\n",
            "loss kind cosent needs scored pairs \\(data kind sts\\), not data kind pawsx",
        ),
        ("data: {kind: sts, split: test}\nloss: {kind: cosent}\n", "test splits .* are what the evaluation scores"),
        ("data: {kind: sts, languages: [en, xx]}\nloss: {kind: cosent}\n", "unknown STS language\\(s\\) \\['xx'\\]"),
        ("data: {kind: sts, languages: [en, en]}\nloss: {kind: cosent}\n", "STS languages repeat"),
        ("data: {kind: sts, translation_positives: 0.5}\nloss: {kind: cosent}\n", "translation_positives is 0"),
        ("data: {kind: sts, swap_negatives: true}\nloss: {kind: cosent}\n", "swap_negatives is false"),
        (
            "data: {kind: sts}\nloss: {kind: cosent}\nmining: {enabled: true}\nmini_batches_per_step: 2\n",
            "mining works with the pair losses \\(additive_margin, info_nce\\), not cosent",
        ),
        ("data: {kind: sts}\nloss: {kind: cosent}\ndistill: {scores: t.tsv}\n", "distill .* needs a pair loss"),
        ("data: {kind: sts}\nloss: {kind: cosent, explicit_negatives: 1}\n", "does not apply to loss kind cosent"),
    ],
)
def test_mismatched_configs_are_refused(tmp_path: Path, text: str, message: str) -> None:
    error = config_error(tmp_path, text)
    assert error.path == str(tmp_path / "config.yaml")
    assert re.search(message, error.reason), error.reason


def test_shipped_sts_config_validates() -> None:
    config = load_config(REPO / "configs" / "sts-cosent.yaml")
    assert config.data is not None and config.data.kind == "sts" and config.loss.kind == "cosent"
    assert config.model.name == "bundled:multilingual-e5-small" and config.max_steps is not None


# ---------------------------------------------------------------- a tiny run


def graded_rows(count: int) -> list[tuple[str, str, str]]:
    """Pairs whose gold score is how much of sentence1 sentence2 keeps (5: all, 0: nothing)."""
    rows = []
    for i in range(count):
        kept = i % 6
        words = ["the", "cat", str(i), "sat", "on", "mat"]
        other = ["dog", "ran", "der", "hund", "le", "chat"]
        rows.append((" ".join(words), " ".join(words[:kept] + other[kept:]), f"{kept}.0"))
    return rows


def corpus_loss(model: BiEncoder, rows: list[tuple[str, str, str]]) -> float:
    with torch.no_grad():
        first = torch.as_tensor(model.encode([r[0] for r in rows]))
        second = torch.as_tensor(model.encode([r[1] for r in rows]))
    return float(scored_pair_loss(first, second, torch.tensor([float(r[2]) for r in rows])))


def test_a_tiny_run_trains_cosent_on_sts_files(tiny_model_dir: Path, tmp_path: Path) -> None:
    rows = graded_rows(24)
    root = write_sts(tmp_path / "data", {"en": rows, "ko": rows})
    data = {"kind": "sts", "languages": ["en", "ko"]}
    config = tiny_config(tiny_model_dir, tmp_path / "run", data, loss={"kind": "cosent"}, batch_size=8, max_steps=12)
    config = config.model_copy(update={"checkpoint_every": 100})
    summary = train(config, data_dir=root, show_progress=False)
    assert summary.steps == 12 and summary.examples == 12 * 8
    recorded = sorted(record["path"] for record in summary.data_files)
    assert recorded == ["korsts/sts-train.tsv", "stsb_multi_mt/stsb-en-train.csv"]
    assert all(len(record["sha256"]) == 64 for record in summary.data_files)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 12 and all(math.isfinite(loss) for loss in losses)
    before = corpus_loss(BiEncoder.load(tiny_model_dir), rows)
    after = corpus_loss(BiEncoder.load(tmp_path / "run" / "final"), rows)
    assert after < before - 0.5, (before, after)
