"""Losses and mining against naive per-row loops; GradCache against one full backward."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from paraxl.losses import additive_margin_loss, info_nce_loss, multi_positive_loss
from paraxl.losses.cached import cached_backward
from paraxl.losses.hard_negatives import gather_negatives, mine_hard_negatives
from paraxl.losses.mega_batch import MegaBatchConfig, mega_batch_loss

from .tiny import build_tiny_encoder


def cos(u: torch.Tensor, v: torch.Tensor) -> float:
    return float(u @ v / (u.norm() * v.norm()))


def naive_am(a, c, margin, scale, both, extra=None, groups=None) -> float:  # type: ignore[no-untyped-def]
    n = len(a)
    total = 0.0
    for i in range(n):  # anchor -> candidates (+ extra negatives)
        logits = []
        for j in range(n):
            if groups is not None and j != i and groups[i] == groups[j]:
                continue
            logits.append((j == i, scale * (cos(a[i], c[j]) - (margin if i == j else 0.0))))
        if extra is not None:
            logits += [(False, scale * cos(a[i], e)) for e in extra[i] if not torch.isnan(e).any()]
        positive = next(v for is_pos, v in logits if is_pos)
        total += -positive + math.log(sum(math.exp(v) for _, v in logits))
    forward = total / n
    if not both:
        return forward
    total = 0.0
    for j in range(n):  # candidate -> anchors
        logits = []
        for i in range(n):
            if groups is not None and j != i and groups[i] == groups[j]:
                continue
            logits.append((i == j, scale * (cos(a[i], c[j]) - (margin if i == j else 0.0))))
        positive = next(v for is_pos, v in logits if is_pos)
        total += -positive + math.log(sum(math.exp(v) for _, v in logits))
    return forward + total / n


@pytest.fixture()
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    a, c = torch.randn(6, 8, generator=g, dtype=torch.float64), torch.randn(6, 8, generator=g, dtype=torch.float64)
    extra = torch.randn(6, 3, 8, generator=g, dtype=torch.float64)
    extra[1, 2] = float("nan")  # padding
    extra[4, 1:] = float("nan")
    groups = torch.tensor([0, 1, 0, 2, 3, 3])
    return a, c, extra, groups


@pytest.mark.parametrize("both", [True, False])
@pytest.mark.parametrize("margin", [0.0, 0.3])
def test_additive_margin_matches_naive_loop(batch, both: bool, margin: float) -> None:  # type: ignore[no-untyped-def]
    a, c, extra, groups = batch
    direction = "both" if both else "forward"
    plain = additive_margin_loss(a, c, margin=margin, scale=7.0, direction=direction)
    assert float(plain) == pytest.approx(naive_am(a, c, margin, 7.0, both), rel=1e-10)
    full = additive_margin_loss(
        a, c, margin=margin, scale=7.0, direction=direction, extra_negatives=extra, groups=groups
    )
    assert float(full) == pytest.approx(naive_am(a, c, margin, 7.0, both, extra, groups), rel=1e-10)


def test_margin_zero_is_info_nce(batch) -> None:  # type: ignore[no-untyped-def]
    a, c, _, _ = batch
    reference = torch.nn.functional.cross_entropy(
        20.0 * torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(c, dim=-1).T, torch.arange(6)
    )
    torch.testing.assert_close(info_nce_loss(a, c, temperature=0.05), reference)
    torch.testing.assert_close(additive_margin_loss(a, c, margin=0.0, scale=20.0, direction="forward"), reference)


def naive_mpcl(x: torch.Tensor, groups: list[int], tau: float, variant: str) -> float:
    n = len(x)
    total = 0.0
    for i in range(n):
        denominator = sum(math.exp(cos(x[i], x[j]) / tau) for j in range(n) if j != i)
        positives = [
            math.exp(cos(x[i], x[j]) / tau) / denominator for j in range(n) if j != i and groups[j] == groups[i]
        ]
        if variant == "mean_log_prob":
            total += -sum(math.log(p) for p in positives) / len(positives)
        else:
            total += -math.log(sum(positives))
    return total / n


@pytest.mark.parametrize("variant", ["mean_log_prob", "log_sum_prob"])
def test_multi_positive_matches_naive_loop(variant: str) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(9, 5, generator=g, dtype=torch.float64)
    groups = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    loss = multi_positive_loss(x, torch.tensor(groups), temperature=0.1, variant=variant)  # type: ignore[arg-type]
    assert float(loss) == pytest.approx(naive_mpcl(x, groups, 0.1, variant), rel=1e-10)
    with pytest.raises(ValueError, match="at least one positive"):
        multi_positive_loss(x[:4], torch.tensor([0, 0, 0, 1]))


def test_multi_positive_with_pairs_is_symmetric_info_nce_over_the_batch() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    groups = torch.tensor([0, 0, 1, 1, 2, 2])  # K = 2: one positive each; both variants coincide
    a = multi_positive_loss(x, groups, variant="mean_log_prob")
    b = multi_positive_loss(x, groups, variant="log_sum_prob")
    torch.testing.assert_close(a, b)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 7),
    m=st.integers(1, 9),
    k=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    ceiling=st.one_of(st.none(), st.floats(-1.0, 1.0)),
)
def test_mining_never_returns_excluded_and_is_sorted(n: int, m: int, k: int, seed: int, ceiling: float | None) -> None:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(-3, 4, (n, m), generator=g).double() / 3  # many ties on purpose
    exclude = torch.rand(n, m, generator=g) < 0.3
    chosen = mine_hard_negatives(scores, exclude, k, ceiling=ceiling)
    assert chosen.shape == (n, k)
    for i in range(n):
        allowed = [j for j in range(m) if not exclude[i, j] and (ceiling is None or scores[i, j] <= ceiling)]
        expected = sorted(allowed, key=lambda j: (-float(scores[i, j]), j))[:k]
        assert chosen[i].tolist() == expected + [-1] * (k - len(expected))


def test_relative_ceiling_drops_candidates_above_the_positive() -> None:
    scores = torch.tensor([[0.9, 0.95, 0.5, 0.8]])
    exclude = torch.tensor([[True, False, False, False]])  # column 0 is the positive
    chosen = mine_hard_negatives(scores, exclude, 2, positive_scores=scores[:, 0], relative_ceiling=0.05)
    assert chosen.tolist() == [[3, 2]]
    with pytest.raises(ValueError, match="positive_scores"):
        mine_hard_negatives(scores, exclude, 2, relative_ceiling=0.0)


def test_gather_negatives_pads_with_nan() -> None:
    candidates = torch.arange(6.0).reshape(3, 2)
    out = gather_negatives(candidates, torch.tensor([[2, -1]]))
    assert out[0, 0].tolist() == [4.0, 5.0] and torch.isnan(out[0, 1]).all()


def test_mega_batch_never_mines_own_group() -> None:
    g = torch.Generator().manual_seed(3)
    base = torch.randn(4, 8, generator=g)
    anchors = torch.cat([base, base + 0.01])  # rows 4-7 duplicate rows 0-3 in the same groups
    groups = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    scores = anchors @ anchors.T
    chosen = mine_hard_negatives(scores, groups[:, None] == groups[None, :], 3)
    assert all(groups[j] != groups[i] for i in range(8) for j in chosen[i].tolist() if j >= 0)


def run_cached_vs_full(mini_batches: list[list[str]], make_loss, train: bool, device: str = "cpu") -> float:  # type: ignore[no-untyped-def]
    """Assert GradCache == one full backward for the loss and every gradient; return the max grad diff.

    Both paths start from the same RNG state, so dropout masks coincide.
    """
    model = build_tiny_encoder(seed=5).double().to(device)
    model.train(train)
    features = [{k: v.to(device) for k, v in model.tokenize(texts).items()} for texts in mini_batches]
    torch.manual_seed(123)
    full = make_loss(torch.cat([model(f) for f in features]))
    full.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    torch.manual_seed(123)
    cached = cached_backward(model, features, make_loss)
    torch.testing.assert_close(cached, full.detach())
    got = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert got.keys() == expected.keys() and len(got) > 10
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-9, atol=1e-12, msg=name)
    return max(float((got[name] - expected[name]).abs().max()) for name in expected)


PAIRS = [
    ["the cat sat", "the dog ran", "le chat", "der hund", "cat on mat", "dog on mat"],
    ["le chat sat", "der hund ran", "the mat", "猫は犬", "ABC", "xyz"],
]


@pytest.mark.parametrize("train", [False, True])
def test_cached_am_equals_full_batch_gradients(train: bool) -> None:
    def loss(reps: torch.Tensor) -> torch.Tensor:  # mini-batches hold (anchors ; positives) halves
        first, second = reps[:6], reps[6:]
        anchors = torch.cat([first[:3], second[:3]])
        positives = torch.cat([first[3:], second[3:]])
        return additive_margin_loss(anchors, positives, margin=0.2, scale=10.0)

    run_cached_vs_full(PAIRS, loss, train)


def test_cached_mega_batch_equals_full_batch_gradients() -> None:
    config = MegaBatchConfig(mini_batch_size=3, top_k=2, margin=0.2, scale=10.0)

    def loss(reps: torch.Tensor) -> torch.Tensor:
        first, second = reps[:6], reps[6:]
        anchors = torch.cat([first[:3], second[:3]])
        positives = torch.cat([first[3:], second[3:]])
        return mega_batch_loss(anchors, positives, torch.arange(6), config)

    run_cached_vs_full(PAIRS, loss, train=True)


def test_cached_multi_positive_equals_full_batch_gradients() -> None:
    groups = torch.tensor([0, 1, 2, 0, 1, 2, 3, 3, 4, 4, 5, 5])

    def loss(reps: torch.Tensor) -> torch.Tensor:
        return multi_positive_loss(reps, groups, temperature=0.05)

    run_cached_vs_full(PAIRS, loss, train=True)
