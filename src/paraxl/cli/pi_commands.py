"""``paraxl calibrate`` and ``paraxl pi``: calibrated paraphrase decisions (library: ``paraxl.decision``)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from paraxl.cli.common import BackendOption, app, cli_errors, console, errors, load_resolved, print_note, say
from paraxl.errors import InputError
from paraxl.io.locks import folder_lock
from paraxl.loading.model import resolve_model

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from paraxl.decision.pairs import PairTable
    from paraxl.decision.scorers import PairScorer
    from paraxl.loading.calibration_file import Calibration
    from paraxl.loading.model import ResolvedModel

DECIDED_BY = "decided_by"
ModelArgument = Annotated[str, typer.Argument(help="bundled:NAME, a model folder, or hub:ORG/NAME[@REV]")]


@app.command("calibrate")
@cli_errors
def calibrate(
    model: ModelArgument,
    data: Annotated[
        list[Path],
        typer.Option("--data", help="labeled pairs: sentence1, sentence2, label 0/1 (.tsv, .csv, .jsonl); repeatable"),
    ],
    method: Annotated[str, typer.Option(help="auto (lower held-out log loss), platt or isotonic")] = "auto",
    folds: Annotated[int, typer.Option(min=2, help="stratified folds for the held-out metrics")] = 5,
    seed: Annotated[int, typer.Option(min=0, help="seed of the fold shuffle")] = 0,
    backend: BackendOption = "torch",
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    prompt_name: Annotated[
        str | None, typer.Option(help="prompt to prefix both sentences (default: the model's; '' for none)")
    ] = None,
) -> None:
    """Fit a decision threshold and a probability calibration on labeled pairs; save them in the model folder.

    The model then answers ``paraxl pi`` with a score, a probability and a label.
    """
    from dataclasses import replace
    from datetime import UTC, datetime

    from paraxl.decision.calibration import fit_calibration
    from paraxl.decision.pairs import read_calibration_pairs
    from paraxl.io.hashing import file_sha256
    from paraxl.io.outputs import check_output
    from paraxl.loading.calibration_file import CALIBRATION_FILE, DataFile, save_calibration
    from paraxl.version import __version__

    if method not in ("auto", "platt", "isotonic"):
        raise InputError(f"unknown --method {method!r}; use auto, platt or isotonic")
    pairs = read_calibration_pairs(data)
    resolved = resolve_model(model, backend)
    check_output(resolved.folder / CALIBRATION_FILE)  # written last: fail before the pairs are scored
    # the prompt actually applied, so that ``pi`` embeds the same way ("" = none; a cross-encoder has none)
    scorer, used_prompt = _pair_scorer(resolved, batch_size, prompt_name, quiet=False)
    scores = scorer.score(list(zip(pairs.first, pairs.second, strict=True)))
    fitted = fit_calibration(scores, pairs.labels, method=method, folds=folds, seed=seed)
    calibration = replace(
        fitted,
        model_fingerprint=resolved.weights_fingerprint,
        backend=backend,
        prompt_name=used_prompt,
        data_files=tuple(
            DataFile(str(path), file_sha256(path), count)
            for path, count in zip(pairs.files, pairs.per_file, strict=True)
        ),
        skipped_untranslated=pairs.skipped_untranslated,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        paraxl_version=__version__,
    )
    with folder_lock(resolved.folder, "model folder"):  # another calibrate or an ONNX export may be writing it
        target = save_calibration(resolved.folder, calibration)
    _print_report(calibration, folds)
    say(f"saved {target}")


def _pair_scorer(
    model: ResolvedModel, batch_size: int, prompt_name: str | None, *, quiet: bool
) -> tuple[PairScorer, str | None]:
    """The model's pair scorer and the prompt it embeds with: a cross-encoder's sigmoid scores (no
    prompt: ``""``), else the bi-encoder's cosines (``prompt_name`` None: the model's default)."""
    from paraxl.decision.model_scorers import bi_encoder_scorer, cross_encoder_scorer, is_cross_encoder_model

    if is_cross_encoder_model(model):
        if prompt_name:
            raise InputError(f"{model.spec} is a cross-encoder: it reads raw pairs, without a prompt")
        with (errors if quiet else console).status(f"loading {model.spec} (cross-encoder)"):
            return cross_encoder_scorer(model, batch_size), ""
    scorer = bi_encoder_scorer(
        model, batch_size, prompt_name, load=lambda m: load_resolved(m, quiet=quiet), show_progress=not quiet
    )
    return scorer.scorer, scorer.prompt_name


def _print_report(calibration: Calibration, asked_folds: int) -> None:
    table = Table("method", "held-out log loss", "held-out Brier", "held-out ECE", title="probability calibration")
    for name, metrics in calibration.held_out.items():
        label = f"{name} (chosen)" if name == calibration.method else name
        table.add_row(label, f"{metrics.log_loss:.4f}", f"{metrics.brier:.4f}", f"{metrics.ece:.4f}")
    console.print(table)
    negatives = calibration.n_pairs - calibration.positives
    lines = [
        f"pairs: {calibration.n_pairs} ({calibration.positives} paraphrases, {negatives} not)",
        f"held-out folds: {calibration.folds}"
        + (f" (asked {asked_folds}; the smaller class has too few pairs)" if calibration.folds < asked_folds else ""),
        f"threshold: {calibration.threshold:.6f} (accuracy {calibration.threshold_accuracy:.4f} on these pairs; "
        f"majority class {calibration.majority_rate:.4f})",
    ]
    if calibration.skipped_untranslated:
        lines.append(f"left out: {calibration.skipped_untranslated} pair(s) with the untranslated placeholder NS")
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)


@dataclass(frozen=True)
class _Decisions:
    """What ``pi`` prints per pair (n,): score, probability (NaN: none), label, and who decided (None: one model)."""

    scores: npt.NDArray[np.float64]
    probabilities: npt.NDArray[np.float64]
    labels: npt.NDArray[np.bool_]
    rule: str  # how the label was decided, for the summary line
    decided_by: list[str] | None = None


@app.command("pi")
@cli_errors
def paraphrase_identification(
    model: ModelArgument,
    sentences: Annotated[list[str] | None, typer.Argument(help="two sentences (any languages)")] = None,
    pairs: Annotated[
        Path | None, typer.Option(help="TSV of pairs (sentence1/sentence2 columns, or 2 fields); columns are kept")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the TSV here instead of stdout")] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="decide with this score threshold instead; works uncalibrated (probability: nan)"),
    ] = None,
    cascade: Annotated[
        Path | None,
        typer.Option(
            help="a rule file of `paraxl cascade fit/fuse`: MODEL is its bi-encoder; a decided_by column "
            "says which model decided each pair (bi, cross or fusion)"
        ),
    ] = None,
    cross_encoder: Annotated[
        str | None, typer.Option(help="with --cascade: the cross-encoder (default: the folder the rule file names)")
    ] = None,
    backend: BackendOption = "torch",
    cross_backend: Annotated[
        str | None,
        typer.Option(
            "--cross-backend",
            help="with --cascade: the cross-encoder's backend, torch (default), onnx, onnx-int8 or auto. The rule "
            "file stores the weights fingerprint (the same on every backend; other weights are refused) and the "
            "backend it was fitted on; an int8 export (its own export fingerprint, the same weights) is accepted "
            "for a rule fitted on fp32 scores, or the reverse, with a one-line note on stderr",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
) -> None:
    """Paraphrase or not: score, calibrated probability and label, for one pair or a TSV of pairs.

    MODEL is a bi-encoder (score: cosine) or a cross-encoder folder (score: its sigmoid); with
    ``--cascade`` the bi-encoder of a cascade or fusion rule. Output TSV: the input columns, then
    score, probability (nan if uncalibrated), label (1 paraphrase, 0 not) and, with --cascade, decided_by.
    """
    from paraxl.decision.pairs import read_pair_table
    from paraxl.decision.threshold import check_cosine_threshold
    from paraxl.io.outputs import check_output
    from paraxl.io.text_input import check_unicode

    if (pairs is None) == (not sentences):
        raise InputError("give either two sentences or --pairs FILE")
    if output is not None and pairs is None:
        raise InputError("--output needs --pairs FILE (one pair is printed)")
    if output is not None and output.suffix.lower() != ".tsv":
        raise InputError("output must be a .tsv file", output)
    if output is not None:
        check_output(output)
    if sentences and (len(sentences) != 2 or not all(s.strip() for s in sentences)):
        raise InputError(f"expected two non-empty sentences, got {len(sentences)}")
    for number, sentence in enumerate(sentences or (), start=1):
        check_unicode(sentence, f"sentence {number}")
    if threshold is not None:
        check_cosine_threshold(threshold)
    if cascade is None and cross_encoder is not None:
        raise InputError("--cross-encoder goes with --cascade RULE_FILE")
    if cascade is None and cross_backend is not None:
        raise InputError("--cross-backend goes with --cascade RULE_FILE (a cross-encoder MODEL runs on --backend)")
    if cascade is not None and threshold is not None:
        raise InputError("--threshold does not apply with --cascade: the rule file holds the thresholds")
    table = read_pair_table(pairs) if pairs is not None else None
    if table is not None:
        pair_list = list(zip(table.first, table.second, strict=True))
    else:
        assert sentences is not None
        pair_list = [(sentences[0], sentences[1])]
    quiet = table is not None and output is None  # stdout is data: spinners go to stderr
    if cascade is not None:
        backends = (backend, cross_backend or "torch")
        decisions = _rule_decisions(cascade, model, cross_encoder, backends, batch_size, pair_list, quiet)
    else:
        decisions = _model_decisions(model, threshold, backend, batch_size, pair_list, quiet)
    _emit(decisions, table, output)


def _model_decisions(
    model: str, threshold: float | None, backend: str, batch_size: int, pairs: list[tuple[str, str]], quiet: bool
) -> _Decisions:
    """One model decides: a bi-encoder's cosine or a cross-encoder's score, at its calibration or ``threshold``."""
    from paraxl.decision.decider import decider_for
    from paraxl.decision.threshold import check_threshold
    from paraxl.modeling.cross_encoder import is_cross_encoder

    resolved = resolve_model(model, backend)
    if threshold is not None and is_cross_encoder(resolved.folder):
        # a cross-encoder's score is a sigmoid: a threshold outside [0, 1] would decide every pair alike
        check_threshold(threshold, "--threshold", 0.0, 1.0, "a cross-encoder probability")
    # the model's calibration or --threshold, checked before the weights load
    decider = decider_for(resolved, threshold, note=print_note)
    # score as the calibration did (None: the model's default prompt)
    scorer, _ = _pair_scorer(resolved, batch_size, decider.prompt_name, quiet=quiet)
    scores = scorer.score(pairs)
    decided = decider.decide(scores)
    return _Decisions(scores, decider.probability(scores), decided, f"threshold {decider.threshold:.4f}")


def _rule_decisions(
    path: Path,
    bi: str,
    cross: str | None,
    backends: tuple[str, str],
    batch_size: int,
    pairs: list[tuple[str, str]],
    quiet: bool,
) -> _Decisions:
    """A cascade (the cross-encoder scores the in-band pairs only) or a fusion (both score every pair),
    through :class:`~paraxl.decision.rule_decider.RuleDecider` (as the service decides); ``backends``:
    the bi-encoder's and the cross-encoder's (``auto`` allowed)."""
    from paraxl.cli.cascade_command import check_cross_backend, cross_encoder_on
    from paraxl.decision.cascade import CascadeRule
    from paraxl.decision.model_scorers import bi_encoder_scorer, cross_encoder_scorer, resolve_rule_models
    from paraxl.decision.rule_decider import RuleDecider, backend_note, stored_rule
    from paraxl.decision.two_model_file import load_rule

    check_cross_backend(backends[1])
    stored = load_rule(path)
    rule = stored_rule(stored)  # a bad rule fails early
    models = resolve_rule_models(stored, bi, cross, backends[0])  # other weights: refused before loading
    cross_model, reason = cross_encoder_on(models.cross, backends[1])
    note = backend_note(stored, backends[0], cross_model.backend)
    if note is not None:
        print_note(note)
    bi_scorer = bi_encoder_scorer(
        models.bi,
        batch_size,
        stored.bi.prompt_name,
        load=lambda m: load_resolved(m, quiet=quiet),
        show_progress=not quiet,
    ).scorer
    with (errors if quiet else console).status(f"loading the cross-encoder ({reason})"):
        cross_scorer = cross_encoder_scorer(cross_model)
    decided = RuleDecider(rule, bi_scorer, cross_scorer).decide(pairs)
    if isinstance(rule, CascadeRule):
        summary = f"the cascade's thresholds, cross-encoder on {decided.cross_share:.1%} of pairs"
    else:
        summary = f"fused P >= {rule.threshold:.4f}"
    return _Decisions(decided.scores, decided.probabilities, decided.labels, summary, decided.decided_by)


def _emit(decisions: _Decisions, table: PairTable | None, output: Path | None) -> None:
    """One pair: a few lines on the console; a table: TSV rows to ``output`` or stdout."""
    import numpy as np

    from paraxl.decision.pairs import decision_columns, decision_rows
    from paraxl.io.outputs import tsv_field, write_tsv

    if table is None:
        probability = decisions.probabilities[0]
        verdict = "paraphrase" if decisions.labels[0] else "not paraphrase"
        console.print(f"score        {decisions.scores[0]:.4f}", highlight=False)
        missing = "nan (a cascade gives none)" if decisions.decided_by is not None else "nan (no calibration)"
        console.print(f"probability  {missing if np.isnan(probability) else f'{probability:.4f}'}", highlight=False)
        console.print(f"label        {verdict} ({decisions.rule})", highlight=False)
        if decisions.decided_by is not None:
            console.print(f"decided by   {decisions.decided_by[0]}", highlight=False)
        return
    header = decision_columns(table.columns)
    rows = decision_rows(table, decisions.scores, decisions.probabilities, decisions.labels)
    if decisions.decided_by is not None:
        header = [f"input_{name}" if name == DECIDED_BY else name for name in header] + [DECIDED_BY]
        rows = [[*row, who] for row, who in zip(rows, decisions.decided_by, strict=True)]
    if output is None:
        for fields in (header, *rows):
            sys.stdout.write("\t".join(tsv_field(field) for field in fields) + "\n")
        return
    write_tsv(output, header, rows)
    say(f"wrote {len(rows)} decisions to {output} ({int(decisions.labels.sum())} paraphrases at {decisions.rule})")
