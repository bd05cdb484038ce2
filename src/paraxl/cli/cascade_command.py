"""``paraxl cascade fit`` / ``paraxl cascade fuse``: a bi/cross-encoder rule fitted on validation pairs.

Library: :mod:`paraxl.decision.cascade`, :mod:`paraxl.decision.fusion`; the file they write is
:mod:`paraxl.decision.two_model_file`, read back by ``paraxl pi BI --cascade FILE``. ``--backend`` runs
the bi-encoder, ``--cross-backend`` the cross-encoder (:func:`cross_encoder_on`, also used by ``pi``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paraxl.cli.common import BackendOption, app, cli_errors, console, load_resolved, say
from paraxl.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from paraxl.decision.two_model_file import ModelIdentity
    from paraxl.loading.model import ResolvedModel

cascade_app = typer.Typer(
    help="Bi-encoder + cross-encoder decisions: a cascade (the cross-encoder sees only the pairs the "
    "bi-encoder is unsure about) or a score fusion, fitted on validation pairs.",
    no_args_is_help=True,
)
app.add_typer(cascade_app, name="cascade")

BiArgument = Annotated[str, typer.Argument(help="the bi-encoder: bundled:NAME, a model folder, or hub:ORG/NAME")]
CrossArgument = Annotated[str, typer.Argument(help="the cross-encoder: a model folder (sentence-transformers)")]
DataOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--data",
        help="labelled validation pairs (sentence1, sentence2, label; .tsv/.csv/.jsonl); "
        "repeatable. Default: the PAWS-X resplit validation split of --data-dir",
    ),
]
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="benchmark data (default: $PARAXL_DATA_DIR)")]
LanguagesOption = Annotated[str, typer.Option(help="PAWS-X languages, comma-separated")]
OutputOption = Annotated[Path, typer.Option("--output", "-o", help="the rule file to write (.json)")]
AUTO = "auto"
CROSS_BACKEND_HELP = (
    "the cross-encoder's backend: torch, onnx (its fp32 export, torch's scores to 1e-5), onnx-int8 or auto "
    "(onnx when a checked fp32 export exists, else torch); exports: `paraxl export-onnx CROSS`. "
    "The rule file stores the cross-encoder's weights fingerprint (the same on every backend) and this "
    "backend; `pi --cascade` refuses other weights, and scoring with an int8 export (its own export "
    "fingerprint, the same weights) a rule fitted on fp32 scores, or the reverse, is accepted with a one-line note"
)
CrossBackendOption = Annotated[
    str,
    typer.Option(
        "--cross-backend",
        help=CROSS_BACKEND_HELP + ". Default torch: the rule's band and thresholds are fitted on the reference scores",
    ),
]


@dataclass(frozen=True)
class _Scored:
    """Validation pairs scored by both models, with what the rule file records about them."""

    cosines: npt.NDArray[np.float64]
    cross_scores: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    bi: ModelIdentity
    cross: ModelIdentity
    data: list[dict[str, Any]]


def _validation_pairs(
    data: list[Path] | None, data_dir: Path | None, languages: str
) -> tuple[list[tuple[str, str]], npt.NDArray[np.int64], list[dict[str, Any]]]:
    """Pairs, labels and data-file records: the ``--data`` files, else PAWS-X resplit validation."""
    import numpy as np

    from paraxl.data.readers import parse_languages
    from paraxl.io.hashing import data_file_records

    if data:
        from paraxl.decision.pairs import read_calibration_pairs

        read = read_calibration_pairs(data)
        pairs = list(zip(read.first, read.second, strict=True))
        return pairs, read.labels, data_file_records(read.files)
    from paraxl.data.readers import PAWSX_LANGUAGES, pawsx_file
    from paraxl.evaluation.pawsx_protocol import read_labelled
    from paraxl.evaluation.session import resolve_data_dir

    folder = resolve_data_dir(data_dir)
    chosen = parse_languages(languages, PAWSX_LANGUAGES, "PAWS-X")
    # validation only: thresholds and the band are never fitted on the split they are scored on
    by_language = read_labelled(folder, "validation", chosen, "resplit")
    labelled = [pair for language in chosen for pair in by_language[language]]
    files = [pawsx_file(folder, "resplit", language, "validation") for language in chosen]
    labels = np.array([pair.label for pair in labelled], dtype=np.int64)
    return [(pair.first, pair.second) for pair in labelled], labels, data_file_records(files, folder)


def check_cross_backend(requested: str) -> None:
    """InputError naming the choices unless ``requested`` is an inference backend or ``auto``."""
    from paraxl.loading.backends import INFERENCE_BACKENDS

    if requested not in (*INFERENCE_BACKENDS, AUTO):
        raise InputError(f"unknown --cross-backend {requested!r}; use {', '.join((*INFERENCE_BACKENDS, AUTO))}")


def cross_encoder_on(model: ResolvedModel, requested: str) -> tuple[ResolvedModel, str]:
    """``model`` (a cross-encoder, resolved on any backend) on the backend ``requested`` (``auto``:
    :func:`paraxl.evaluation.cross_encoder_eval.cross_encoder_backend`), and a few words saying which."""
    from paraxl.evaluation.cross_encoder_eval import cross_encoder_backend
    from paraxl.loading.model import ResolvedModel

    check_cross_backend(requested)
    chosen, reason = cross_encoder_backend(model.folder, requested)
    return ResolvedModel(model.spec, model.folder, chosen), reason


def _score_both(
    bi_spec: str, cross_spec: str, pairs: list[tuple[str, str]], backends: tuple[str, str], batch_size: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], ModelIdentity, ModelIdentity]:
    """Both models' scores of ``pairs`` (``backends``: the bi-encoder's, the cross-encoder's as asked)
    and their identities, each with the backend that scored."""
    from dataclasses import replace

    from paraxl.decision.model_scorers import bi_encoder_scorer, cross_encoder_scorer, identity
    from paraxl.loading.model import resolve_model

    bi = resolve_model(bi_spec, backends[0])
    cross, reason = cross_encoder_on(resolve_model(cross_spec, "torch"), backends[1])
    cross_scorer = cross_encoder_scorer(cross)  # a wrong kind of model or a missing export fails before scoring
    bi_scorer = bi_encoder_scorer(bi, batch_size, load=load_resolved, show_progress=True)
    say(f"scoring {len(pairs)} validation pairs with both models (cross-encoder: {reason})", stderr=True, style="dim")
    cosines = bi_scorer.scorer.score(pairs)
    with console.status("cross-encoder"):
        cross_scores = cross_scorer.score(pairs)
    bi_identity = replace(identity(bi, bi_scorer.prompt_name), backend=bi.backend)
    return cosines, cross_scores, bi_identity, replace(identity(cross), backend=cross.backend)


def _scored(
    bi: str,
    cross: str,
    data: list[Path] | None,
    data_dir: Path | None,
    languages: str,
    backends: tuple[str, str],
    batch: int,
) -> _Scored:
    check_cross_backend(backends[1])  # before the pairs are read
    pairs, labels, records = _validation_pairs(data, data_dir, languages)
    cosines, cross_scores, bi_identity, cross_identity = _score_both(bi, cross, pairs, backends, batch)
    return _Scored(cosines, cross_scores, labels, bi_identity, cross_identity, records)


def _save(
    kind: str, scored: _Scored, rule: dict[str, Any], target: dict[str, float], validation: dict[str, Any], output: Path
) -> None:
    from paraxl.decision.two_model_file import TwoModelRule, save_rule
    from paraxl.version import __version__

    stored = TwoModelRule(
        kind=kind,
        bi=scored.bi,
        cross=scored.cross,
        rule=rule,
        target=target,
        validation=validation,
        data=scored.data,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        paraxl_version=__version__,
    )
    save_rule(output, stored)
    say(f"saved {output}")


def _check_output(output: Path) -> None:
    from paraxl.io.outputs import check_output

    if output.suffix.lower() != ".json":
        raise InputError("the rule file must be a .json file", output)
    check_output(output)


@cascade_app.command("fit")
@cli_errors
def fit(
    bi: BiArgument,
    cross: CrossArgument,
    output: OutputOption,
    # ranges checked here, before both models score every validation pair (minutes), not after
    budget: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="share of pairs the cross-encoder may see, e.g. 0.3")
    ] = None,
    target_accuracy: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="validation accuracy to reach with the fewest pairs sent, e.g. 0.77"),
    ] = None,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    languages: LanguagesOption = "en,de,es,fr,ja,ko,zh",
    backend: BackendOption = "torch",
    cross_backend: CrossBackendOption = "torch",
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
) -> None:
    """Fit a cascade: the bi-encoder's uncertainty band, sent to the cross-encoder, for a budget or an accuracy."""
    from paraxl.decision.cascade import fit_cascade, rule_fields, validation_fields

    if (budget is None) == (target_accuracy is None):
        raise InputError("give either --budget SHARE or --target-accuracy ACC")
    _check_output(output)
    scored = _scored(bi, cross, data, data_dir, languages, (backend, cross_backend), batch_size)
    fitted = fit_cascade(
        scored.cosines, scored.cross_scores, scored.labels, budget=budget, target_accuracy=target_accuracy
    )
    say(
        f"validation ({fitted.n_pairs} pairs): bi-encoder {fitted.bi_accuracy:.4f}, cross-encoder "
        f"{fitted.cross_accuracy:.4f}, cascade {fitted.accuracy:.4f} sending {fitted.budget:.1%} of pairs "
        f"(cosine band [{fitted.rule.lo:.4f}, {fitted.rule.hi:.4f}))"
    )
    _save("cascade", scored, dict(rule_fields(fitted.rule)), fitted.target, dict(validation_fields(fitted)), output)


