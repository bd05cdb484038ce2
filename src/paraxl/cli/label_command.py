"""``paraxl label``: score a pairs file with a cross-encoder (a ``distill`` teacher file, resumable), and
``paraxl silver-pairs``: the pairs of the PAWS-X train split the trainer draws, for it to score."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml

from paraxl.cli.common import BackendOption, app, cli_errors, errors, say
from paraxl.errors import InputError

if TYPE_CHECKING:
    from paraxl.training.config import TrainConfig
    from paraxl.training.teacher_scores import DrawnPair, PairScope


@app.command("label")
@cli_errors
def label_command(
    cross_encoder: Annotated[str, typer.Argument(help="the cross-encoder: a model folder or hub:ORG/NAME[@REV]")],
    pairs_file: Annotated[
        Path, typer.Argument(help="TSV: sentence1 and sentence2 columns (others are kept), or two fields a row")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="TSV: sentence1, sentence2, score, then the input's other columns")
    ],
    backend: BackendOption = "torch",
    batch_size: Annotated[int, typer.Option(min=1, help="pairs per forward pass")] = 32,
    chunk_size: Annotated[
        int, typer.Option(min=1, help="pairs scored between two saves (a rerun resumes after the last save)")
    ] = 2048,
    max_length: Annotated[
        int | None, typer.Option(min=2, help="tokens per pair (default: the model's own; torch only)")
    ] = None,
) -> None:
    """Score every pair of a file with a cross-encoder (sigmoid probability): a teacher file for `distill.scores`.

    Resumable: a killed run continues after its last saved chunk when rerun with the same input,
    model, backend and max length (OUTPUT.partial and OUTPUT.partial.json); anything else is refused.
    """
    from paraxl.io.outputs import check_output
    from paraxl.loading.model import resolve_model
    from paraxl.training.pair_labels import cross_encoder_labeller, label_pairs

    check_output(output)
    labeller = cross_encoder_labeller(resolve_model(cross_encoder, backend), batch_size, max_length)
    began = time.perf_counter()

    def progress(done: int, total: int) -> None:
        say(f"{done}/{total} pairs ({time.perf_counter() - began:.0f} s)", stderr=True)

    summary = label_pairs(pairs_file, output, labeller, chunk_size, progress)
    resumed = f" ({summary.resumed} labelled by an earlier run)" if summary.resumed else ""
    say(f"wrote the scores of {summary.rows} pairs{resumed} to {output} in {time.perf_counter() - began:.0f} s")


@app.command("silver-pairs")
@cli_errors
def silver_pairs_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="TSV: sentence1, sentence2, languages, gold")],
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="benchmark data folder (default: $PARAXL_DATA_DIR)")
    ] = None,
    pairs: Annotated[
        str,
        typer.Option(
            "--pairs",
            help="translation (default): what data.translation_positives draws, a unit's texts with another "
            "language's paraphrases, translations and label-0 partners; in-unit: the pairs inside a unit; all",
        ),
    ] = "translation",
    languages: Annotated[str | None, typer.Option(help="comma-separated PAWS-X languages (default: all 7)")] = None,
    drawn_by: Annotated[
        Path | None,
        typer.Option(
            "--drawn-by",
            help="a training config or experiment table: only the pairs its runs draw (their steps replayed "
            "without a model), the pairs their distill reads; default: every pair the trainer can draw",
        ),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="with --drawn-by: comma-separated seeds (default: the config's or the table's)")
    ] = None,
) -> None:
    """The pairs the trainer draws from the PAWS-X resplit train split, each once, for `paraxl label` to score.

    `distill` reaches only drawn pairs: a file of translation pairs needs data.translation_positives > 0.
    With --drawn-by, only what those runs draw (one epoch of PAWS-X at translation_positives 0.5 draws
    ~7k translation pairs per seed out of 382,637 possible): minutes of cross-encoder time, not hours.
    """
    from paraxl.evaluation.session import resolve_data_dir
    from paraxl.io.outputs import check_output
    from paraxl.training.teacher_scores import PAIR_SCOPES, write_pairs

    scope = next((name for name in PAIR_SCOPES if name == pairs), None)
    if scope is None:
        raise InputError(f"--pairs {pairs!r}: use one of {', '.join(PAIR_SCOPES)}")
    if drawn_by is None and seeds is not None:
        raise InputError("--seeds chooses the runs of --drawn-by; give --drawn-by too")
    if drawn_by is not None and languages is not None:
        raise InputError("--languages picks PAWS-X languages to list; with --drawn-by the config's data decide")
    check_output(output)
    if drawn_by is None:
        found, where = _every_pair(resolve_data_dir(data_dir), languages, scope)
    else:
        from paraxl.training.draws import pairs_drawn_by

        configs = _drawing_configs(drawn_by, seeds)
        reads = any(task.data.reads_data_dir for config in configs for task in config.task_list())
        folder = resolve_data_dir(data_dir) if reads else None
        with errors.status(f"replaying the steps of {len(configs)} run(s) of {drawn_by}"):
            found = pairs_drawn_by(configs, folder, scope)
        where = f"drawn by {len(configs)} run(s) of {drawn_by} (seeds {', '.join(str(c.seed) for c in configs)})"
    write_pairs(output, found)
    say(f"wrote {len(found)} {pairs} pairs {where} to {output}")


def _every_pair(data_dir: Path, languages: str | None, scope: PairScope) -> tuple[list[DrawnPair], str]:
    """Every pair of ``scope`` the trainer can draw from the PAWS-X resplit train split; what it read."""
    from paraxl.data.readers import PAWSX_LANGUAGES, parse_languages
    from paraxl.training.data_config import PawsxData
    from paraxl.training.data_loading import load_training_data
    from paraxl.training.teacher_scores import drawn_pairs

    chosen = parse_languages(languages) if languages is not None else PAWSX_LANGUAGES
    with errors.status("reading the PAWS-X resplit train split"):
        data = load_training_data(PawsxData(languages=list(chosen)), data_dir)
    return drawn_pairs(data.units, scope), f"of {len(data.units)} units ({', '.join(chosen)})"


def _drawing_configs(path: Path, seeds: str | None) -> list[TrainConfig]:
    """The bi-encoder training configs of ``path``: a training config (at each of ``seeds``, else its
    own seed) or an experiment table (each variant paraxl trains, at ``seeds`` or the table's)."""
    from paraxl.experiments.command import parse_seeds
    from paraxl.experiments.tables import load_table
    from paraxl.training.config import TrainConfig, load_config
    from paraxl.training.config_kinds import load_train_config

    chosen = sorted(parse_seeds(seeds, path)) if seeds else None
    if _is_table(path):
        table = load_table(path)
        unused = Path("unused")  # a dry run writes nothing
        variants = [variant for variant in table.spec.variants if variant.trainer == "paraxl"]
        return [table.config(v, seed, unused) for v in variants for seed in (chosen or table.seeds(v))]
    config = load_train_config(path)
    if not isinstance(config, TrainConfig):
        raise InputError("a cross-encoder config trains on gold pairs: it draws nothing to label", path)
    return [load_config(path, [f"seed={seed}"]) for seed in chosen] if chosen else [config]


def _is_table(path: Path) -> bool:
    """Whether ``path`` holds an experiment table (a mapping with ``variants``) rather than a config."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the config reader says what is wrong with it
    return isinstance(raw, dict) and "variants" in raw
