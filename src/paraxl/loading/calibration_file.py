"""A model folder's calibration file (``paraxl_calibration.json``): the record and its reading/writing.

:class:`Calibration` is what ``paraxl calibrate`` fits (``paraxl.decision.calibration``) and what
``pi`` and ``serve`` decide with: a threshold on cosine plus a probability (Platt or isotonic).
It lives here, beside model loading, because it belongs to the model folder: a
:class:`~paraxl.loading.model.LoadedModel` carries its calibration. The fitting, and the rule of
when a calibration may be used (``paraxl.decision.decider``), stay in ``paraxl.decision``.

Everything is stored as plain JSON: Platt as coef + intercept in raw-score space, isotonic as its
breakpoints, rebuilt with :func:`numpy.interp` (identical to
``IsotonicRegression(out_of_bounds="clip").predict``). Nothing is pickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt

from paraxl.errors import InputError, ModelFormatError
from paraxl.io.atomic import write_json_atomic

CALIBRATION_FILE = "paraxl_calibration.json"
FORMAT_NAME = "paraxl-calibration"
FORMAT_VERSION = 1
METHODS = ("platt", "isotonic")  # order breaks ties in "auto": the simpler Platt first
SELECTION = "lowest held-out log loss (stratified K-fold, out-of-fold predictions pooled)"
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
    try:
        write_json_atomic(target, calibration.to_json(), indent=2, allow_nan=False)
    except OSError as exc:  # a read-only model folder (a shared hub cache): one line, not a traceback
        raise InputError(f"cannot write the calibration into the model folder ({exc.strerror})", target) from None
    return target


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
    x, y = _isotonic(read, read.section(data, "isotonic"))
    held = read.section(data, "held_out")
    metrics = {}
    for name in METHODS:
        block = read.section(held, name)
        metrics[name] = HeldOutMetrics(
            *(read.number(block, key, f"held_out.{name}.") for key in ("log_loss", "brier", "ece"))
        )
    body = read.section(data, "data")
    data_files = _data_files(read, body)
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


def _isotonic(read: _Reader, isotonic: Mapping[str, object]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The isotonic map's ``(x, y)`` thresholds: equal lengths, ascending, y in [0, 1]."""
    x = read.numbers(isotonic, "x_thresholds", "isotonic.")
    y = read.numbers(isotonic, "y_thresholds", "isotonic.")
    if len(x) != len(y):
        raise read.fail(f"isotonic has {len(x)} x but {len(y)} y thresholds")
    if any(b < a for a, b in pairwise(x)) or any(b < a for a, b in pairwise(y)):
        raise read.fail("isotonic thresholds must be ascending")
    if not all(0.0 <= value <= 1.0 for value in y):
        raise read.fail("isotonic y thresholds must lie in [0, 1]")
    return x, y


def _data_files(read: _Reader, body: Mapping[str, object]) -> tuple[DataFile, ...]:
    """The calibration data files recorded under ``data.files`` (name, sha256, pairs used)."""
    files = body.get("files", [])
    if not isinstance(files, list) or not all(isinstance(item, Mapping) for item in files):
        raise read.fail("'data.files' must be a list of objects")
    return tuple(
        DataFile(
            name=read.text(item, "name", "data.files.", optional=False) or "",
            sha256=read.text(item, "sha256", "data.files.", optional=False) or "",
            pairs=read.integer(item, "pairs", "data.files."),
        )
        for item in files
    )
