"""The README's main job: cross-lingual similarities, then a short PAWS-X fine-tune scored before and after."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from paraxl.demo.finetune import DemoResult, DemoSettings, Scores, demo_config, held_out_pairs, score
from paraxl.loading.backends import load_encoder
from paraxl.loading.fastest import open_fastest_identical
from paraxl.loading.specs import resolve_model_folder
from paraxl.losses.phases import PhaseClock
from paraxl.modeling.protocol import SentenceEncoder
from paraxl.retrieval import cosine_matrix, paired_cosine

# One statement in six languages, and an unrelated one.
SENTENCES = {
    "en": "The museum opens at nine in the morning.",
    "de": "Das Museum öffnet um neun Uhr morgens.",
    "fr": "Le musée ouvre à neuf heures du matin.",
    "ja": "博物館は朝九時に開館します。",
    "ar": "يفتح المتحف في التاسعة صباحاً.",
    "ru": "Музей открывается в девять утра.",
    "en*": "My brother plays the guitar in a band.",
}

# PAWS-style pairs: high word overlap; only the first is a paraphrase.
PAWS_STYLE = [
    (
        "Flights from New York to Florida are cheap in May.",
        "In May, flights from New York to Florida are cheap.",
        "paraphrase",
    ),
    ("Flights from New York to Florida are cheap in May.", "Flights from Florida to New York are cheap in May.", "not"),
    ("The cat chased the dog.", "The dog chased the cat.", "not"),
]


def show_similarities(console: Console, encoder: SentenceEncoder) -> None:
    """Translations against an unrelated sentence, and the word-order pairs PAWS-X is made of."""
    start = time.perf_counter()
    names = list(SENTENCES)
    embeddings = encoder.encode(list(SENTENCES.values()))
    scores = cosine_matrix(embeddings, embeddings)
    table = Table(title="cosine similarity across languages (en* is an unrelated sentence)")
    table.add_column("")
    for name in names:
        table.add_column(name, justify="right")
    for row, name in enumerate(names):
        table.add_row(name, *(f"{scores[row, col]:.3f}" for col in range(len(names))))
    console.print(table)
    console.print(
        word_order_table(encoder, "word-order pairs (PAWS-style): what paraphrase identification must tell apart")
    )
    console.print(
        "Translations score far above the unrelated sentence, but word-order swaps score almost as high as "
        "paraphrases: the off-the-shelf model cannot tell them apart, which is what training fixes."
    )
    console.print(f"{encoder.dimension}-dim embeddings, {time.perf_counter() - start:.2f} s", style="dim")


def word_order_table(encoder: SentenceEncoder, title: str) -> Table:
    first = encoder.encode([a for a, _, _ in PAWS_STYLE])
    second = encoder.encode([b for _, b, _ in PAWS_STYLE])
    pairs = Table(title=title)
    for column in ("sentence 1", "sentence 2", "gold", "cosine"):
        pairs.add_column(column)
    for (a, b, gold), cosine in zip(PAWS_STYLE, paired_cosine(first, second), strict=True):
        pairs.add_row(a, b, gold, f"{cosine:.3f}")
    return pairs


class Phases(PhaseClock):
    """Wall seconds per phase of the demo, in order (printed at the end: where its minutes go)."""

    def line(self) -> str:
        return ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.seconds.items())


def run_demo(
    console: Console,
    log: Console,
    model: str,
    data_dir: Path,
    output_dir: Path,
    settings: DemoSettings,
) -> DemoResult:
    """Similarities, accuracy before, a short fine-tune, accuracy after; prints as it goes.

    The off-the-shelf model is scored on ONNX Runtime fp32 when it has a checked export (bundled
    models: made once in paraxl's cache, its embeddings equal torch's to <= 1e-5), which encodes
    the 3,500 scoring texts about twice as fast; the fine-tuned model is scored on torch, since
    exporting it would cost about what it saves. Same pairs, same threshold protocol either way.
    """
    from paraxl.training.trainer import train

    began = time.perf_counter()
    phases = Phases()
    with phases("load model"):
        encoder, choice = open_fastest_identical(resolve_model_folder(model), export_user_folder=False)
    log.print(f"scoring the off-the-shelf model on {choice.reason}", style="dim", highlight=False)
    with phases("similarities"):
        show_similarities(console, encoder)
    pairs = held_out_pairs(data_dir, settings)
    n_fit = sum(len(rows) for rows in pairs.validation.values())
    n_test = sum(len(rows) for rows in pairs.test.values())
    console.print(
        f"\nFine-tuning on the PAWS-X resplit train split ({settings.steps} steps x {settings.batch_size} groups, "
        f"additive-margin softmax m=0.3 s=20, label-0 partners as hard negatives, word embeddings frozen). "
        f"Scored on {n_test} held-out test pairs (7 languages) at the threshold fitted on {n_fit} validation pairs.",
        highlight=False,
    )
    with phases("score before"):
        before = score(encoder, pairs)
    console.print(f"before: mean test accuracy {before.mean:.2%} ({before.seconds:.0f} s to score)", highlight=False)
    del encoder
    with phases("train"):
        summary = train(demo_config(model, output_dir, settings), data_dir=data_dir, overwrite=True, console=log)
        shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)  # the demo keeps only final/
    with phases("load tuned"):
        tuned = load_encoder(str(output_dir / "final"), "torch")
    with phases("score after"):
        after = score(tuned, pairs)
    console.print(accuracy_table(before, after))
    console.print(word_order_table(tuned, "the same word-order pairs after fine-tuning"))
    console.print(
        f"training: {summary.train_seconds:.0f} s, {summary.examples_per_second:.1f} groups/s; "
        f"demo total {time.perf_counter() - began:.0f} s ({phases.line()}). Fine-tuned model: {output_dir / 'final'}\n"
        f"Full held-out evaluation: paraxl eval {output_dir / 'final'} --tasks pawsx,align --data-dir {data_dir}",
        highlight=False,
    )
    return DemoResult(before, after, summary, output_dir / "final")


def accuracy_table(before: Scores, after: Scores) -> Table:
    table = Table(title="PAWS-X resplit, held-out test sample: accuracy before and after the fine-tune")
    for column in ("language", "before", "after", "change"):
        table.add_column(column, justify="right" if column != "language" else "left")
    for language, old in before.per_language.items():
        new = after.per_language[language]
        table.add_row(language, f"{old:.1%}", f"{new:.1%}", f"{(new - old) * 100:+.1f}")
    table.add_row("mean", f"{before.mean:.2%}", f"{after.mean:.2%}", f"{(after.mean - before.mean) * 100:+.2f}")
    table.add_row("threshold", f"{before.threshold:.3f}", f"{after.threshold:.3f}", "")
    return table
