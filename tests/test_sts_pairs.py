"""The STS training reader (data kind sts): scored pairs from stsb_multi_mt and KorSTS files."""

from __future__ import annotations

from pathlib import Path

import pytest

from paraxl.data.records import ScoredPair
from paraxl.data.sts_pairs import STS_LANGUAGES, read_sts
from paraxl.errors import InputError
from paraxl.io.rows import RowPolicy

KORSTS_HEADER = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2"


def write_sts(root: Path, rows: dict[str, list[tuple[str, str, str]]], split: str = "train") -> Path:
    """stsb_multi_mt CSVs (no header) and, for ``ko``, a KorSTS TSV, from (s1, s2, score) rows."""
    for language, lines in rows.items():
        if language == "ko":
            path = root / "korsts" / f"sts-{split}.tsv"
            body = [f"main\tfile\t2012\t{i:04d}\t{score}\t{s1}\t{s2}" for i, (s1, s2, score) in enumerate(lines)]
            text = "\n".join([KORSTS_HEADER, *body]) + "\n"
        else:
            path = root / "stsb_multi_mt" / f"stsb-{language}-{split}.csv"
            text = "".join(f"{s1},{s2},{score}\n" for s1, s2, score in lines)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


GOOD = {
    "en": [("A plane takes off.", "An air plane is taking off.", "5.000"), ('"A man, a flute"', "A man plays", "3.8")],
    "de": [("Ein Flugzeug hebt ab.", "Ein Flugzeug startet.", "5.0"), ("Ein Mann", "Ein Mann spielt", "3.8")],
    "ko": [('비행기가 "이륙"한다.', "비행기가 뜬다.", "5.000"), ("남자", "남자가 연주한다", "3.800")],
}


def test_good_rows_become_scored_pairs_with_row_group_ids(tmp_path: Path) -> None:
    data = read_sts(write_sts(tmp_path, GOOD), languages=["en", "de", "ko"])
    assert all(isinstance(unit, ScoredPair) for unit in data.units)
    pairs = [(u.group_id, u.texts, u.languages[0], u.score) for u in data.units if isinstance(u, ScoredPair)]
    assert pairs == [
        (0, ("A plane takes off.", "An air plane is taking off."), "en", 1.0),
        (1, ("A man, a flute", "A man plays"), "en", pytest.approx(0.76)),  # CSV quoting: the comma is text
        (0, ("Ein Flugzeug hebt ab.", "Ein Flugzeug startet."), "de", 1.0),
        (1, ("Ein Mann", "Ein Mann spielt"), "de", pytest.approx(0.76)),
        (0, ('비행기가 "이륙"한다.', "비행기가 뜬다."), "ko", 1.0),  # KorSTS: no quoting, quotes are text
        (1, ("남자", "남자가 연주한다"), "ko", pytest.approx(0.76)),
    ]
    assert data.sources == [
        tmp_path / "stsb_multi_mt" / "stsb-en-train.csv",
        tmp_path / "stsb_multi_mt" / "stsb-de-train.csv",
        tmp_path / "korsts" / "sts-train.tsv",
    ]
    assert (data.skipped_rows, data.dropped_units) == (0, 0)


def test_identical_sentences_are_dropped_and_counted(tmp_path: Path) -> None:
    rows = {"en": [("Same text.", " Same text. ", "5.0"), ("a", "b", "1.0"), ("c", "d", "2.0")]}
    data = read_sts(write_sts(tmp_path, rows), languages=["en"])
    assert [unit.group_id for unit in data.units] == [1, 2]  # positions kept: row 0 is gone, not renumbered
    assert data.dropped_units == 1


@pytest.mark.parametrize(
    ("score", "reason"),
    [("high", "score 'high' is not a number"), ("5.5", "outside the range 0 to 5"), ("nan", "is not a finite number")],
)
def test_a_bad_score_names_file_and_line(tmp_path: Path, score: str, reason: str) -> None:
    rows = {"en": [("a", "b", "1.0"), ("c", "d", score), ("e", "f", "2.0")]}
    root = write_sts(tmp_path, rows)
    with pytest.raises(InputError, match=reason) as caught:
        read_sts(root, languages=["en"])
    assert (caught.value.path, caught.value.line) == (str(root / "stsb_multi_mt" / "stsb-en-train.csv"), 2)


