"""Calibrated paraphrase decisions: a threshold on cosine plus a probability, fitted on labeled pairs.

Two things are fitted on the same validation pairs, for two different questions:

* ``threshold``: "paraphrase or not?" — the cut of the cosine that maximises accuracy
  (:func:`paraxl.evaluation.threshold.best_threshold`); :meth:`Calibration.decide` is ``score >= threshold``.
* a probability calibration: "how sure?" — Platt scaling (a logistic regression on the 1-d score)
  or isotonic regression (a monotone step function). The two need not cross 0.5 at the threshold
  (with unbalanced classes the accuracy-maximising cut is not where the probability is 0.5).

``method="auto"`` picks the method with the lower *held-out log loss* over stratified K folds
(out-of-fold predictions pooled). Log loss rather than Brier: both are proper scoring rules, but
only log loss punishes a confident wrong answer without bound, and that is isotonic regression's
failure on small validation sets (its end blocks say probability 0 or 1 exactly). A user reading
"probability 0.00" must be able to trust it. Brier and ECE are reported beside it.

Everything is stored as plain JSON (``paraxl_calibration.json`` in the model folder): Platt as
coef + intercept in raw-score space, isotonic as its breakpoints, rebuilt with :func:`numpy.interp`
(identical to ``IsotonicRegression(out_of_bounds="clip").predict``). Nothing is pickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from paraxl.errors import InputError, ModelFormatError
from paraxl.evaluation.threshold import best_threshold
from paraxl.io.atomic import atomic_path

if TYPE_CHECKING:  # sklearn is imported only where a fit happens: ``pi`` needs none of it
    from sklearn.pipeline import Pipeline

CALIBRATION_FILE = "paraxl_calibration.json"
FORMAT_NAME = "paraxl-calibration"
FORMAT_VERSION = 1
METHODS = ("platt", "isotonic")  # order breaks ties in "auto": the simpler Platt first
SELECTION = "lowest held-out log loss (stratified K-fold, out-of-fold predictions pooled)"
MIN_PAIRS = 10
ECE_BINS = 10

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class HeldOutMetrics:
    """One method's out-of-fold quality: log loss (nats), Brier score, ECE over ``ECE_BINS`` equal bins."""

    log_loss: float
    brier: float
    ece: float


@dataclass(frozen=True)
class DataFile:
    """A file the calibration was fitted on: its name (as given), content hash and pairs used."""

    name: str
    sha256: str
    pairs: int


