"""Group-aware batches: never two units of one meaning in a batch, reproducible per ``(seed, epoch)``.

In-batch negatives assume every other unit of the batch means something else. Units that share a
``group_id`` (translations, duplicates) would be false negatives, so a batch holds each group at
most once. An epoch's plan depends only on ``(seed, epoch)``: a run resumed at ``(epoch, step)``
continues with ``epoch_batches(epoch)[step:]`` and sees exactly the batches it would have seen.
Samplers that share a seed (the tasks of a multi-task run) get their own ``stream``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from paraxl.data.records import TextUnit
from paraxl.errors import InputError

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class EpochPlan:
    """One epoch: ``batches`` of unit indices, and the units it leaves out (``left_over``).

    A unit is left out when ``drop_last`` cuts the remainder or when its group has more units than
    there are batches; it is back in the next epoch's shuffle, where a different choice is made.
    """

    batches: list[list[int]]
    left_over: list[int]


class GroupBatchSampler:
    """Batches of unit indices with distinct group ids, each unit at most once per epoch.

    Units are ordered by a stratified shuffle that spreads each group's units evenly over the
    epoch, then packed greedily; a unit whose group is already in the open batch waits for a later
    batch of the same epoch. If greedy packing falls short of :meth:`batches_per_epoch` (rare: it
    needs groups with more units than batches), a round-robin construction that always reaches it
    replaces it, so every epoch has the same number of batches.
    """

    def __init__(
        self,
        group_ids: Sequence[int],
        batch_size: int,
        *,
        seed: int,
        drop_last: bool = True,
        stream: Sequence[int] = (),
    ) -> None:
        """``stream``: non-negative ints that tell apart samplers of one ``seed`` (their plans are
        independent); the default ``()`` gives the plans of a sampler made without it."""
        if batch_size < 1:
            raise InputError(f"batch size must be at least 1, got {batch_size}")
        if seed < 0 or any(part < 0 for part in stream):
            raise InputError(f"seed and stream must be non-negative, got {seed} and {tuple(stream)}")
        ids = np.asarray(group_ids, dtype=np.int64).reshape(-1)
        distinct, inverse, sizes = np.unique(ids, return_inverse=True, return_counts=True)
        if len(distinct) < batch_size:
            raise InputError(
                f"only {len(distinct)} distinct groups for a batch size of {batch_size}: a batch needs "
                f"{batch_size} units of different groups (translations and duplicates share one); "
                "lower the batch size or add data"
            )
        self.batch_size = batch_size
        self.seed = seed
        self.stream = tuple(int(part) for part in stream)
        self.drop_last = drop_last
        self._group: IntArray = inverse.astype(np.int64)  # dense group index per unit
        self._sizes: IntArray = sizes.astype(np.int64)  # units per dense group
        by_group = np.argsort(self._group, kind="stable")
        self._members: list[IntArray] = np.split(by_group, np.cumsum(self._sizes)[:-1])
        self._count = self._full_batches() if drop_last else self._all_units_batches()
        self._cached: tuple[int, EpochPlan] | None = None

    def __len__(self) -> int:
        return self.batches_per_epoch()

    def batches_per_epoch(self) -> int:
        """Exact, and the same for every epoch.

        ``drop_last``: the most full batches the group sizes allow (``K`` such that every group
        contributes at most ``K`` units and ``K * batch_size`` units fit). Otherwise: the fewest
        batches that hold every unit (``max(ceil(n / batch_size), largest group)``); then batches
        may be smaller than ``batch_size``.
        """
        return self._count

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The unit indices of each batch of ``epoch``; a pure function of ``(seed, stream, epoch)``."""
        return self.plan(epoch).batches

    def plan(self, epoch: int) -> EpochPlan:
        """Batches and left-over units of ``epoch`` (the last plan is cached)."""
        if epoch < 0:
            raise InputError(f"epoch must be non-negative, got {epoch}")
        if self._cached is not None and self._cached[0] == epoch:
            return self._cached[1]
        rng = np.random.default_rng([self.seed, *self.stream, epoch])
        order = self._stratified_order(rng)
        batches = self._greedy(order)
        if batches is None:
            batches = self._round_robin(rng)
        placed = np.zeros(len(self._group), dtype=bool)
        for batch in batches:
            placed[batch] = True
        plan = EpochPlan(batches, [int(unit) for unit in order if not placed[unit]])
        self._cached = (epoch, plan)
        return plan

    def _full_batches(self) -> int:
        """Largest ``K <= n // B`` with ``sum(min(size, K)) >= K * B`` (feasible ``K`` form an interval)."""
        low, high = 1, len(self._group) // self.batch_size  # K = 1 is feasible: enough distinct groups
        while low < high:
            middle = (low + high + 1) // 2
            if int(np.minimum(self._sizes, middle).sum()) >= middle * self.batch_size:
                low = middle
            else:
                high = middle - 1
        return low

    def _all_units_batches(self) -> int:
        return max(-(-len(self._group) // self.batch_size), int(self._sizes.max()))

    def _stratified_order(self, rng: np.random.Generator) -> IntArray:
        """A shuffle where the k-th of a group's m units gets a key in ``[k/m, (k+1)/m)``.

        Keys are uniform overall, so groups mix at random, but a group's units land about ``n/m``
        positions apart, which makes conflicts within a batch rare.
        """
        shuffled = rng.permutation(len(self._group))
        grouped = shuffled[np.argsort(self._group[shuffled], kind="stable")]  # by group, shuffled within
        starts = np.cumsum(self._sizes) - self._sizes
        groups = self._group[grouped]
        ranks = np.arange(len(grouped)) - starts[groups]
        keys = (ranks + rng.random(len(grouped))) / self._sizes[groups]
        result: IntArray = grouped[np.argsort(keys, kind="stable")]
        return result

    def _greedy(self, order: IntArray) -> list[list[int]] | None:
        """Pack ``order`` into batches, deferring conflicts; None if it misses the target count."""
        size, group = self.batch_size, self._group.tolist()
        batches: list[list[int]] = []
        current: list[int] = []
        used: set[int] = set()
        pending: list[int] = []

        def fill(candidates: list[int]) -> list[int]:
            """Add what fits to the open batch; return the rest, in order."""
            rest = []
            for unit in candidates:
                if len(current) < size and group[unit] not in used:
                    current.append(unit)
                    used.add(group[unit])
                else:
                    rest.append(unit)
            return rest

        for unit in order.tolist():
            pending += fill([unit])
            while len(current) == size:
                batches.append(current.copy())
                current.clear()
                used.clear()
                if self.drop_last and len(batches) == self._count:
                    return batches
                pending = fill(pending)
        if self.drop_last:
            return None
        pending = fill(pending)
        while current:  # the tail: smaller batches until every unit is placed
            batches.append(current.copy())
            current.clear()
            used.clear()
            pending = fill(pending)
        return batches if len(batches) == self._count else None

    def _round_robin(self, rng: np.random.Generator) -> list[list[int]]:
        """Always reaches the target: groups laid end to end (each at most K units), unit j to batch j mod K."""
        count = self._count
        chain = [rng.permutation(self._members[g])[:count] for g in rng.permutation(len(self._sizes))]
        units = np.concatenate(chain)
        if self.drop_last:
            keep = np.sort(rng.choice(len(units), size=count * self.batch_size, replace=False))
            units = units[keep]  # dropping units keeps each group contiguous and at most K long
        batches: list[list[int]] = [[] for _ in range(count)]
        for position, unit in enumerate(units.tolist()):
            batches[position % count].append(unit)
        return [batches[b] for b in rng.permutation(count).tolist()]


def draw_texts(
    group: TextUnit, k: int | None, rng: np.random.Generator, same_language: bool = False
) -> tuple[str, ...]:
    """``k`` distinct texts of ``group`` (``None``: all, shuffled), the anchor first.

    For a (anchor, positive) pair use ``k=2``. ``same_language`` draws the anchor among texts whose
    language has at least ``k`` texts, and the rest from that language only (monolingual paraphrase
    pairs out of a multilingual unit).
    """
    if k is not None and k < 1:
        raise InputError(f"cannot draw {k} texts; draw at least 1")
    languages = group.languages
    if same_language:
        per_language = Counter(languages)
        eligible = [i for i, language in enumerate(languages) if per_language[language] >= (k or 1)]
        if not eligible:
            raise InputError(f"group {group.group_id} has no language with {k} texts")
        anchor = eligible[int(rng.integers(len(eligible)))]
        pool = [i for i, language in enumerate(languages) if language == languages[anchor] and i != anchor]
        chosen = [anchor, *rng.permutation(pool).tolist()]
    else:
        if k is not None and k > len(group.texts):
            raise InputError(f"cannot draw {k} distinct texts from group {group.group_id} of {len(group.texts)}")
        chosen = rng.permutation(len(group.texts)).tolist()
    return tuple(group.texts[i] for i in chosen[:k])
