"""The loss registry: one table of loss kinds, agreeing with the config's `loss` union."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import get_args

import pytest
import torch

from paraxl.losses import additive_margin_loss, info_nce_loss, multi_positive_loss
from paraxl.losses.additive_margin import AdditiveMarginConfig, InfoNCEConfig
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.losses.mega_batch import pair_step_loss
from paraxl.losses.multi_positive import MultiPositiveConfig
from paraxl.losses.registry import LOSSES, LossConfig, LossKind, _table, contrastive_loss, pair_kinds, step_needs
from paraxl.losses.step import GroupSteps, PairSteps


@dataclass(frozen=True)
class FakeStep:
    """A one-mini-batch step: texts 0..n-1 anchors, n..2n-1 positives, no explicit negatives."""

    n: int
    text_groups: torch.Tensor = field(init=False)
    mini_batch_texts: list[slice] = field(init=False)
    anchors: torch.Tensor = field(init=False)
    positives: torch.Tensor = field(init=False)
    pair_groups: torch.Tensor = field(init=False)
    negatives: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        n = self.n
        object.__setattr__(self, "text_groups", torch.arange(n).repeat(2))
        object.__setattr__(self, "mini_batch_texts", [slice(0, 2 * n)])
        object.__setattr__(self, "anchors", torch.arange(n))
        object.__setattr__(self, "positives", torch.arange(n, 2 * n))
        object.__setattr__(self, "pair_groups", torch.arange(n))
        object.__setattr__(self, "negatives", torch.empty(n, 0, dtype=torch.long))

    @property
    def pairs_per_mini_batch(self) -> int:
        return self.n


def test_the_config_union_and_the_registry_name_the_same_sections() -> None:
    members = get_args(get_args(LossConfig)[0])
    assert set(members) == {kind.section for kind in LOSSES.values()}
    for name, kind in LOSSES.items():
        assert get_args(kind.section.model_fields["kind"].annotation) == (name,)
        assert kind.section().kind == name  # every key has a default: `loss: {kind: name}` is valid


def test_a_kind_registered_twice_is_refused() -> None:
    kind = LOSSES["info_nce"]
    with pytest.raises(ValueError, match="registered twice"):
        _table(kind, LossKind("info_nce", InfoNCEConfig, kind.needs, pair_step_loss))


def test_step_needs_and_pair_kinds() -> None:
    assert step_needs(AdditiveMarginConfig(explicit_negatives=2)) == PairSteps(2)
    assert step_needs(InfoNCEConfig(explicit_negatives=0)) == PairSteps(0)
    assert step_needs(MultiPositiveConfig(members_per_group=4)) == GroupSteps(4)
    assert pair_kinds() == ["additive_margin", "info_nce"]


def test_each_kind_computes_its_loss_function() -> None:
    """Oracle: on one mini-batch without explicit or mined negatives, each kind's step loss is its plain loss."""
    reps = torch.randn(12, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    step, mining = FakeStep(6), HardNegativeConfig()
    anchors, positives, groups = reps[:6], reps[6:], torch.arange(6)
    am = AdditiveMarginConfig(margin=0.2, scale=10.0)
    expected = additive_margin_loss(anchors, positives, margin=0.2, scale=10.0, groups=groups)
    torch.testing.assert_close(contrastive_loss(reps, step, am, mining), expected)
    nce = InfoNCEConfig(temperature=0.1)
    expected = info_nce_loss(anchors, positives, temperature=0.1, groups=groups)
    torch.testing.assert_close(contrastive_loss(reps, step, nce, mining), expected)
    mp = MultiPositiveConfig(temperature=0.1, variant="log_sum_prob")
    expected = multi_positive_loss(reps, step.text_groups, temperature=0.1, variant="log_sum_prob")
    torch.testing.assert_close(contrastive_loss(reps, step, mp, mining), expected)