@dataclass(frozen=True)
class Calibration:
    """A fitted decision rule for cosine scores; see the module docstring.

    ``platt_coef``/``platt_intercept``: probability = sigmoid(coef * score + intercept).
    ``isotonic_x``/``isotonic_y``: ascending breakpoints; probability = interp(score, x, y), clipped
    to the end values outside ``[x[0], x[-1]]``. Both are fitted on all pairs; ``method`` says which
    :meth:`probability` uses. Provenance fields are None/empty until the caller fills them in
    (``dataclasses.replace``), as ``paraxl calibrate`` does.
    """

    threshold: float
    method: str
    platt_coef: float
    platt_intercept: float
    isotonic_x: tuple[float, ...]
    isotonic_y: tuple[float, ...]
    threshold_accuracy: float  # accuracy at ``threshold`` on the fitting pairs
    held_out: Mapping[str, HeldOutMetrics]  # per method in METHODS
    folds: int  # folds actually used (fewer than asked when the smaller class is small)
    seed: int
    n_pairs: int
    positives: int
    model_fingerprint: str | None = None
    backend: str | None = None
    prompt_name: str | None = None  # "" = no prompt; None = unknown
    data_files: tuple[DataFile, ...] = ()
    skipped_untranslated: int = 0
    created: str | None = None
    paraxl_version: str | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"unknown calibration method {self.method!r}; use one of {', '.join(METHODS)}")

    def probability(self, scores: npt.ArrayLike) -> FloatArray:
        """Shape-preserving: cosine scores -> probability of "paraphrase" in [0, 1] (NaN stays NaN)."""
        values = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            from scipy.special import expit

            result: FloatArray = expit(self.platt_coef * values + self.platt_intercept)
            return result
        interpolated: FloatArray = np.interp(values, self.isotonic_x, self.isotonic_y)
        return interpolated

    def decide(self, scores: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """Shape-preserving: ``score >= threshold`` (a NaN score is "not paraphrase")."""
        decided: npt.NDArray[np.bool_] = np.asarray(scores, dtype=np.float64) >= self.threshold
        return decided

    @property
    def majority_rate(self) -> float:
        """Accuracy of always answering the more frequent class on the fitting pairs."""
        return max(self.positives, self.n_pairs - self.positives) / self.n_pairs

    def to_json(self) -> dict[str, object]:
        """A JSON-ready document (plain floats, lists and strings)."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "method": self.method,
            "selection": SELECTION,
            "threshold": self.threshold,
            "threshold_accuracy": self.threshold_accuracy,
            "platt": {"coef": self.platt_coef, "intercept": self.platt_intercept},
            "isotonic": {"x_thresholds": list(self.isotonic_x), "y_thresholds": list(self.isotonic_y)},
            "held_out": {
                "folds": self.folds,
                "seed": self.seed,
                "ece_bins": ECE_BINS,
                **{name: {"log_loss": m.log_loss, "brier": m.brier, "ece": m.ece} for name, m in self.held_out.items()},
            },
            "data": {
                "n_pairs": self.n_pairs,
                "positives": self.positives,
                "skipped_untranslated": self.skipped_untranslated,
                "files": [{"name": f.name, "sha256": f.sha256, "pairs": f.pairs} for f in self.data_files],
            },
            "model": {"fingerprint": self.model_fingerprint, "backend": self.backend, "prompt_name": self.prompt_name},
            "created": self.created,
            "paraxl_version": self.paraxl_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object], source: str) -> Calibration:
        """Rebuild from :meth:`to_json`'s document; :class:`ModelFormatError` naming ``source`` if it is bad."""
        return _parse(_Reader(source), data)


# ----------------------------------------------------------------------------------------- fitting
def fit_calibration(
    scores: npt.ArrayLike, labels: npt.ArrayLike, method: str = "auto", folds: int = 5, seed: int = 0
) -> Calibration:
    """Fit threshold, Platt and isotonic on ``scores`` (n,) with ``labels`` (n,) in {0, 1}.

    Held-out metrics come from ``folds`` stratified folds (shuffled with ``seed``); when the smaller
    class has fewer members than ``folds``, that many folds are used (at least 2). ``method``:
    ``auto`` (lower held-out log loss), ``platt`` or ``isotonic``. Bad input raises :class:`InputError`.
    """
    from sklearn.metrics import brier_score_loss, log_loss
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    values, targets = _checked(scores, labels)
    if method not in ("auto", *METHODS):
        raise InputError(f"unknown calibration method {method!r}; use auto, platt or isotonic")
    if folds < 2:
        raise InputError(f"folds must be at least 2, got {folds}")
    if not 0 <= seed < 2**32:
        raise InputError(f"seed must be in [0, 2**32), got {seed}")
    positives = int(targets.sum())
    smaller = min(positives, targets.size - positives)
    if smaller < 2:
        raise InputError(
            f"need at least 2 pairs of each class for held-out calibration; got {positives} paraphrase(s) "
            f"and {targets.size - positives} non-paraphrase(s)"
        )
    used_folds = min(folds, smaller)
    splitter = StratifiedKFold(n_splits=used_folds, shuffle=True, random_state=seed)
    column = values.reshape(-1, 1)  # sklearn estimators take (n, 1) features
    held_out = {}
    for name in METHODS:
        if name == "platt":
            predicted = cross_val_predict(_platt_model(), column, targets, cv=splitter, method="predict_proba")[:, 1]
        else:
            predicted = cross_val_predict(_isotonic_model(), column, targets, cv=splitter)
        held_out[name] = HeldOutMetrics(
            log_loss=float(log_loss(targets, predicted, labels=[0, 1])),
            brier=float(brier_score_loss(targets, predicted)),
            ece=expected_calibration_error(predicted, targets),
        )
    chosen = method if method != "auto" else min(METHODS, key=lambda name: held_out[name].log_loss)
    coef, intercept = platt_parameters(_platt_model().fit(column, targets))
    isotonic = _isotonic_model().fit(column, targets)
    threshold, accuracy = best_threshold(values, targets)
    return Calibration(
        threshold=threshold,
        method=chosen,
        platt_coef=coef,
        platt_intercept=intercept,
        isotonic_x=tuple(float(x) for x in isotonic.X_thresholds_),
        isotonic_y=tuple(float(y) for y in isotonic.y_thresholds_),
        threshold_accuracy=accuracy,
        held_out=held_out,
        folds=used_folds,
        seed=seed,
        n_pairs=int(targets.size),
        positives=positives,
    )


def _checked(scores: npt.ArrayLike, labels: npt.ArrayLike) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    values = np.asarray(scores, dtype=np.float64)
    raw_labels = np.asarray(labels)
    if values.ndim != 1 or raw_labels.ndim != 1:
        raise InputError(f"scores and labels must be 1-d, got shapes {values.shape} and {raw_labels.shape}")
    if values.size != raw_labels.size:
        raise InputError(f"{values.size} scores but {raw_labels.size} labels")
    if values.size < MIN_PAIRS:
        raise InputError(f"calibration needs at least {MIN_PAIRS} labeled pairs, got {values.size}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(f"{bad.size} score(s) are NaN or infinite (first at pair {bad[0] + 1})")
    if not np.isin(raw_labels, (0, 1)).all():
        raise InputError("labels must be 0 or 1")
    targets = raw_labels.astype(np.int64)
    if targets.min() == targets.max():
        raise InputError(f"all {targets.size} labels are {targets[0]}; calibration needs both classes")
    return values, targets


def _platt_model() -> Pipeline:
    """Platt scaling: logistic regression on the standardised score.

    Cosines of a model often span a narrow range (e5: about 0.7 to 1.0), so the raw-score slope is
    large; sklearn's default L2 penalty (C=1) on the *standardised* score regularises the same
    whatever that range, and keeps the fit finite when the pairs are perfectly separable.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression())


def platt_parameters(model: Pipeline) -> tuple[float, float]:
    """``(coef, intercept)`` in raw-score space of a fitted :func:`_platt_model` pipeline.

    With z = (s - mean) / scale and logit = a z + b: logit = (a / scale) s + (b - a mean / scale).
    """
    scaler, regression = model[0], model[-1]
    mean, scale = float(scaler.mean_[0]), float(scaler.scale_[0])
    a, b = float(regression.coef_[0, 0]), float(regression.intercept_[0])
    return a / scale, b - a * mean / scale


def _isotonic_model() -> Any:
    from sklearn.isotonic import IsotonicRegression

    # increasing: a higher cosine never lowers the chance of a paraphrase; clip: constant outside the fit range
    return IsotonicRegression(out_of_bounds="clip", increasing=True)


def expected_calibration_error(probabilities: npt.ArrayLike, labels: npt.ArrayLike, bins: int = ECE_BINS) -> float:
    """ECE: sum over equal-width bins of [0, 1] of (bin size / n) * |positive rate - mean probability|.

    Bin ``i`` holds ``i / bins <= p < (i + 1) / bins``; ``p = 1`` goes to the last bin.
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    if p.size != y.size or p.size == 0:
        raise InputError(f"ECE needs as many labels as probabilities (got {p.size} and {y.size}), at least one")
    inner_edges = np.arange(1, bins) / bins  # (bins - 1,): 0.1, 0.2, ..., 0.9 for 10 bins
    index = np.minimum(np.searchsorted(inner_edges, p, side="right"), bins - 1)  # (n,) bin of each probability
    gap = np.abs(np.bincount(index, weights=y, minlength=bins) - np.bincount(index, weights=p, minlength=bins))
    # per bin: n_b * |mean(y_b) - mean(p_b)| = |sum(y_b) - sum(p_b)|; empty bins add 0
    return float(gap.sum() / p.size)


# ------------------------------------------------------------------------------------ file in/out
def calibration_path(model_folder: Path) -> Path:
    return Path(model_folder) / CALIBRATION_FILE


def load_calibration(model_folder: Path) -> Calibration | None:
    """The model folder's calibration; None when it has none; :class:`ModelFormatError` when damaged."""
    path = calibration_path(model_folder)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: cannot read the calibration ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFormatError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); re-run paraxl calibrate"
        ) from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return Calibration.from_json(data, str(path))


