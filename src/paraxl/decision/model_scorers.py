"""A model spec to a :class:`~paraxl.decision.scorers.PairScorer`, whichever kind of model it is.

A bi-encoder scores a pair with the cosine of its two embeddings (:class:`CosineScorer`), a
cross-encoder with the sigmoid of its logit (:class:`~paraxl.modeling.cross_encoder.CrossEncoderScorer`);
which one a folder holds is read from its config files
(:func:`paraxl.modeling.cross_encoder.is_cross_encoder`). Also here: opening the two models of a
cascade/fusion rule file, refusing other weights *before* either model loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paraxl.decision.scorers import CosineScorer, CrossScorer, PairScorer
from paraxl.decision.two_model_file import ModelIdentity, TwoModelRule
from paraxl.errors import InputError
from paraxl.loading.model import LoadedModel, ResolvedModel, resolve_model
from paraxl.modeling.cross_encoder import PREDICT_BATCH, is_cross_encoder, open_cross_encoder_scorer

Loader = Callable[[ResolvedModel], LoadedModel]


def _load(model: ResolvedModel) -> LoadedModel:
    return model.load()


def is_cross_encoder_model(model: ResolvedModel) -> bool:
    """Whether ``model``'s folder holds a cross-encoder."""
    return is_cross_encoder(model.folder)


def cross_encoder_scorer(model: ResolvedModel, batch_size: int = PREDICT_BATCH) -> CrossScorer:
    """The scorer of a cross-encoder model on its backend: torch, or its ONNX export (``onnx``, ``onnx-int8``:
    :class:`~paraxl.inference.cross_encoder_onnx.OnnxCrossEncoderScorer`; made by ``paraxl export-onnx``)."""
    if not is_cross_encoder_model(model):
        raise InputError(
            f"{model.spec} is not a cross-encoder (a sentence embedder: its folder has no sequence-classification head)"
        )
    if model.backend == "torch":
        return open_cross_encoder_scorer(model.folder, batch_size)
    from paraxl.inference.cross_encoder_onnx import OnnxCrossEncoderScorer

    return OnnxCrossEncoderScorer.load(model.folder, model.backend, batch_size)


@dataclass(frozen=True)
class BiScorer:
    """A bi-encoder's cosine scorer and the prompt it embeds with ("" none)."""

    scorer: PairScorer
    prompt_name: str


def bi_encoder_scorer(
    model: ResolvedModel,
    batch_size: int = 64,
    prompt_name: str | None = None,
    *,
    load: Loader = _load,
    show_progress: bool | None = None,
) -> BiScorer:
    """The cosine scorer of a bi-encoder; ``prompt_name`` None: the model's default ("" when none).

    ``load`` loads the weights (the CLI passes its spinner).
    """
    if is_cross_encoder_model(model):
        raise InputError(f"{model.spec} is a cross-encoder; a bi-encoder (sentence embedder) is needed here")
    encoder = load(model).encoder
    used = prompt_name if prompt_name is not None else (encoder.settings.default_prompt_name or "")
    encoder.prompt_prefix(used)  # an unknown prompt fails here, before any work
    return BiScorer(CosineScorer(encoder, batch_size, prompt_name=used, show_progress=show_progress), used)


def identity(model: ResolvedModel, prompt_name: str | None = None) -> ModelIdentity:
    """What a rule file records of a model."""
    return ModelIdentity(model.spec, str(model.folder.resolve()), model.weights_fingerprint, prompt_name)


@dataclass(frozen=True)
class RuleModels:
    """The two models of a rule file, resolved and checked against its fingerprints (weights not loaded)."""

    bi: ResolvedModel
    cross: ResolvedModel


def resolve_rule_models(stored: TwoModelRule, bi_spec: str, cross_spec: str | None, backend: str) -> RuleModels:
    """Resolve the bi-encoder ``bi_spec`` and the cross-encoder (``cross_spec``, else the folder the rule
    file records) and refuse them unless they are the weights the rule was fitted on."""
    bi = resolve_model(bi_spec, backend)
    recorded = stored.cross.folder if Path(stored.cross.folder).is_dir() else stored.cross.spec
    cross = resolve_model(cross_spec if cross_spec is not None else recorded, "torch")
    stored.check_models(bi.weights_fingerprint, cross.weights_fingerprint, "the cascade/fusion rule")
    return RuleModels(bi, cross)
