"""``paraxl serve``'s cross-encoders: ``--cascade RULE`` on /paraphrase, ``--rerank CE`` on /search, or
a cross-encoder served alone (``paraxl serve CE``: /similarity and /paraphrase, :func:`cross_encoder_service`).

Everything that can be refused is refused before any weights load: a bad rule file, a bi-encoder or
cross-encoder other than the weights the rule was fitted on (fingerprints), a ``--rerank`` model that
is not a cross-encoder, options that do not go together. ``--cross-backend`` runs the cross-encoders
on torch (default), their ONNX export or ``auto`` (:func:`on_cross_backend`), with the one-line note of
``pi --cascade`` when the rule was fitted on int8 scores and now gets fp32 ones, or the reverse. Then
the cross-encoder is loaded once, even when the rule and ``--rerank`` name the same one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text

from paraxl.cli.common import console, print_note, say, shown
from paraxl.errors import InputError

if TYPE_CHECKING:
    from paraxl.decision.decider import Decider
    from paraxl.decision.two_model_file import TwoModelRule
    from paraxl.loading.model import ResolvedModel
    from paraxl.serving.cross_encoding import PairRule, SerialPairScorer
    from paraxl.serving.cross_service import CrossEncoderService
    from paraxl.serving.limits import ServiceLimits


@dataclass(frozen=True)
class CrossSetup:
    """The served bi-encoder and the cross-encoders asked for, resolved and checked (no weights loaded)."""

    bi: ResolvedModel
    rule: TwoModelRule | None = None
    rule_cross: ResolvedModel | None = None
    rerank: ResolvedModel | None = None


def resolve_cross(
    served: ResolvedModel,
    *,
    threshold: float | None,
    cascade: Path | None,
    cross_encoder: str | None,
    rerank: str | None,
    index: Path | None,
) -> CrossSetup:
    """The cross-encoders of ``--cascade`` / ``--rerank`` beside ``served`` (MODEL, a bi-encoder, resolved by
    ``paraxl serve``); refuse other weights in one line."""
    from paraxl.cli.search_rerank import resolve_reranker
    from paraxl.decision.model_scorers import resolve_rule_models
    from paraxl.decision.rule_decider import stored_rule
    from paraxl.decision.two_model_file import load_rule

    if cascade is None and cross_encoder is not None:
        raise InputError("--cross-encoder goes with --cascade RULE_FILE")
    if cascade is not None and threshold is not None:
        raise InputError("--threshold does not apply with --cascade: the rule file holds the thresholds")
    if rerank is not None and index is None:
        raise InputError("--rerank re-scores search hits: it needs --index DIR")
    reranker = resolve_reranker(rerank) if rerank is not None else None
    if cascade is None:
        return CrossSetup(served, rerank=reranker)
    stored = load_rule(cascade)
    stored_rule(stored)  # a rule with bad numbers fails now, not at the first request
    models = resolve_rule_models(stored, served.spec, cross_encoder, served.backend)  # other weights: refused here
    return CrossSetup(models.bi, stored, models.cross, reranker)


def on_cross_backend(setup: CrossSetup, requested: str | None) -> CrossSetup:
    """``setup`` with its cross-encoders (the rule's and ``--rerank``'s) on ``--cross-backend`` ``requested``
    (None: torch; ``auto``: the checked fp32 export if there is one, said on stderr), and the note of
    :func:`~paraxl.decision.rule_decider.backend_note` when the rule was fitted on the other numeric kind."""
    from paraxl.decision.rule_decider import backend_note

    if requested is not None and setup.rule_cross is None and setup.rerank is None:
        raise InputError("--cross-backend goes with --cascade RULE_FILE or --rerank CROSS_ENCODER (the models it runs)")
    chosen = requested or "torch"  # checked where it is applied (cross_encoder_on)
    rule_cross = _on(setup.rule_cross, chosen) if setup.rule_cross is not None else None
    if setup.rule is not None and rule_cross is not None:
        note = backend_note(setup.rule, setup.bi.backend, rule_cross.backend)
        if note is not None:
            print_note(note)
    rerank = _on(setup.rerank, chosen) if setup.rerank is not None else None
    return replace(setup, rule_cross=rule_cross, rerank=rerank)


def _on(model: ResolvedModel, requested: str) -> ResolvedModel:
    """``model`` on the backend ``requested``; for ``auto``, which one and why, on stderr."""
    from paraxl.cli.cascade_command import cross_encoder_on

    moved, reason = cross_encoder_on(model, requested)
    if requested == "auto":
        say(f"cross-encoder {model.spec}: {reason}", stderr=True, style="dim")
    return moved


def paraphrase_decider(setup: CrossSetup, threshold: float | None) -> Decider | None:
    """The bi-encoder's calibration or ``--threshold`` (None: no /paraphrase, or a rule decides it)."""
    from paraxl.decision.decider import decider_for

    if setup.rule is not None:
        return None
    # the calibration (checked against the weights), overridden or replaced by --threshold; none: no /paraphrase
    return decider_for(
        setup.bi,
        threshold,
        required=False,
        other_weights_note="deciding at --threshold, no probabilities",
        note=print_note,
    )