def save_calibration(model_folder: Path, calibration: Calibration) -> Path:
    """Write ``paraxl_calibration.json`` into ``model_folder`` atomically; return its path."""
    target = calibration_path(model_folder)
    text = json.dumps(calibration.to_json(), indent=2, allow_nan=False) + "\n"
    try:
        with atomic_path(target, suffix=".json") as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:  # a read-only model folder (a shared hub cache): one line, not a traceback
        raise InputError(f"cannot write the calibration into the model folder ({exc.strerror})", target) from None
    return target


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


# ------------------------------------------------------------------------------------ JSON parsing
class _Reader:
    """Typed access to a JSON document with errors that name the file and the key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.source}: bad calibration: {what}; re-run paraxl calibrate")

    def section(self, data: Mapping[str, object], key: str) -> Mapping[str, object]:
        value = data.get(key)
        if not isinstance(value, Mapping):
            raise self.fail(f"{key!r} must be an object")
        return value

    def number(self, data: Mapping[str, object], key: str, where: str = "") -> float:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(f"{where}{key!r} must be a finite number")
        return float(value)

    def integer(self, data: Mapping[str, object], key: str, where: str = "", minimum: int = 0) -> int:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(f"{where}{key!r} must be an integer >= {minimum}")
        return value

    def text(self, data: Mapping[str, object], key: str, where: str = "", optional: bool = True) -> str | None:
        value = data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{where}{key!r} must be a string")
        return value

    def numbers(self, data: Mapping[str, object], key: str, where: str) -> tuple[float, ...]:
        value = data.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(f"{where}{key!r} must be a non-empty list of numbers")
        return tuple(self.number({"v": item}, "v", f"{where}{key}: ") for item in value)


def _parse(read: _Reader, data: Mapping[str, object]) -> Calibration:
    if data.get("format") != FORMAT_NAME:
        raise read.fail(f"'format' must be {FORMAT_NAME!r}")
    version = read.integer(data, "version", minimum=1)
    if version > FORMAT_VERSION:
        raise ModelFormatError(f"{read.source}: calibration format {version} is newer than this paraxl reads")
    method = data.get("method")
    if method not in METHODS:
        raise read.fail(f"'method' must be one of {', '.join(METHODS)}")
    platt = read.section(data, "platt")
    isotonic = read.section(data, "isotonic")
    x = read.numbers(isotonic, "x_thresholds", "isotonic.")
    y = read.numbers(isotonic, "y_thresholds", "isotonic.")
    if len(x) != len(y):
        raise read.fail(f"isotonic has {len(x)} x but {len(y)} y thresholds")
    if any(b < a for a, b in pairwise(x)) or any(b < a for a, b in pairwise(y)):
        raise read.fail("isotonic thresholds must be ascending")
    if not all(0.0 <= value <= 1.0 for value in y):
        raise read.fail("isotonic y thresholds must lie in [0, 1]")
    held = read.section(data, "held_out")
    metrics = {}
    for name in METHODS:
        block = read.section(held, name)
        metrics[name] = HeldOutMetrics(
            *(read.number(block, key, f"held_out.{name}.") for key in ("log_loss", "brier", "ece"))
        )
    body = read.section(data, "data")
    files = body.get("files", [])
    if not isinstance(files, list) or not all(isinstance(item, Mapping) for item in files):
        raise read.fail("'data.files' must be a list of objects")
    data_files = tuple(
        DataFile(
            name=read.text(item, "name", "data.files.", optional=False) or "",
            sha256=read.text(item, "sha256", "data.files.", optional=False) or "",
            pairs=read.integer(item, "pairs", "data.files."),
        )
        for item in files
    )
    n_pairs = read.integer(body, "n_pairs", "data.", minimum=1)
    positives = read.integer(body, "positives", "data.")
    if positives > n_pairs:
        raise read.fail("'data.positives' exceeds 'data.n_pairs'")
    model = read.section(data, "model")
    return Calibration(
        threshold=read.number(data, "threshold"),
        method=str(method),
        platt_coef=read.number(platt, "coef", "platt."),
        platt_intercept=read.number(platt, "intercept", "platt."),
        isotonic_x=x,
        isotonic_y=y,
        threshold_accuracy=read.number(data, "threshold_accuracy"),
        held_out=metrics,
        folds=read.integer(held, "folds", "held_out.", minimum=2),
        seed=read.integer(held, "seed", "held_out."),
        n_pairs=n_pairs,
        positives=positives,
        model_fingerprint=read.text(model, "fingerprint", "model."),
        backend=read.text(model, "backend", "model."),
        prompt_name=read.text(model, "prompt_name", "model."),
        data_files=data_files,
        skipped_untranslated=read.integer(body, "skipped_untranslated", "data.")
        if "skipped_untranslated" in body
        else 0,
        created=read.text(data, "created"),
        paraxl_version=read.text(data, "paraxl_version"),
    )
