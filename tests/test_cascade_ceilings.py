"""The cascade ceilings against brute force: every band (and every set of pairs a router could
send) enumerated on small random parts, accuracy computed per part and averaged."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from paraxl.decision.cascade_ceilings import CascadeCeilings, Ceiling, PartScores
from paraxl.errors import InputError

BI_THRESHOLD, CROSS_THRESHOLD = 0.5, 0.0


def band_ceiling(parts: dict[str, PartScores], budget: float) -> Ceiling:
    return CascadeCeilings(parts, BI_THRESHOLD, CROSS_THRESHOLD).band(budget)


def router_ceiling(parts: dict[str, PartScores], budget: float) -> Ceiling:
    return CascadeCeilings(parts, BI_THRESHOLD, CROSS_THRESHOLD).router(budget)


def random_parts(seed: int, sizes: tuple[int, ...]) -> dict[str, PartScores]:
    rng = np.random.default_rng(seed)
    # cosines on a coarse grid: ties, which a band takes in or leaves out together
    return {
        f"part{i}": (rng.integers(0, 8, size) / 8.0, rng.normal(size=size), rng.integers(0, 2, size))
        for i, size in enumerate(sizes)
    }


def mean_accuracy(parts: dict[str, PartScores], sent: list[np.ndarray]) -> float:
    """Per part: the cross-encoder decides where ``sent``, the bi-encoder elsewhere; mean of the parts."""
    accuracies = []
    for (cos, cross, labels), chosen in zip(parts.values(), sent, strict=True):
        cos, cross, gold = np.asarray(cos), np.asarray(cross), np.asarray(labels).astype(bool)
        decided = np.where(chosen, cross >= CROSS_THRESHOLD, cos >= BI_THRESHOLD)
        accuracies.append(float(np.mean(decided == gold)))
    return float(np.mean(accuracies))


def brute_force_band(parts: dict[str, PartScores], budget: float) -> float:
    cosines = np.unique(np.concatenate([np.asarray(part[0]) for part in parts.values()]))
    n = sum(np.asarray(part[0]).size for part in parts.values())
    best = mean_accuracy(parts, [np.zeros(np.asarray(part[0]).size, bool) for part in parts.values()])
    for low, high in itertools.combinations_with_replacement(range(cosines.size), 2):
        sent = [
            (np.asarray(part[0]) >= cosines[low]) & (np.asarray(part[0]) <= cosines[high]) for part in parts.values()
        ]
        if sum(int(s.sum()) for s in sent) <= budget * n + 1e-9:
            best = max(best, mean_accuracy(parts, sent))
    return best


def brute_force_router(parts: dict[str, PartScores], budget: float) -> float:
    sizes = [np.asarray(part[0]).size for part in parts.values()]
    n = sum(sizes)
    best = -1.0
    for count in range(int(budget * n + 1e-9) + 1):
        for chosen in itertools.combinations(range(n), count):
            flat = np.zeros(n, bool)
            flat[list(chosen)] = True
            best = max(best, mean_accuracy(parts, np.split(flat, np.cumsum(sizes)[:-1])))
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("budget", [0.0, 0.2, 0.45, 1.0])
def test_the_band_ceiling_is_the_best_band_of_its_budget(seed: int, budget: float) -> None:
    parts = random_parts(seed, (9, 14, 20))
    ceiling = band_ceiling(parts, budget)
    assert ceiling.mean == pytest.approx(brute_force_band(parts, budget), abs=1e-12)
    assert ceiling.share <= budget + 1e-12


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("budget", [0.0, 0.25, 0.5, 1.0])
def test_the_router_ceiling_is_the_best_of_every_set_of_pairs_sent(seed: int, budget: float) -> None:
    parts = random_parts(seed, (3, 4, 6))  # 13 pairs: every subset is enumerated
    router = router_ceiling(parts, budget)
    assert router.mean == pytest.approx(brute_force_router(parts, budget), abs=1e-12)
    assert router.mean >= band_ceiling(parts, budget).mean - 1e-12
    assert router.share <= budget + 1e-12


def test_bad_budgets_and_mismatched_parts_are_refused() -> None:
    parts = random_parts(0, (5,))
    with pytest.raises(InputError, match="budget"):
        router_ceiling(parts, 1.5)
    with pytest.raises(InputError, match="part0: 5 cosines, 4 cross-encoder scores"):
        band_ceiling({"part0": (parts["part0"][0], np.zeros(4), parts["part0"][2])}, 0.5)
    with pytest.raises(InputError, match="no scored pairs"):
        band_ceiling({"empty": ([], [], [])}, 0.5)


@pytest.mark.parametrize(
    "cos, labels, message",
    [([0.1, np.nan], [0, 1], "must be finite"), ([0.1, 0.2], [0, 2], "labels must be 0 or 1")],
)
def test_scores_a_fit_would_refuse_are_refused(cos: list[float], labels: list[int], message: str) -> None:
    with pytest.raises(InputError, match=message):
        router_ceiling({"part": (cos, [0.0, 0.0], labels)}, 0.5)


def test_a_band_of_no_gain_is_not_chosen_over_sending_nothing_more() -> None:
    """Weighted gains that cancel sum with float noise: +1/6 (a part of 3 pairs), then -1/36 and +1/36
    (a part of 18) in cosine order give a 3-pair band 2.8e-17 above the 1-pair one."""
    parts: dict[str, PartScores] = {
        # cosine 0.2: the bi-encoder wrong, the cross-encoder right (+1/6); two pairs both get right
        "three": ([0.2, 0.95, 0.95], [1.0, 1.0, 1.0], [1, 1, 1]),
        # 0.25: only the bi-encoder right (-1/36); 0.3: only the cross-encoder right (+1/36); 16 at 0.9
        # only the bi-encoder right
        "eighteen": ([0.25, 0.3, *[0.9] * 16], [1.0, 1.0, *[-1.0] * 16], [0, 1, *[1] * 16]),
    }
    ceiling = band_ceiling(parts, 1.0)
    assert ceiling.mean == pytest.approx(brute_force_band(parts, 1.0), abs=1e-12)
    assert ceiling.share == pytest.approx(1 / 21)  # the one pair worth sending, not the band of equal gain