def test_skip_policy_counts_bad_rows_and_keeps_languages_aligned(tmp_path: Path) -> None:
    rows = {
        "en": [("a", "b", "1.0"), ("c", "d", "-1"), ("e", "f", "2.0")],
        "ko": [("가", "나", "1.0"), ("다", "", "4.0"), ("마", "바", "2.0")],  # empty sentence2
    }
    policy = RowPolicy(on_error="skip")
    data = read_sts(write_sts(tmp_path, rows), languages=["en", "ko"], policy=policy)
    assert [(u.group_id, u.languages[0]) for u in data.units] == [(0, "en"), (2, "en"), (0, "ko"), (2, "ko")]
    assert data.skipped_rows == 2
    assert "empty text in column 'sentence2'" in str(policy.first_errors[1])
    assert policy.first_errors[1].line == 3  # KorSTS: the header is line 1


def test_files_not_aligned_row_for_row_are_refused(tmp_path: Path) -> None:
    """Group ids are rows: a language with a row more, or another score on a row, pairs unrelated rows."""
    en = [("a", "b", "1.0"), ("c", "d", "2.0"), ("e", "f", "3.0")]
    root = write_sts(tmp_path / "short", {"en": en, "ko": en[1:]})
    with pytest.raises(InputError, match=r"has 2 rows but .*stsb-en-train\.csv has 3") as caught:
        read_sts(root, languages=["en", "ko"])
    assert caught.value.path == str(root / "korsts" / "sts-train.tsv")
    shifted = [("a", "b", "1.0"), ("e", "f", "3.0"), ("c", "d", "2.0")]  # same count, rows 2 and 3 swapped
    root = write_sts(tmp_path / "shifted", {"en": en, "de": shifted})
    with pytest.raises(InputError, match=r"score 3 differs from 2 on line 2 of .*stsb-en-train\.csv") as caught:
        read_sts(root, languages=["en", "de"])
    assert (caught.value.path, caught.value.line) == (str(root / "stsb_multi_mt" / "stsb-de-train.csv"), 2)


def test_a_row_with_a_missing_field_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "stsb_multi_mt" / "stsb-en-train.csv"
    path.parent.mkdir(parents=True)
    path.write_text("a,b,1.0\nc,d\n")
    with pytest.raises(InputError, match="expected 3 comma-separated fields, found 2") as caught:
        read_sts(tmp_path, languages=["en"])
    assert caught.value.line == 2


def test_a_korsts_file_without_a_score_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "korsts" / "sts-train.tsv"
    path.parent.mkdir(parents=True)
    path.write_text("genre\tfilename\tyear\tid\tsentence1\tsentence2\nm\tf\t2012\t1\t가\t나\n")
    with pytest.raises(InputError, match="no column 'score'") as caught:
        read_sts(tmp_path, languages=["ko"])
    assert (caught.value.path, caught.value.line) == (str(path), 1)


def test_test_split_unknown_language_and_missing_file_are_refused(tmp_path: Path) -> None:
    root = write_sts(tmp_path, GOOD)
    with pytest.raises(InputError, match=r"test splits .* are what the evaluation scores"):
        read_sts(root, split="test", languages=["en"])
    with pytest.raises(InputError, match="unknown STS split 'validation'"):
        read_sts(root, split="validation", languages=["en"])
    with pytest.raises(InputError, match=r"unknown STS language\(s\) \['xx'\]"):
        read_sts(root, languages=["en", "xx"])
    with pytest.raises(InputError, match=r"expected stsb_multi_mt/stsb-fr-train\.csv under"):
        read_sts(root, languages=["fr"])


def test_the_shared_train_files(data_dir: Path) -> None:
    """The real files: 5749 rows in each of 12 languages, aligned row by row (same scores)."""
    data = read_sts(data_dir)
    assert len(data.sources) == len(STS_LANGUAGES) == 12
    assert data.skipped_rows == 0
    assert len(data.units) + data.dropped_units == 12 * 5749
    scores: dict[int, set[float]] = {}
    for unit in data.units:
        assert isinstance(unit, ScoredPair) and 0.0 <= unit.score <= 1.0
        scores.setdefault(unit.group_id, set()).add(unit.score)
    assert all(len(found) == 1 for found in scores.values())  # a group is one pair in every language