def open_cross(setup: CrossSetup, max_wait: float) -> tuple[PairRule | None, SerialPairScorer | None]:
    """Load the cross-encoder(s): the rule's and the reranker (one model when both are the same weights)."""
    from paraxl.decision.rule_decider import stored_rule
    from paraxl.serving.cross_encoding import PairRule

    rule_cross = _load(setup.rule_cross, max_wait) if setup.rule_cross is not None else None
    reranker = None
    if setup.rerank is not None:
        same = rule_cross is not None and rule_cross.fingerprint == setup.rerank.weights_fingerprint
        reranker = rule_cross if same else _load(setup.rerank, max_wait)
    if setup.rule is None or rule_cross is None:
        return None, reranker
    return PairRule(stored_rule(setup.rule), setup.rule.bi.prompt_name, rule_cross), reranker


def _load(model: ResolvedModel, max_wait: float) -> SerialPairScorer:
    from paraxl.decision.model_scorers import cross_encoder_scorer
    from paraxl.serving.cross_encoding import SerialPairScorer

    with console.status(Text(f"loading the cross-encoder {shown(model.spec)} ({model.backend})")):
        scorer = cross_encoder_scorer(model)
    return SerialPairScorer(scorer, model.spec, model.weights_fingerprint, max_wait)


def cross_encoder_service(
    served: ResolvedModel,
    *,
    threshold: float | None,
    limits: ServiceLimits,
    max_wait: float,
    version: str,
    batch_size: int,
    bi_encoder_options: dict[str, object],
) -> CrossEncoderService:
    """MODEL is a cross-encoder: its service alone (/similarity, /paraphrase); the options that need a
    bi-encoder beside it (``bi_encoder_options``: name -> value, None when not given) refused in one line."""
    from paraxl.decision.decider import decider_for
    from paraxl.decision.model_scorers import cross_encoder_scorer
    from paraxl.decision.threshold import check_threshold
    from paraxl.serving.cross_encoding import SerialPairScorer
    from paraxl.serving.cross_service import CrossEncoderService

    given = [option for option, value in bi_encoder_options.items() if value is not None]
    if given:
        raise InputError(
            f"{served.spec} is a cross-encoder: served alone it answers /similarity and /paraphrase; "
            f"{', '.join(given)} need a bi-encoder (serve one with --rerank {served.spec} or --cascade RULE_FILE)"
        )
    if threshold is not None:  # a sigmoid score: a threshold outside [0, 1] would decide every pair alike
        check_threshold(threshold, "--threshold", 0.0, 1.0, "a cross-encoder probability")
    decider = decider_for(
        served,
        threshold,
        required=False,
        other_weights_note="deciding at --threshold, no probabilities",
        note=print_note,
    )
    with console.status(Text(f"loading the cross-encoder {shown(served.spec)} ({served.backend})")):
        scorer = cross_encoder_scorer(served, batch_size)  # pairs per forward pass
    cross = SerialPairScorer(scorer, served.spec, served.weights_fingerprint, max_wait)
    return CrossEncoderService(
        cross,
        model_name=served.spec,
        decider=decider,
        limits=limits,
        backend=served.backend,
        version=version,
        max_seq_length=scorer.max_length,
    )
