"""The ``paraxl`` command. Only this layer parses arguments, reads the environment and sets up logging."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from paraxl.cli.common import (
    BackendOption,
    ModelOption,
    app,
    cli_errors,
    console,
    errors,
    open_model,
    say,
)
from paraxl.errors import InputError
from paraxl.loading.specs import DEFAULT_MODEL

if TYPE_CHECKING:
    from paraxl.training.cross_encoder_config import CrossEncoderTrainConfig


@app.command()
@cli_errors
def models(
    prepare: Annotated[
        bool, typer.Option("--prepare", help="build the bundled models now (cached afterwards)")
    ] = False,
) -> None:
    """List the bundled offline models and whether they are built."""
    from paraxl.modeling.bundled import BUNDLED_MODELS, bundled_folder, prepare_bundled

    table = Table("model", "description", "status")
    for name, model in BUNDLED_MODELS.items():
        folder = bundled_folder(name)
        if prepare and not (folder / "modules.json").is_file():
            start = time.perf_counter()
            with console.status(f"building bundled:{name}"):
                folder = prepare_bundled(name)
            status = f"built in {time.perf_counter() - start:.1f} s: {folder}"
        elif (folder / "modules.json").is_file():
            status = f"ready: {folder}"
        else:
            status = "not built (paraxl models --prepare, or built on first use)"
        table.add_row(f"bundled:{name}", model.description, status)
    console.print(table)


@app.command()
@cli_errors
def encode(
    input_file: Annotated[Path, typer.Argument(help="texts: .txt (one per line), .tsv (header), .jsonl")],
    output: Annotated[Path, typer.Option("--output", "-o", help="embeddings: .npy or .parquet")],
    model: ModelOption = DEFAULT_MODEL,
    backend: BackendOption = "torch",
    column: Annotated[str | None, typer.Option(help="TSV column / JSONL key holding the text")] = None,
    input_format: Annotated[
        str | None, typer.Option("--format", help="txt, tsv or jsonl (default: by extension)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    prompt_name: Annotated[str | None, typer.Option(help="prompt to prefix (e5: query or passage)")] = None,
) -> None:
    """Embed every text of a file into a .npy matrix or a parquet table."""
    from paraxl.io.outputs import check_embedding_output, write_embeddings
    from paraxl.io.text_input import read_texts

    check_embedding_output(output)
    texts = read_texts(input_file, input_format, column)
    encoder = open_model(model, backend).encoder
    start = time.perf_counter()
    embeddings = encoder.encode(texts, batch_size=batch_size, prompt_name=prompt_name, show_progress=True)
    seconds = time.perf_counter() - start
    write_embeddings(output, embeddings, texts)
    say(
        f"wrote {embeddings.shape[0]} x {embeddings.shape[1]} embeddings to {output} "
        f"({embeddings.shape[0] / max(seconds, 1e-9):.1f} texts/s)"
    )


@app.command()
@cli_errors
def similarity(
    sentences: Annotated[list[str] | None, typer.Argument(help="two sentences to compare")] = None,
    pairs: Annotated[Path | None, typer.Option(help="TSV of pairs (sentence1/sentence2 columns, or 2 fields)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write a TSV instead of printing")] = None,
    model: ModelOption = DEFAULT_MODEL,
    backend: BackendOption = "torch",
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
) -> None:
    """Cosine similarity of two sentences, or of every pair in a TSV file."""
    from paraxl.io.outputs import check_output, write_tsv
    from paraxl.io.text_input import check_unicode, read_pairs
    from paraxl.retrieval import paired_cosine

    if (pairs is None) == (not sentences):
        raise InputError("give either two sentences or --pairs FILE")
    if output is not None:
        check_output(output)
    if pairs is not None:
        loaded = read_pairs(pairs)
        first, second = [p.first for p in loaded], [p.second for p in loaded]
    else:
        assert sentences is not None
        if len(sentences) != 2 or not all(s.strip() for s in sentences):
            raise InputError(f"expected two non-empty sentences, got {len(sentences)}")
        first, second = [check_unicode(sentences[0], "sentence 1")], [check_unicode(sentences[1], "sentence 2")]
    encoder = open_model(model, backend).encoder
    embedded = encoder.encode(first + second, batch_size=batch_size)
    scores = paired_cosine(embedded[: len(first)], embedded[len(first) :])
    if output is not None:
        write_tsv(
            output,
            ["sentence1", "sentence2", "cosine"],
            [(a, b, f"{s:.6f}") for a, b, s in zip(first, second, scores, strict=True)],
        )
        say(f"wrote {len(scores)} scores to {output}")
    elif pairs is None:
        console.print(f"{scores[0]:.4f}")
    else:
        sys.stdout.write("sentence1\tsentence2\tcosine\n")
        for a, b, s in zip(first, second, scores, strict=True):
            sys.stdout.write(f"{a}\t{b}\t{s:.6f}\n")


@app.command()
@cli_errors
def demo(
    model: ModelOption = DEFAULT_MODEL,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="benchmark data folder (default: $PARAXL_DATA_DIR)")
    ] = None,
    steps: Annotated[int, typer.Option(min=1, help="fine-tuning steps")] = 30,
    batch_size: Annotated[int, typer.Option(min=2, help="groups per step")] = 32,
    output: Annotated[Path, typer.Option("--output", "-o", help="where the fine-tuned model goes")] = Path("runs/demo"),
    similarities_only: Annotated[
        bool, typer.Option("--similarities-only", help="only show the similarity tables (no data needed)")
    ] = False,
) -> None:
    """The README's main job: similarities, then a short PAWS-X fine-tune with accuracy before and after."""
    from paraxl.cli.demo import run_demo, show_similarities
    from paraxl.demo.finetune import DemoSettings
    from paraxl.evaluation.session import resolve_data_dir

    if similarities_only:
        show_similarities(console, open_model(model, "torch").encoder)
        return
    from paraxl.io.outputs import check_output

    check_output(output, "folder")
    folder = resolve_data_dir(data_dir)
    run_demo(console, errors, model, folder, output, DemoSettings(steps=steps, batch_size=batch_size))


