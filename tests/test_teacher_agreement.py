"""benchmarks/teacher_agreement.py: AUC against a naive pair count, accuracy, directions, bad input."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from .scripts import load_benchmark_script

teacher_agreement = load_benchmark_script("teacher_agreement")


def _write(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["sentence1\tsentence2\tscore\tlanguages\tgold"]
    lines += [f"a {i}\tb {i}\t{score}\t{languages}\t{gold}" for i, (score, languages, gold) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _naive_auc(pairs: list[teacher_agreement.ScoredPair]) -> float:
    """P(score of a positive > score of a negative), ties counting one half: the AUC's definition."""
    positives = [p.score for p in pairs if p.gold == 1]
    negatives = [p.score for p in pairs if p.gold == 0]
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in itertools.product(positives, negatives))
    return wins / (len(positives) * len(negatives))


def test_auc_and_accuracy_match_a_naive_count(tmp_path: Path) -> None:
    rng = random.Random(7)
    languages = ["en-de", "de-en", "fr-ja", "en-zh", "ko-en", "es-fr"]
    rows = [
        (f"{rng.choice([0.1, 0.3, 0.5, 0.7, rng.random()]):.4f}", rng.choice(languages), str(rng.randint(0, 1)))
        for _ in range(300)
    ]
    pairs = teacher_agreement.read_scored(_write(tmp_path / "s.tsv", rows))
    report = teacher_agreement.report(pairs)
    assert report["all"].auc == pytest.approx(_naive_auc(pairs))
    for name in ("en→xx", "xx→en", "xx→yy"):
        chosen = [p for p in pairs if p.direction == name]
        assert report[name].pairs == len(chosen)
        assert report[name].auc == pytest.approx(_naive_auc(chosen))
        expected = sum((p.score > 0.5) == (p.gold == 1) for p in chosen) / len(chosen)
        assert report[name].accuracy_at_0_5 == pytest.approx(expected)
    assert sum(report[name].pairs for name in ("en→xx", "xx→en", "xx→yy")) == 300


def test_one_class_has_no_auc_and_empty_directions_are_left_out(tmp_path: Path) -> None:
    pairs = teacher_agreement.read_scored(_write(tmp_path / "s.tsv", [("0.9", "en-de", "1"), ("0.2", "en-fr", "1")]))
    report = teacher_agreement.report(pairs)
    assert list(report) == ["en→xx", "all"]
    assert report["all"].auc is None and report["all"].accuracy_at_0_5 == 0.5


def test_main_writes_json_and_markdown(tmp_path: Path) -> None:
    source = _write(tmp_path / "s.tsv", [("0.9", "en-de", "1"), ("0.2", "de-en", "0"), ("0.6", "fr-ja", "0")])
    assert teacher_agreement.main([str(source), "--name", "t", "--output-dir", str(tmp_path / "out")]) == 0
    saved = json.loads((tmp_path / "out" / "t.json").read_text())
    assert saved["rows"]["all"]["pairs"] == 3 and saved["rows"]["all"]["auc"] == pytest.approx(1.0)
    assert "| xx→yy | 1 |" in (tmp_path / "out" / "t.md").read_text()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("sentence1\tsentence2\tscore\n", "s.tsv:1: missing column(s) gold, languages"),
        (
            "sentence1\tsentence2\tscore\tlanguages\tgold\na\tb\t0.5\ten-de\t1\na\tb\thigh\ten-de\t1\n",
            "s.tsv:3: score 'high'",
        ),
        ("sentence1\tsentence2\tscore\tlanguages\tgold\na\tb\t0.5\ten-de\tyes\n", "s.tsv:2: gold 'yes' is not 0 or 1"),
        ("sentence1\tsentence2\tscore\tlanguages\tgold\n", "s.tsv: no rows after the header"),
    ],
)
def test_bad_input_is_one_line_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, expected: str
) -> None:
    (tmp_path / "s.tsv").write_text(content, encoding="utf-8")
    assert teacher_agreement.main([str(tmp_path / "s.tsv"), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err
    assert not (tmp_path / "out").exists()
