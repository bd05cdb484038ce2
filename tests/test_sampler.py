from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraxl.data.records import TextUnit
from paraxl.data.sampler import GroupBatchSampler, draw_texts
from paraxl.errors import InputError


def check_plan(sampler: GroupBatchSampler, group_ids: list[int], epoch: int) -> list[list[int]]:
    plan = sampler.plan(epoch)
    batches = plan.batches
    placed = [unit for batch in batches for unit in batch]
    assert len(placed) == len(set(placed))  # each unit at most once per epoch
    assert sorted(placed + plan.left_over) == list(range(len(group_ids)))
    for batch in batches:
        assert len({group_ids[unit] for unit in batch}) == len(batch)  # no group twice in a batch
    assert len(batches) == sampler.batches_per_epoch()
    if sampler.drop_last:
        assert all(len(batch) == sampler.batch_size for batch in batches)
    else:
        assert not plan.left_over and all(0 < len(batch) <= sampler.batch_size for batch in batches)
    return batches


@settings(max_examples=150, deadline=None)
@given(
    group_ids=st.lists(st.integers(-3, 12), min_size=1, max_size=60),
    batch_size=st.integers(1, 8),
    seed=st.integers(0, 2**32),
    epoch=st.integers(0, 1000),
    drop_last=st.booleans(),
)
def test_batches_respect_groups(group_ids: list[int], batch_size: int, seed: int, epoch: int, drop_last: bool) -> None:
    if len(set(group_ids)) < batch_size:
        with pytest.raises(InputError, match="distinct groups for a batch size"):
            GroupBatchSampler(group_ids, batch_size, seed=seed, drop_last=drop_last)
        return
    sampler = GroupBatchSampler(group_ids, batch_size, seed=seed, drop_last=drop_last)
    batches = check_plan(sampler, group_ids, epoch)
    again = GroupBatchSampler(group_ids, batch_size, seed=seed, drop_last=drop_last)
    assert again.epoch_batches(epoch) == batches  # a pure function of (seed, epoch): resumable


def test_full_batches_are_the_most_the_groups_allow() -> None:
    group_ids = [0] * 10 + list(range(1, 31))  # every batch of 4 must take one unit of group 0
    sampler = GroupBatchSampler(group_ids, 4, seed=0)
    assert sampler.batches_per_epoch() == 10 == len(sampler)
    for epoch in range(20):
        check_plan(sampler, group_ids, epoch)
    lopsided = [0] * 50 + [1, 2, 3]  # four groups: one full batch, or 50 small ones to hold all
    assert GroupBatchSampler(lopsided, 4, seed=0).batches_per_epoch() == 1
    assert GroupBatchSampler(lopsided, 4, seed=0, drop_last=False).batches_per_epoch() == 50


def test_round_robin_fallback_keeps_every_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    group_ids = [i // 3 for i in range(90)] + list(range(100, 130))
    for drop_last in (True, False):
        sampler = GroupBatchSampler(group_ids, 16, seed=3, drop_last=drop_last)
        monkeypatch.setattr(sampler, "_greedy", lambda order: None)
        for epoch in range(5):
            check_plan(sampler, group_ids, epoch)


def test_epochs_differ_and_seeds_differ() -> None:
    group_ids = [i // 2 for i in range(400)]
    sampler = GroupBatchSampler(group_ids, 32, seed=7)
    first, second = sampler.epoch_batches(0), sampler.epoch_batches(1)
    assert first != second and sampler.epoch_batches(0) == first
    assert GroupBatchSampler(group_ids, 32, seed=8).epoch_batches(0) != first
    assert len(sampler.plan(0).left_over) == 400 - 12 * 32
    counts = Counter(unit for epoch in range(30) for batch in sampler.epoch_batches(epoch) for unit in batch)
    assert len(counts) == 400  # left-over units come back in later epochs


def test_sampler_argument_errors() -> None:
    with pytest.raises(InputError, match=r"only 2 distinct groups for a batch size of 3"):
        GroupBatchSampler([5, 5, 6, 6], 3, seed=0)
    with pytest.raises(InputError, match="batch size must be at least 1"):
        GroupBatchSampler([1, 2], 0, seed=0)
    with pytest.raises(InputError, match="only 0 distinct groups"):
        GroupBatchSampler([], 1, seed=0)
    with pytest.raises(InputError, match="epoch must be non-negative"):
        GroupBatchSampler([1, 2], 2, seed=0).epoch_batches(-1)


GROUP = TextUnit(4, ("a", "b", "c", "x", "y"), ("en", "en", "en", "de", "de"))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), k=st.one_of(st.none(), st.integers(1, 5)))
def test_draw_texts(seed: int, k: int | None) -> None:
    rng = np.random.default_rng(seed)
    drawn = draw_texts(GROUP, k, rng)
    assert len(drawn) == len(set(drawn)) == (k or 5) and set(drawn) <= set(GROUP.texts)
    same = draw_texts(GROUP, k if k is None or k <= 3 else 3, rng, same_language=True)
    assert len({GROUP.languages[GROUP.texts.index(text)] for text in same}) == 1
    if k is None:
        assert len(same) in (2, 3)


def test_draw_texts_anchor_varies_and_errors() -> None:
    rng = np.random.default_rng(0)
    anchors = Counter(draw_texts(GROUP, 2, rng)[0] for _ in range(500))
    assert set(anchors) == set(GROUP.texts)
    assert {draw_texts(GROUP, 3, rng, same_language=True)[0] for _ in range(50)} == {"a", "b", "c"}
    with pytest.raises(InputError, match="cannot draw 6 distinct texts from group 4 of 5"):
        draw_texts(GROUP, 6, rng)
    with pytest.raises(InputError, match="no language with 4 texts"):
        draw_texts(GROUP, 4, rng, same_language=True)
    with pytest.raises(InputError, match="draw at least 1"):
        draw_texts(GROUP, 0, rng)
