"""Whether two mined corpora look comparable, from the margins of their 1-to-1 candidates (LASER issue 198).

Ratio margins of actual translations stand out from their neighbourhoods: LASER mines with a threshold
of about 1.06 (``--threshold 1.06`` in its BUCC and WikiMatrix recipes), and comparable corpora give a
clear share of candidates above it. Between corpora that share no content, every sentence's nearest
neighbour is about as close as its next ones, so margins crowd just above 1 and mining there returns
noise whatever the threshold.

Rule: warn when fewer than :data:`MIN_SHARE` of the 1-to-1 candidates (at least one) reach
:data:`TYPICAL_THRESHOLD`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

TYPICAL_THRESHOLD = 1.06  # LASER's ratio-margin threshold for mining
MIN_SHARE = 0.01  # of the 1-to-1 candidates


def share_above(scores: npt.NDArray[np.float64], threshold: float = TYPICAL_THRESHOLD) -> float:
    """The share of ``scores`` (n,) at or above ``threshold`` (0 when there are none)."""
    return float(np.mean(scores >= threshold)) if scores.size else 0.0


def comparability_warning(
    scores: npt.NDArray[np.float64], threshold: float = TYPICAL_THRESHOLD, min_share: float = MIN_SHARE
) -> str | None:
    """One line when the candidates' margins ``scores`` (n,) say the corpora are not comparable, else None."""
    share = share_above(scores, threshold)
    if scores.size and share >= min_share:
        return None
    return (
        f"only {share:.2%} of the {scores.size} 1-to-1 candidates have a ratio margin >= {threshold} "
        f"(comparable corpora: {min_share:.0%} or more); the corpora look unrelated, the pairs are likely noise"
    )