@app.command()
@cli_errors
def train(
    config: Annotated[Path, typer.Argument(help="training config (YAML); see configs/")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key.path=value overrides, e.g. loss.margin=0.2 max_steps=50")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="benchmark data folder (default: $PARAXL_DATA_DIR)")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="start over in an output_dir that holds a finished run")] = False,
) -> None:
    """Train a bi-encoder or, with ``model: {kind: cross_encoder}``, a cross-encoder (resumes
    automatically from the output folder's last checkpoint).

    Several processes (bi-encoder): ``torchrun --nproc-per-node N -m paraxl.cli.main train CONFIG``.
    """
    from paraxl.training.config_kinds import load_train_config
    from paraxl.training.cross_encoder_config import CrossEncoderTrainConfig
    from paraxl.training.trainer import train as run_training

    settings = load_train_config(config, overrides or [])
    if isinstance(settings, CrossEncoderTrainConfig):
        _train_cross_encoder(settings, data_dir, overwrite)
        return
    summary = run_training(settings, data_dir=data_dir, overwrite=overwrite, console=errors)
    line = f"{summary.steps} steps, {summary.examples} groups, {summary.examples_per_second:.1f} groups/s"
    if summary.first_validation is not None and summary.last_validation is not None:
        line += (
            f"; validation accuracy {summary.first_validation['accuracy']:.4f} -> "
            f"{summary.last_validation['accuracy']:.4f} (best {summary.best_metric:.4f} at step {summary.best_step})"
        )
    say(line)
    say(f"model: {Path(summary.output_dir) / 'final'}")


def _train_cross_encoder(settings: CrossEncoderTrainConfig, data_dir: Path | None, overwrite: bool) -> None:
    from paraxl.training.cross_encoder_run import train_cross_encoder_config

    summary = train_cross_encoder_config(settings, data_dir=data_dir, overwrite=overwrite, console=errors)
    rate = summary.examples_per_second
    line = f"{summary.steps} steps, {summary.epochs} epochs of {summary.pairs} pairs"
    line += f", {rate:.1f} pairs/s" if rate is not None else ""
    if summary.validation:
        epoch, best = max(summary.validation.items(), key=lambda item: item[1])
        accuracies = " -> ".join(f"{value:.4f}" for value in summary.validation.values())
        line += f"; validation accuracy by epoch {accuracies} (best {best:.4f} at epoch {epoch})"
    say(line)
    say(f"model: {Path(summary.output_dir) / 'final'}")


@app.command()
@cli_errors
def mine(
    source: Annotated[Path, typer.Argument(help="source sentences: .txt (one per line) or, with --ids, id<TAB>text")],
    target: Annotated[Path, typer.Argument(help="target sentences, same layout")],
    output: Annotated[Path, typer.Option("--output", "-o", help="scored pairs (.tsv)")],
    model: ModelOption = DEFAULT_MODEL,
    backend: BackendOption = "torch",
    ids: Annotated[bool, typer.Option("--ids", help="lines are id<TAB>text (the BUCC layout)")] = False,
    threshold: Annotated[
        float | None, typer.Option(help="keep pairs with ratio margin >= this (default: all 1-to-1 candidates)")
    ] = None,
    k: Annotated[int, typer.Option(min=1, help="nearest neighbours per side for the margin")] = 4,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
) -> None:
    """Mine translation pairs between two corpora (ratio margin, k nearest neighbours both ways, 1-to-1)."""
    from paraxl.decision.threshold import check_threshold
    from paraxl.evaluation.embeddings import CachedEmbedder
    from paraxl.evaluation.loaders.bucc import read_id_text_file
    from paraxl.io.outputs import check_output, write_tsv
    from paraxl.io.text_input import read_texts
    from paraxl.mining.bitext import mine_bitext

    if output.suffix != ".tsv":
        raise InputError("output must be a .tsv file", output)
    check_output(output)
    if threshold is not None:
        check_threshold(threshold, "--threshold", 0.0, math.inf, "a ratio margin", low_open=True)
    corpora = []
    for path in (source, target):
        if ids:
            corpora.append(read_id_text_file(path))
        else:
            texts = tuple(read_texts(path, "txt"))
            corpora.append((tuple(str(number) for number in range(1, len(texts) + 1)), texts))
    (source_ids, source_texts), (target_ids, target_texts) = corpora
    embedder = CachedEmbedder(open_model(model, backend).encoder, batch_size=batch_size, show_progress=True)
    pairs = mine_bitext(embedder, source_texts, target_texts, k=k, threshold=threshold)
    write_tsv(
        output,
        ["source_id", "target_id", "margin", "source", "target"],
        [
            [
                source_ids[p.source_index],
                target_ids[p.target_index],
                f"{p.score:.6f}",
                source_texts[p.source_index],
                target_texts[p.target_index],
            ]
            for p in pairs
        ],
    )
    say(f"wrote {len(pairs)} pairs to {output}")


# the other command modules register on the same app (imported for that side effect)
from paraxl.cli import (  # noqa: E402, F401
    cascade_command,
    corpus_command,
    eval_command,
    label_command,
    mine_command,
    onnx_commands,
    pi_commands,
    profiles_command,
    search_commands,
    serve_command,
    soup_command,
    table_command,
)

if __name__ == "__main__":  # pragma: no cover
    app()
