"""The file of a two-model decision rule (a cascade or a score fusion): JSON, both models' fingerprints.

One format for both kinds (``paraxl cascade fit`` / ``paraxl cascade fuse`` write it, ``paraxl pi
--cascade`` reads it)::

    {"format": "paraxl-two-model-decision", "version": 1, "kind": "cascade" | "fusion",
     "models": {"bi": {spec, folder, fingerprint, prompt_name, backend}, "cross": {...}},
     "rule": {...numbers of the kind...}, "target": {...}, "validation": {...},
     "data": [{path, sha256, bytes}], "created": ..., "paraxl_version": ...}

The rule was fitted on these two models' scores; :meth:`TwoModelRule.check_models` refuses any
other weights (fingerprints: :func:`paraxl.io.hashing.model_folder_fingerprint`), since the band
and thresholds mean nothing on another model's scores. ``backend`` (optional: older files have none)
records the inference backend each model scored the fitting pairs on; the fingerprint is the weights'
on every backend. Written atomically; nothing is pickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paraxl.errors import InputError, ModelFormatError
from paraxl.io.atomic import write_json_atomic

FORMAT_NAME = "paraxl-two-model-decision"
FORMAT_VERSION = 1
KINDS = ("cascade", "fusion")
ROLES = ("bi", "cross")


@dataclass(frozen=True)
class ModelIdentity:
    """One model of the pair: the spec as given, its resolved folder, weights fingerprint, (bi-encoder)
    the prompt its cosines were computed with ("" none), and the backend that scored the fitting pairs
    (None: not recorded)."""

    spec: str
    folder: str
    fingerprint: str
    prompt_name: str | None = None
    backend: str | None = None


@dataclass(frozen=True)
class TwoModelRule:
    """A fitted cascade or fusion with its provenance (module docstring)."""

    kind: str
    bi: ModelIdentity
    cross: ModelIdentity
    rule: Mapping[str, float | list[float]]
    target: Mapping[str, float] = field(default_factory=dict)
    validation: Mapping[str, float | int] = field(default_factory=dict)
    data: list[dict[str, Any]] = field(default_factory=list)
    created: str | None = None
    paraxl_version: str | None = None

    def check_models(self, bi_fingerprint: str, cross_fingerprint: str, source: str = "the rule") -> None:
        """Raise :class:`ModelFormatError` unless both fingerprints are the ones the rule was fitted on."""
        for role, model, fingerprint in (
            ("bi-encoder", self.bi, bi_fingerprint),
            ("cross-encoder", self.cross, cross_fingerprint),
        ):
            if model.fingerprint != fingerprint:
                raise ModelFormatError(
                    f"{source} was fitted with the {role} {model.spec} (fingerprint {model.fingerprint[:12]}); "
                    f"the {role} given now has fingerprint {fingerprint[:12]}: other weights; "
                    "re-run `paraxl cascade fit` with these models"
                )

    def number(self, key: str) -> float:
        """A finite number of ``rule``; :class:`ModelFormatError` otherwise."""
        value = self.rule.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ModelFormatError(f"bad {self.kind} rule: {key!r} must be a finite number")
        return float(value)

    def numbers(self, key: str, length: int) -> list[float]:
        """A list of ``length`` finite numbers of ``rule``; :class:`ModelFormatError` otherwise."""
        value = self.rule.get(key)
        if not isinstance(value, list) or len(value) != length:
            raise ModelFormatError(f"bad {self.kind} rule: {key!r} must be a list of {length} numbers")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
            raise ModelFormatError(f"bad {self.kind} rule: {key!r} must hold finite numbers")
        return [float(v) for v in value]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "kind": self.kind,
            "models": {role: vars(model) for role, model in zip(ROLES, (self.bi, self.cross), strict=True)},
            "rule": dict(self.rule),
            "target": dict(self.target),
            "validation": dict(self.validation),
            "data": list(self.data),
            "created": self.created,
            "paraxl_version": self.paraxl_version,
        }


def save_rule(path: Path, rule: TwoModelRule) -> Path:
    """Write ``rule`` to ``path`` atomically (a reader sees the old file or the whole new one)."""
    try:
        write_json_atomic(path, rule.to_json(), indent=2, allow_nan=False)
    except OSError as exc:
        raise InputError(f"cannot write the rule ({exc.strerror})", path) from None
    return path


def load_rule(path: Path) -> TwoModelRule:
    """Read a rule file; :class:`InputError` when absent, :class:`ModelFormatError` naming what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such rule file (write one with `paraxl cascade fit`)", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: cannot read the rule ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{path}: not a paraxl cascade/fusion file (format {FORMAT_NAME!r} expected)")
    if data.get("version") != FORMAT_VERSION or data.get("kind") not in KINDS:
        raise ModelFormatError(f"{path}: unsupported version {data.get('version')!r} or kind {data.get('kind')!r}")
    models = data.get("models")
    if not isinstance(models, dict) or not all(isinstance(models.get(role), dict) for role in ROLES):
        raise ModelFormatError(f"{path}: 'models' must name the 'bi' and 'cross' models")
    identities = [_identity(models[role], path, role) for role in ROLES]
    rule = data.get("rule")
    if not isinstance(rule, dict):
        raise ModelFormatError(f"{path}: 'rule' must be an object")
    return TwoModelRule(
        kind=data["kind"],
        bi=identities[0],
        cross=identities[1],
        rule=rule,
        target=data.get("target") or {},
        validation=data.get("validation") or {},
        data=data.get("data") or [],
        created=data.get("created"),
        paraxl_version=data.get("paraxl_version"),
    )


def _identity(entry: dict[str, Any], path: Path, role: str) -> ModelIdentity:
    names = ("spec", "folder", "fingerprint")
    if not all(isinstance(entry.get(name), str) for name in names):
        raise ModelFormatError(f"{path}: models.{role} needs 'spec', 'folder' and 'fingerprint' strings")
    prompt, backend = entry.get("prompt_name"), entry.get("backend")
    return ModelIdentity(
        entry["spec"],
        entry["folder"],
        entry["fingerprint"],
        prompt if isinstance(prompt, str) else None,
        backend if isinstance(backend, str) else None,
    )
