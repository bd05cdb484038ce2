"""``paraxl label`` (training.pair_labels, io.pairs_stream) and ``paraxl silver-pairs`` (training.teacher_scores).

Oracles: ``CrossEncoder.predict`` for the scores, an uninterrupted run for a resumed one (byte for
byte), a plain loop over the TSV files for the silver pairs, and the trainer's own draws
(``pair_layout`` with translation positives) for what the silver file must cover.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from rich.console import Console
from sentence_transformers.cross_encoder import CrossEncoder
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.data.readers import read_pawsx
from paraxl.decision.scorers import PairScorer
from paraxl.errors import InputError
from paraxl.io.pairs_stream import scan_pairs
from paraxl.loading.model import resolve_model
from paraxl.training.config import TrainConfig
from paraxl.training.distillation import TeacherScores
from paraxl.training.draws import pairs_drawn_by
from paraxl.training.layout import StepLayout, TranslationPositives, pair_layout
from paraxl.training.pair_labels import Labeller, cross_encoder_labeller, label_pairs
from paraxl.training.teacher_scores import DrawnPair, drawn_pairs, translation_pairs
from paraxl.training.trainer import train

from .test_serve_cross_encoder import save_tiny_cross_encoder
from .training_helpers import tiny_config

runner = CliRunner()
SENTENCES = [
    ("the cat sat on the mat", "on the mat the cat sat"),
    ("der hund lief schnell", "the dog ran fast"),
    ("le chat dort", "the mat is red"),
    ("a bird flew over the house", "the house flew over a bird"),
    ("das museum öffnet um neun", "the museum opens at nine"),
    ("it rains", "it is raining today in the town by the river"),
    ("the cat", "the cat"),
]


@pytest.fixture(scope="module")
def cross_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_cross_encoder(tiny_model_dir, tmp_path_factory.mktemp("cross") / "ce")


def write_input(path: Path, rows: Sequence[tuple[str, str]] = SENTENCES) -> Path:
    """PAWS-X layout: the other columns (id before the sentences, label after) must come through."""
    lines = ["id\tsentence1\tsentence2\tlabel"] + [f"r{i}\t{a}\t{b}\t{i % 2}" for i, (a, b) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_label_scores_are_cross_encoder_predict_and_distill_reads_them(cross_dir: Path, tmp_path: Path) -> None:
    pairs_file = write_input(tmp_path / "pairs.tsv")
    output = tmp_path / "out" / "scores.tsv"
    code, _, err = run("label", str(cross_dir), str(pairs_file), "-o", str(output), "--batch-size", "3")
    assert code == 0, err

    rows = list(csv.reader(output.read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    assert rows[0] == ["sentence1", "sentence2", "score", "id", "label"]
    assert [row[:2] for row in rows[1:]] == [list(pair) for pair in SENTENCES]
    assert [row[3:] for row in rows[1:]] == [[f"r{i}", str(i % 2)] for i in range(len(SENTENCES))]
    # one chunk, the same batch size: the very batches of predict (six decimals written)
    expected = CrossEncoder(str(cross_dir)).predict(SENTENCES, batch_size=3, convert_to_numpy=True)
    scores = np.array([float(row[2]) for row in rows[1:]])
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    assert np.ptp(scores) > 1e-3  # the scores do tell the pairs apart

    teacher = TeacherScores.read(output)  # what `distill.scores` reads
    assert len(teacher) == len(SENTENCES) - 1  # ("the cat", "the cat") is one text twice: stored once
    assert teacher.scores[SENTENCES[1][::-1]] == pytest.approx(scores[1], abs=1e-12)
    assert not list(output.parent.glob("scores.tsv.partial*"))


def test_a_headerless_two_field_file_gives_the_three_columns(cross_dir: Path, tmp_path: Path) -> None:
    pairs_file = tmp_path / "pairs.tsv"
    pairs_file.write_text("".join(f"{a}\t{b}\n" for a, b in SENTENCES[:3]) + "\n", encoding="utf-8")  # blank line
    output = tmp_path / "scores.tsv"
    code, out, err = run("label", str(cross_dir), str(pairs_file), "-o", str(output))
    assert code == 0, err
    assert "wrote the scores of 3 pairs" in out
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sentence1\tsentence2\tscore" and len(lines) == 4


class Dying:
    """A scorer that raises after ``lives`` calls (the kill of a long run), counting the pairs it scored."""

    def __init__(self, scorer: PairScorer, lives: int) -> None:
        self.scorer, self.lives, self.scored = scorer, lives, 0

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if self.lives == 0:
            raise KeyboardInterrupt
        self.lives -= 1
        self.scored += len(pairs)
        return self.scorer.score(pairs)


def test_an_interrupted_labelling_resumes_to_the_same_bytes(cross_dir: Path, tmp_path: Path) -> None:
    rows = SENTENCES * 2  # 14 pairs: chunks of 3
    pairs_file = write_input(tmp_path / "pairs.tsv", rows)
    labeller = cross_encoder_labeller(resolve_model(str(cross_dir)), batch_size=2)
    label_pairs(pairs_file, tmp_path / "whole.tsv", labeller, chunk_size=3)
    whole = (tmp_path / "whole.tsv").read_bytes()

    output = tmp_path / "resumed.tsv"
    scorer = labeller.open()
    with pytest.raises(KeyboardInterrupt):
        label_pairs(pairs_file, output, dataclasses.replace(labeller, open=lambda: Dying(scorer, 2)), chunk_size=3)
    partial = output.with_name("resumed.tsv.partial")
    assert not output.exists() and len(partial.read_text(encoding="utf-8").splitlines()) == 1 + 2 * 3
    with partial.open("a", encoding="utf-8") as handle:
        handle.write("a chunk cut by the kill\t0.5\t")  # past the record: cut off, scored again

    counting = Dying(scorer, -1)
    summary = label_pairs(pairs_file, output, dataclasses.replace(labeller, open=lambda: counting), chunk_size=3)
    assert (summary.rows, summary.resumed, counting.scored) == (len(rows), 6, len(rows) - 6)
    assert output.read_bytes() == whole
    assert not partial.exists() and not output.with_name("resumed.tsv.partial.json").exists()


class Constant:
    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        return np.full(len(pairs), 0.25)


def fake_labeller(fingerprint: str = "weights-a", max_length: int | None = None, lives: int = 1) -> Labeller:
    return Labeller("fake", fingerprint, "torch", max_length, lambda: Dying(Constant(), lives))


def test_a_partial_of_another_model_or_input_is_refused_and_kept(tmp_path: Path) -> None:
    pairs_file = write_input(tmp_path / "pairs.tsv")
    output = tmp_path / "scores.tsv"
    with pytest.raises(KeyboardInterrupt):
        label_pairs(pairs_file, output, fake_labeller(), chunk_size=2)
    partial = output.with_name("scores.tsv.partial")
    before = partial.read_bytes()
    for labeller, what in (
        (fake_labeller("weights-b"), "another model (weights fingerprint)"),
        (fake_labeller(max_length=64), "another max length"),
    ):
        with pytest.raises(InputError, match=r"scores\.tsv\.partial: a partial labelling of " + re.escape(what)):
            label_pairs(pairs_file, output, labeller, chunk_size=2)
    write_input(pairs_file, SENTENCES[:-1])
    with pytest.raises(InputError, match=re.escape("another input (sha256 of its bytes)")):
        label_pairs(pairs_file, output, fake_labeller(), chunk_size=2)
    assert partial.read_bytes() == before  # nothing lost

    write_input(pairs_file)  # the first input again: it continues
    assert label_pairs(pairs_file, output, fake_labeller(lives=-1), chunk_size=2).resumed == 2


def test_the_cli_refuses_to_resume_with_another_cross_encoder(cross_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-ce"
    model = CrossEncoder(str(cross_dir))
    network: Any = model.model  # a BertForSequenceClassification
    with torch.no_grad():
        network.classifier.bias.add_(0.5)
    model.save(str(other))
    pairs_file = write_input(tmp_path / "pairs.tsv")
    output = tmp_path / "scores.tsv"
    with pytest.raises(KeyboardInterrupt):
        label_pairs(
            pairs_file, output, dataclasses.replace(fake_labeller(lives=0), fingerprint=_fingerprint(cross_dir))
        )
    code, _, err = run("label", str(other), str(pairs_file), "-o", str(output))
    assert code == 2 and "a partial labelling of another model (weights fingerprint) is here" in err
    code, _, err = run("label", str(cross_dir), str(pairs_file), "-o", str(output))  # the right one resumes
    assert code == 0, err


def _fingerprint(folder: Path) -> str:
    return resolve_model(str(folder)).weights_fingerprint


@pytest.mark.parametrize(
    ("content", "where", "reason"),
    [
        ("id\tsentence1\tsentence2\nr0\ta\tb\nr1\ta\n", ":3:", "expected 3 tab-separated fields, found 2"),
        ("sentence1\tsentence2\na\tb\n\nc\t  \n", ":4:", "empty text in column 'sentence2'"),
        (b"a\tb\nc\t\xff\xfe\n", ":2:", "not valid UTF-8 (byte 3 of the line)"),
        ("a\tb\tc\n", ":1:", "expected a header naming sentence1 and sentence2"),
        ("sentence1\tsentence2\tscore\na\tb\t1\n", ":1:", "the input already has a 'score' column"),
        ("sentence1\tsentence2\n", "", "no sentence pairs found (header only)"),
    ],
)
def test_a_bad_row_is_one_error_naming_file_and_line(
    cross_dir: Path, tmp_path: Path, content: str | bytes, where: str, reason: str
) -> None:
    pairs_file = tmp_path / "pairs.tsv"
    if isinstance(content, bytes):
        pairs_file.write_bytes(content)
    else:
        pairs_file.write_text(content, encoding="utf-8")
    output = tmp_path / "scores.tsv"
    code, _, err = run("label", str(cross_dir), str(pairs_file), "-o", str(output))
    assert code == 2 and err.count("\n") == 1
    assert f"pairs.tsv{where} {reason}" in err.replace("\n", "") if where else reason in err
    assert not list(tmp_path.glob("scores.tsv*"))  # refused before anything was written


def test_label_refuses_a_sentence_embedder_and_the_input_as_output(
    tiny_model_dir: Path, cross_dir: Path, tmp_path: Path
) -> None:
    pairs_file = write_input(tmp_path / "pairs.tsv")
    code, _, err = run("label", str(tiny_model_dir), str(pairs_file), "-o", str(tmp_path / "s.tsv"))
    assert code == 2 and "is not a cross-encoder" in err
    code, _, err = run("label", str(cross_dir), str(pairs_file), "-o", str(pairs_file))
    assert code == 2 and "the output would replace the input" in err
    assert scan_pairs(pairs_file).rows == len(SENTENCES)


# ---------------------------------------------------------------- silver pairs

LANGUAGES = ("en", "de", "fr")


def tagged_pawsx(root: Path, ids: int = 5) -> Path:
    """A resplit train split whose texts differ per language (a tag in front), aligned by id."""
    for language in LANGUAGES:
        folder = root / "pawsx" / "resplit" / language
        folder.mkdir(parents=True)
        lines = ["id\tsentence1\tsentence2\tlabel"]
        for i in range(ids):
            first = f"{language} the cat {i} sat on the mat"
            lines += [f"p{i}\t{first}\t{language} on the mat the cat {i} sat\t1"]
            lines += [f"n{i}\t{first}\t{language} the mat {i} sat on the cat\t0"]
        (folder / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def train_lines(data: Path, language: str) -> list[str]:
    return (data / "pawsx" / "resplit" / language / "train.tsv").read_text(encoding="utf-8").splitlines()


def test_translation_pairs_are_every_cross_lingual_combination_of_the_aligned_rows(tmp_path: Path) -> None:
    data = tagged_pawsx(tmp_path / "data")
    output = tmp_path / "silver.tsv"
    code, out, err = run("silver-pairs", "--data-dir", str(data), "--languages", ",".join(LANGUAGES), "-o", str(output))
    assert code == 0, err

    # the oracle from the files: per id, language A's two texts with language B's two texts (gold 1)
    # and with B's label-0 partner (gold 0), for A != B, each unordered pair once
    expected: dict[frozenset[str], int] = {}
    rows = {language: list(csv.DictReader(train_lines(data, language), delimiter="\t")) for language in LANGUAGES}
    for language_a, language_b in itertools.permutations(LANGUAGES, 2):
        for row_a, row_b in zip(rows[language_a], rows[language_b], strict=True):
            if row_a["label"] != "1":
                continue
            negative_b = next(r["sentence2"] for r in rows[language_b] if r["id"] == "n" + row_b["id"][1:])
            for text in (row_a["sentence1"], row_a["sentence2"]):
                for other in (row_b["sentence1"], row_b["sentence2"]):
                    expected[frozenset((text, other))] = 1
                expected[frozenset((text, negative_b))] = 0
    written = list(csv.DictReader(output.read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    assert {frozenset((r["sentence1"], r["sentence2"])): int(r["gold"]) for r in written} == expected
    assert len(written) == len(expected) == 5 * (3 * 4 + 6 * 2)
    for row in written:  # the languages column names each side's tag
        assert row["languages"] == f"{row['sentence1'][:2]}-{row['sentence2'][:2]}"
    assert f"wrote {len(expected)} translation pairs" in out


def test_every_pair_the_trainer_draws_with_translation_positives_is_a_silver_pair(tmp_path: Path) -> None:
    units = read_pawsx(tagged_pawsx(tmp_path / "data"), "train", LANGUAGES).units
    silver = {frozenset((pair.first, pair.second)) for pair in translation_pairs(units)}
    translations = TranslationPositives.of(units, rate=1.0)
    rng = np.random.default_rng(0)
    drawn = 0
    for _ in range(20):
        batch = [units[int(i)] for i in rng.choice(len(units), size=4, replace=False)]
        layout = pair_layout([batch], rng, negatives=1, translations=translations)
        columns = torch.cat([layout.positives[:, None], layout.negatives], dim=1)
        for anchor, row in zip(layout.anchors.tolist(), columns.tolist(), strict=True):
            for other in (index for index in row if index >= 0):
                assert frozenset((layout.texts[anchor], layout.texts[other])) in silver
                drawn += 1
    assert drawn >= 120


def test_silver_pairs_refuses_an_unknown_scope(tmp_path: Path) -> None:
    code, _, err = run("silver-pairs", "--data-dir", str(tmp_path), "--pairs", "mined", "-o", str(tmp_path / "s.tsv"))
    assert code == 2 and "--pairs 'mined': use one of in-unit, translation, all" in err


# ---------------------------------------------------------------- pairs drawn by a run (--drawn-by)


def drawing_config(model_dir: Path, output: Path, **fields: Any) -> TrainConfig:
    """Paper 1's step shape in small: AM + mega-batch mining, one explicit negative, translation
    positives at 0.5, two mini-batches a step, long enough to cross into a second epoch."""
    data = {"kind": "pawsx", "languages": list(LANGUAGES), "translation_positives": 0.5}
    common: dict[str, Any] = {"loss": {"kind": "additive_margin", "explicit_negatives": 1}}
    common |= {"mining": {"enabled": True, "top_k": 1}, "batch_size": 3, "mini_batches_per_step": 2}
    return tiny_config(model_dir, output, data, **(common | {"max_steps": 5, "checkpoint_every": 100} | fields))


def looked_up_by_training(config: TrainConfig, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> list[frozenset[str]]:
    """The oracle: train for real and record every pair whose teacher score the trainer looks up."""
    looked_up: list[frozenset[str]] = []
    original = TeacherScores.targets

    def recording(self: TeacherScores, layout: StepLayout) -> torch.Tensor:
        columns = torch.cat([layout.positives[:, None], layout.negatives], dim=1)
        for anchor, row in zip(layout.anchors.tolist(), columns.tolist(), strict=True):
            looked_up.extend(frozenset((layout.texts[anchor], layout.texts[other])) for other in row if other >= 0)
        return original(self, layout)

    monkeypatch.setattr(TeacherScores, "targets", recording)
    train(config, data_dir=data_dir, show_progress=False)
    return looked_up


def teacher_file(path: Path, data_dir: Path) -> Path:
    """Any valid scores file: one pair of the data, so that `distill` is on (its scores change no draw)."""
    rows = train_lines(data_dir, "en")[1].split("\t")
    path.write_text(f"sentence1\tsentence2\tscore\n{rows[1]}\t{rows[2]}\t0.5\n", encoding="utf-8")
    return path


def test_drawn_by_lists_exactly_the_pairs_training_looks_up(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tagged_pawsx(tmp_path / "data", ids=7)
    scores = teacher_file(tmp_path / "teacher.tsv", data)
    config = drawing_config(tiny_model_dir, tmp_path / "run", distill={"scores": str(scores), "weight": 1.0})
    looked_up = looked_up_by_training(config, data, monkeypatch)
    listed = pairs_drawn_by([config], data, "all")

    keys = [frozenset((pair.first, pair.second)) for pair in listed]
    assert len(keys) == len(set(keys))  # each unordered pair once
    assert set(keys) == set(looked_up)  # nothing missing, nothing extra
    assert len(looked_up) == 5 * 2 * 3 * 2  # steps x mini-batches x anchors x (positive + negative)
    units = read_pawsx(data, "train", LANGUAGES).units
    in_unit = {frozenset((pair.first, pair.second)) for pair in drawn_pairs(units, "in-unit")}
    assert 0 < sum(key in in_unit for key in keys) < len(keys)  # both kinds drawn at rate 0.5
    for pair in listed:  # languages from the tag; gold 0 only with a label-0 partner ("... sat on the cat")
        assert pair.languages in (pair.first[:2], f"{pair.first[:2]}-{pair.second[:2]}")
        assert pair.gold == int(not any(text.endswith("sat on the cat") for text in (pair.first, pair.second)))


def test_drawn_by_a_multi_task_run_follows_its_schedule(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tagged_pawsx(tmp_path / "data", ids=7)
    scores = str(teacher_file(tmp_path / "teacher.tsv", data))
    pawsx = {"kind": "pawsx", "languages": list(LANGUAGES), "translation_positives": 0.5}
    pair_task = {"data": pawsx, "loss": {"kind": "additive_margin", "explicit_negatives": 1}, "batch_size": 3}
    distill = {"scores": scores, "weight": 1.0}  # on both pair tasks: every pair they draw is looked up
    tasks = [
        {"name": "xling", **pair_task, "distill": distill},
        {"name": "mono", **pair_task, "data": pawsx | {"translation_positives": 0.0}, "distill": distill},
        {
            "name": "groups",
            "data": pawsx | {"translation_positives": 0.0},
            "loss": {"kind": "multi_positive"},
            "batch_size": 3,
        },
    ]
    raw = {"model": {"name": str(tiny_model_dir), "max_seq_length": 32}, "output_dir": str(tmp_path / "run")}
    raw |= {"max_steps": 9, "checkpoint_every": 100, "log_every": 1, "optim": {"lr": 1e-3, "warmup_ratio": 0.0}}
    config = TrainConfig.model_validate(raw | {"tasks": tasks})
    looked_up = looked_up_by_training(config, data, monkeypatch)
    listed = {frozenset((p.first, p.second)) for p in pairs_drawn_by([config], data, "all")}
    assert listed == set(looked_up)
    trained = json.loads((tmp_path / "run" / "summary.json").read_text())["tasks"]
    assert all(task["steps"] > 0 for task in trained)  # each task had steps: the schedule was followed
    assert len(looked_up) == 3 * 2 * (9 - next(t["steps"] for t in trained if t["name"] == "groups"))


def test_the_cli_lists_the_pairs_a_tables_runs_draw(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = tagged_pawsx(tmp_path / "data", ids=7)
    config = drawing_config(tiny_model_dir, tmp_path / "run")
    base = tmp_path / "configs" / "base.yaml"
    base.parent.mkdir()
    base.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)), encoding="utf-8")
    table = tmp_path / "experiments" / "silver.yaml"
    table.parent.mkdir()
    table.write_text(
        "name: silver\nbase: configs/base.yaml\nseeds: [1, 2]\nvariants:\n  - {name: gold}\n"
        "  - {name: distilled, overrides: [distill.scores=missing.tsv]}\n  - {name: as-is, trainer: none}\n",
        encoding="utf-8",
    )
    output = tmp_path / "drawn.tsv"
    code, out, err = run("silver-pairs", "--data-dir", str(data), "--drawn-by", str(table), "-o", str(output))
    assert code == 0, err
    by_seed = [pairs_drawn_by([config.model_copy(update={"seed": s})], data, "translation") for s in (1, 2)]
    expected = {frozenset((p.first, p.second)) for pairs in by_seed for p in pairs}
    written = list(csv.DictReader(output.read_text(encoding="utf-8").splitlines(), delimiter="\t"))
    assert {frozenset((r["sentence1"], r["sentence2"])) for r in written} == expected
    assert len(written) == len(expected) and all(r["languages"].count("-") == 1 for r in written)
    assert f"wrote {len(expected)} translation pairs drawn by 4 run(s) of {table} (seeds 1, 2, 1, 2)" in out

    seeded = tmp_path / "seeded.tsv"
    code, _, err = run(
        "silver-pairs", *("--data-dir", str(data)), "--drawn-by", str(base), "--seeds", "2", "-o", str(seeded)
    )
    assert code == 0, err
    assert {frozenset((r["sentence1"], r["sentence2"])) for r in csv.DictReader(seeded.open(), delimiter="\t")} == {
        frozenset((p.first, p.second)) for p in by_seed[1]
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--seeds", "1"), "--seeds chooses the runs of --drawn-by; give --drawn-by too"),
        (("--drawn-by", "x.yaml", "--languages", "en"), "with --drawn-by the config's data decide"),
        (("--drawn-by", "missing.yaml"), "missing.yaml"),
    ],
)
def test_silver_pairs_drawn_by_refusals(tmp_path: Path, extra: tuple[str, ...], message: str) -> None:
    code, _, err = run("silver-pairs", "--data-dir", str(tmp_path), *extra, "-o", str(tmp_path / "s.tsv"))
    assert code == 2 and message in err and not (tmp_path / "s.tsv").exists()


def scores_file(path: Path, pairs: Sequence[DrawnPair]) -> Path:
    """A teacher file scoring ``pairs``: 0.9 for a paraphrase, 0 for a label-0 partner."""
    rows = "".join(f"{pair.first}\t{pair.second}\t{pair.gold * 0.9:g}\n" for pair in pairs)
    path.write_text("sentence1\tsentence2\tscore\n" + rows, encoding="utf-8")
    return path


def test_a_teacher_file_of_the_drawn_pairs_covers_the_run_and_a_stale_one_is_reported(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = tagged_pawsx(tmp_path / "data", ids=7)
    unused = drawing_config(tiny_model_dir, tmp_path / "unused")
    files = {
        "listed": scores_file(tmp_path / "listed.tsv", pairs_drawn_by([unused], data, "all")),
        # the cross-lingual silver pairs alone: the in-unit pairs stay unscored on purpose, no warning
        "translation": scores_file(tmp_path / "translation.tsv", pairs_drawn_by([unused], data, "translation")),
        "stale": teacher_file(tmp_path / "stale.tsv", data),
    }
    for name, scores in files.items():
        config = drawing_config(tiny_model_dir, tmp_path / name, distill={"scores": str(scores), "weight": 1.0})
        said = io.StringIO()
        train(config, data_dir=data, show_progress=False, console=Console(file=said, width=400))
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        coverage = summary["teacher_coverage"]["main"]
        # the teacher file is one of the files the run read, hashed: rewriting it changes the record
        hashed = {Path(record["path"]).name: record["sha256"] for record in summary["data_files"]}
        assert hashed[scores.name] == hashlib.sha256(scores.read_bytes()).hexdigest()
        assert coverage["drawn"] == 5 * 2 * 3 * 2  # steps x mini-batches x anchors x (positive + negative)
        kinds = coverage["kinds"]
        assert kinds["in-unit"]["drawn"] > 0 and kinds["translation"]["drawn"] > 0  # rate 0.5 draws both
        assert kinds["in-unit"]["drawn"] + kinds["translation"]["drawn"] == coverage["drawn"]
        warned = "pairs got no distillation target: was the file listed for this config" in said.getvalue()
        if name == "listed":
            assert coverage["scored"] == coverage["drawn"] and coverage["share"] == 1.0
            assert "the teacher scored 60 of the 60 pairs drawn (100.0%)" in said.getvalue()
            assert not warned
        elif name == "translation":
            assert kinds["translation"]["scored"] == kinds["translation"]["drawn"]
            assert kinds["in-unit"]["scored"] == 0
            assert coverage["scored"] == kinds["translation"]["drawn"] < coverage["drawn"]
            assert not warned
        else:
            assert coverage["scored"] < 10
            assert warned
