"""``paraxl calibrate`` and ``paraxl pi``: calibrated paraphrase decisions (library: ``paraxl.decision``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from paraxl.cli.common import BackendOption, app, cli_errors, console, load_resolved, open_model, print_note, say
from paraxl.errors import InputError
from paraxl.io.locks import folder_lock
from paraxl.loading.model import resolve_model

if TYPE_CHECKING:
    from paraxl.loading.calibration_file import Calibration

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
    from paraxl.decision.scorers import score_pairs
    from paraxl.io.hashing import file_sha256
    from paraxl.io.outputs import check_output
    from paraxl.loading.calibration_file import CALIBRATION_FILE, DataFile, save_calibration
    from paraxl.version import __version__

    if method not in ("auto", "platt", "isotonic"):
        raise InputError(f"unknown --method {method!r}; use auto, platt or isotonic")
    pairs = read_calibration_pairs(data)
    loaded = open_model(model, backend)
    check_output(loaded.folder / CALIBRATION_FILE)  # written last: fail before the pairs are scored
    encoder = loaded.encoder
    # the prompt actually applied, so that ``pi`` embeds the same way ("" = none)
    used_prompt = prompt_name if prompt_name is not None else (encoder.settings.default_prompt_name or "")
    encoder.prompt_prefix(used_prompt)  # an unknown prompt fails here, before the embedding work
    scores = score_pairs(encoder, pairs.first, pairs.second, batch_size, prompt_name=used_prompt, show_progress=True)
    fitted = fit_calibration(scores, pairs.labels, method=method, folds=folds, seed=seed)
    calibration = replace(
        fitted,
        model_fingerprint=loaded.weights_fingerprint,
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
    with folder_lock(loaded.folder, "model folder"):  # another calibrate or an ONNX export may be writing it
        target = save_calibration(loaded.folder, calibration)
    _print_report(calibration, folds)
    say(f"saved {target}")


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
        typer.Option(help="decide with this cosine threshold instead; works uncalibrated (probability: nan)"),
    ] = None,
    backend: BackendOption = "torch",
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
) -> None:
    """Paraphrase or not: cosine score, calibrated probability and label, for one pair or a TSV of pairs.

    Output TSV: the input columns, then score, probability (nan if uncalibrated), label (1 paraphrase, 0 not).
    """
    import numpy as np

    from paraxl.decision.decider import decider_for
    from paraxl.decision.pairs import decision_columns, decision_rows, read_pair_table
    from paraxl.decision.scorers import score_pairs
    from paraxl.decision.threshold import check_cosine_threshold
    from paraxl.io.outputs import check_output, tsv_field, write_tsv
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
    table = read_pair_table(pairs) if pairs is not None else None

    resolved = resolve_model(model, backend)
    # the model's calibration or --threshold, checked before the weights load
    decider = decider_for(resolved, threshold, note=print_note)
    if table is not None:
        first, second = table.first, table.second
    else:
        assert sentences is not None
        first, second = [sentences[0]], [sentences[1]]
    to_stdout = table is not None and output is None
    encoder = load_resolved(resolved, quiet=to_stdout).encoder
    # embed as the calibration did (None: the model's default prompt)
    scores = score_pairs(
        encoder, first, second, batch_size, prompt_name=decider.prompt_name, show_progress=not to_stdout
    )
    probabilities = decider.probability(scores)  # NaN without a calibration
    decided = decider.decide(scores)
    threshold = decider.threshold

    if table is None:
        probability = "nan (no calibration)" if np.isnan(probabilities[0]) else f"{probabilities[0]:.4f}"
        verdict = "paraphrase" if decided[0] else "not paraphrase"
        console.print(f"score        {scores[0]:.4f}", highlight=False)
        console.print(f"probability  {probability}", highlight=False)
        console.print(f"label        {verdict} (threshold {threshold:.4f})", highlight=False)
        return
    header = decision_columns(table.columns)
    rows = decision_rows(table, scores, probabilities, decided)
    if output is None:
        for fields in (header, *rows):
            sys.stdout.write("\t".join(tsv_field(field) for field in fields) + "\n")
        return
    write_tsv(output, header, rows)
    say(f"wrote {len(rows)} decisions to {output} ({int(decided.sum())} paraphrases at threshold {threshold:.4f})")