@cascade_app.command("fuse")
@cli_errors
def fuse(
    bi: BiArgument,
    cross: CrossArgument,
    output: OutputOption,
    threshold: Annotated[str, typer.Option(help="half (P >= 0.5) or fitted (best out-of-fold cut)")] = "half",
    folds: Annotated[int, typer.Option(min=2)] = 5,
    seed: Annotated[int, typer.Option(min=0)] = 0,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    languages: LanguagesOption = "en,de,es,fr,ja,ko,zh",
    backend: BackendOption = "torch",
    cross_backend: CrossBackendOption = "torch",
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
) -> None:
    """Fit a score fusion: logistic regression on (cosine, cross-encoder logit); both models score every pair."""
    from paraxl.decision.fusion import fit_fusion, rule_fields, validation_fields

    if threshold not in ("half", "fitted"):
        raise InputError(f"unknown --threshold {threshold!r}; use half or fitted")
    _check_output(output)
    scored = _scored(bi, cross, data, data_dir, languages, (backend, cross_backend), batch_size)
    fitted = fit_fusion(
        scored.cosines,
        scored.cross_scores,
        scored.labels,
        threshold="fitted" if threshold == "fitted" else "half",
        folds=folds,
        seed=seed,
    )
    say(
        f"validation ({fitted.n_pairs} pairs): bi-encoder {fitted.bi_accuracy:.4f}, cross-encoder "
        f"{fitted.cross_accuracy:.4f} (each at its best threshold on these pairs), fusion "
        f"{fitted.held_out_accuracy:.4f} out of fold ({fitted.folds} folds), threshold {fitted.rule.threshold:.4f}"
    )
    target = {"threshold_fitted": 1.0 if threshold == "fitted" else 0.0}
    _save("fusion", scored, dict(rule_fields(fitted.rule)), target, dict(validation_fields(fitted)), output)
