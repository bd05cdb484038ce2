"""Who decides "paraphrase or not" for a model: its calibration, an explicit threshold, or nobody.

The rule, owned here and nowhere else (``paraxl pi`` and ``paraxl serve`` both call
:func:`decider_for`):

1. an explicit threshold wins (probabilities still come from a usable calibration);
2. else the model folder's calibration, if it was fitted on these weights (fingerprint match);
   fitted with another inference backend only earns a note;
3. else refuse with one clear message (or, where deciding is optional, decide nothing).

A calibration fitted on other weights is an error without a threshold; with one, it is set
aside with a note and probabilities are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, overload

import numpy as np

from paraxl.decision.threshold import check_cosine_threshold
from paraxl.errors import InputError, ModelFormatError
from paraxl.loading.calibration_file import CALIBRATION_FILE, Calibration

if TYPE_CHECKING:
    from paraxl.loading.model import ResolvedModel

__all__ = ["Decider", "FixedThreshold", "check_compatible", "decider_for"]


class Decider(Protocol):
    """Turns cosine scores into paraphrase decisions (a :class:`Calibration` or a :class:`FixedThreshold`)."""

    @property
    def threshold(self) -> float: ...

    @property
    def method(self) -> str: ...

    @property
    def prompt_name(self) -> str | None:
        """The prompt the scores were calibrated with ("" = none, None = the model's default)."""
        ...

    def probability(self, scores: np.ndarray) -> np.ndarray: ...

    def decide(self, scores: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FixedThreshold:
    """A decider from an explicit threshold (``--threshold T``): paraphrase iff score >= T.

    Probabilities (and the prompt) come from ``calibration`` when the model has a usable one;
    without it ``probability`` is NaN (``pi`` prints nan, the service reports null).
    """

    threshold: float
    calibration: Decider | None = None

    def __post_init__(self) -> None:
        # a cosine threshold outside [-1, 1] (or NaN) would decide every pair the same way, silently
        check_cosine_threshold(self.threshold)

    @property
    def method(self) -> str:
        return (
            "fixed-threshold" if self.calibration is None else f"fixed-threshold, {self.calibration.method} probability"
        )

    @property
    def prompt_name(self) -> str | None:
        return None if self.calibration is None else self.calibration.prompt_name

    def probability(self, scores: np.ndarray) -> np.ndarray:
        if self.calibration is not None:
            return self.calibration.probability(scores)
        return np.full(np.shape(scores), np.nan)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        decided: np.ndarray = np.asarray(scores) >= self.threshold
        return decided


def check_compatible(calibration: Calibration, fingerprint: str | None, backend: str, source: str) -> str | None:
    """Raise when ``calibration`` was fitted on other weights; return a note when only the backend differs.

    ``fingerprint`` is :func:`paraxl.io.hashing.model_folder_fingerprint` of the folder in use;
    ``source`` names the model for the messages.
    """
    expected = calibration.model_fingerprint
    if expected is not None and fingerprint is not None and expected != fingerprint:
        raise ModelFormatError(
            f"the calibration of {source} was fitted on different weights (fingerprint {expected[:12]}, "
            f"model now {fingerprint[:12]}); re-run `paraxl calibrate {source} --data validation.tsv`"
        )
    if calibration.backend is not None and calibration.backend != backend:
        return (
            f"note: {source} was calibrated with the {calibration.backend} backend, scoring with {backend}; "
            "scores may differ slightly"
        )
    return None


def _ignore(note: str) -> None:
    """The default ``note`` sink: library callers that do not print."""


@overload
def decider_for(
    model: ResolvedModel,
    threshold: float | None,
    *,
    required: Literal[True] = ...,
    other_weights_note: str = ...,
    note: Callable[[str], None] = ...,
) -> Decider: ...


@overload
def decider_for(
    model: ResolvedModel,
    threshold: float | None,
    *,
    required: bool,
    other_weights_note: str = ...,
    note: Callable[[str], None] = ...,
) -> Decider | None: ...


def decider_for(
    model: ResolvedModel,
    threshold: float | None,
    *,
    required: bool = True,
    other_weights_note: str = "no probabilities",
    note: Callable[[str], None] = _ignore,
) -> Decider | None:
    """The decider for ``model`` (see the module docstring for the rule).

    Args:
        model: a resolved or loaded model; its calibration is read here (a damaged file raises).
        threshold: an explicit cosine threshold (``--threshold``), or None.
        required: without a calibration or a threshold, raise :class:`InputError` (``pi``) when
            True, return None (``serve`` runs without ``/paraphrase``) when False.
        other_weights_note: how the note for a set-aside calibration of other weights ends
            ("note: the calibration of SPEC is for other weights; ...").
        note: receives each note (one line) for the user; notes never stop the command.
    """
    calibration = model.calibration
    if calibration is not None:
        try:
            remark = check_compatible(calibration, model.weights_fingerprint, model.backend, model.spec)
        except ModelFormatError:
            if threshold is None:
                raise
            remark = f"note: the calibration of {model.spec} is for other weights; {other_weights_note}"
            calibration = None
        if remark:
            note(remark)
    if threshold is not None:
        return FixedThreshold(threshold, calibration)
    if calibration is None and required:
        raise InputError(
            f"{model.spec} has no calibration ({CALIBRATION_FILE}); "
            f"run `paraxl calibrate {model.spec} --data validation.tsv` first (or pass --threshold T)"
        )
    return calibration
