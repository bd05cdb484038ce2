from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paraxl.data.readers import (
    PAWSX_LANGUAGES,
    XNLI_LANGUAGES,
    LabeledPair,
    groups_from_pairs,
    parse_languages,
    read_aligned_files,
    read_labeled_pairs,
    read_parallel,
    read_pawsx,
    read_pawsx_pairs,
    read_xnli,
)
from paraxl.data.records import TextUnit, TrainingData
from paraxl.errors import InputError, ParaxlError
from paraxl.io.rows import RowPolicy

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
Pair = tuple[str, str, str, int | str]


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def paws(tmp_path: Path, name: str, rows: list[Pair]) -> Path:
    lines = ["id\tsentence1\tsentence2\tlabel", *("\t".join(map(str, row)) for row in rows)]
    return write(tmp_path, name, "\n".join(lines) + "\n")


def by_language(groups: list[TextUnit], language: str) -> list[TextUnit]:
    return [group for group in groups if group.languages[0] == language]


def check_groups(groups: list[TextUnit]) -> None:
    """What every reader promises: >= 2 distinct non-empty texts per unit, dense group ids."""
    for group in groups:
        assert len(set(group.texts)) == len(group.texts) >= 2
        assert all(text and text == text.strip() for text in group.texts)
        assert len(group.languages) == len(group.texts)
    ids = [group.group_id for group in groups]
    first_seen = list(dict.fromkeys(ids))
    assert first_seen == list(range(len(first_seen)))  # dense, in order of first appearance


def test_labeled_pairs_in_every_format(tmp_path: Path) -> None:
    tsv = paws(tmp_path, "p.tsv", [("a", "x", "y", 1), ("b", "x", "z", "0.0"), ("c", "u", "v", "TRUE")])
    pairs = read_labeled_pairs(tsv, language="en")
    assert [(p.first, p.second, p.label, p.key, p.line) for p in pairs] == [
        ("x", "y", 1, "a", 2),
        ("x", "z", 0, "b", 3),
        ("u", "v", 1, "c", 4),
    ]
    assert pairs[0].path == tsv and pairs[0].language == "en"
    csv = write(tmp_path, "p.csv", 's1,s2\n"x, quoted",y\n')
    assert read_labeled_pairs(csv, first="s1", second="s2") == [LabeledPair("x, quoted", "y", None, 2, csv)]
    jsonl = write(
        tmp_path, "p.jsonl", '{"sentence1": "a", "sentence2": "b", "label": 0}\n{"sentence1": "c", "sentence2": "d"}\n'
    )
    assert [(p.label, p.key) for p in read_labeled_pairs(jsonl)] == [(0, None), (None, None)]
    null = write(tmp_path, "n.jsonl", '{"sentence1": "a", "sentence2": "b", "label": null}\n')
    with pytest.raises(InputError, match=r"n\.jsonl:1: key 'label' holds NoneType"):
        read_labeled_pairs(null)
    assert all(p.label is None for p in read_labeled_pairs(tsv, label=None))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("id\tsentence1\tsentence2\tlabel\n1\ta\tb\t1\n2\ta\tb\tmaybe\n", "x.tsv:3: label 'maybe' is not one of"),
        ("sentence1\tsentence2\n \tb\n", "x.tsv:2: empty text in column 'sentence1'"),
        ("sentence1\tsentence2\na\tb\tc\n", "x.tsv:2: expected 2 tab-separated fields, found 3"),
        ("text\tlabel\na\t1\n", "x.tsv:1: no column 'sentence1'"),
        ("", "x.tsv: the file is empty"),
    ],
)
def test_labeled_pair_errors(tmp_path: Path, data: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        read_labeled_pairs(write(tmp_path, "x.tsv", data))
    assert message in str(caught.value)


def test_labeled_pairs_skip_policy_and_format_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "s.tsv", "sentence1\tsentence2\tlabel\na\tb\t1\nc\t\t1\nd\te\t7\nf\n g\th\t0\n")
    policy = RowPolicy("skip")
    assert [(p.first, p.line) for p in read_labeled_pairs(path, policy=policy)] == [("a", 2), (" g", 6)]
    assert policy.skipped == 3 and [e.line for e in policy.first_errors] == [3, 4, 5]
    with pytest.raises(InputError, match=r"cannot tell the format from extension '\.txt'"):
        read_labeled_pairs(tmp_path / "p.txt")
    with pytest.raises(InputError, match="unknown format 'xml'"):
        read_labeled_pairs(path, fmt="xml")


EN: list[Pair] = [
    ("1", "A", "B", 1),
    ("2", "B ", "C", 1),  # B recurs (surrounding space aside): A, B and C are one meaning
    ("3", "A", "D", 0),  # D is a hard negative of that unit, and alone (dropped)
    ("4", "E", "F", 1),
    ("5", "E", "F", 0),  # contradicts 4: F is no negative of E
    ("6", "G", "H", 0),  # two lone sentences: both units dropped
]
DE: list[Pair] = [
    ("1", "a", "b", 1),
    ("2", "b", "c", 1),
    ("3", "a", "d", 0),
    ("4", "e", "f", 1),
    ("5", "e", "f", 0),
    ("6", "g", "h", 0),
    ("7", "x", "y", 1),  # only in German
]


def test_grouping_of_paws_like_pairs(tmp_path: Path) -> None:
    pairs = {"en": read_labeled_pairs(paws(tmp_path, "en.tsv", EN))}
    groups, dropped = groups_from_pairs(pairs)
    assert groups == [
        TextUnit(0, ("A", "B", "C"), ("en",) * 3, ("D",)),
        TextUnit(1, ("E", "F"), ("en", "en")),
    ]
    assert dropped == 3  # D, G, H


def test_translations_aligned_by_id_share_a_group(tmp_path: Path) -> None:
    pairs = {
        "en": read_labeled_pairs(paws(tmp_path, "en.tsv", EN)),
        "de": read_labeled_pairs(paws(tmp_path, "de.tsv", DE)),
    }
    groups, dropped = groups_from_pairs(pairs)
    check_groups(groups)
    assert [(g.group_id, g.texts, g.negatives) for g in by_language(groups, "de")] == [
        (0, ("a", "b", "c"), ("d",)),
        (1, ("e", "f"), ()),
        (2, ("x", "y"), ()),
    ]
    assert [g.group_id for g in by_language(groups, "en")] == [0, 1]
    assert dropped == 6  # D, G, H and d, g, h: aligned lone sentences stay lone units
    unaligned, _ = groups_from_pairs(pairs, align_by_key=False)
    assert sorted(g.group_id for g in unaligned) == list(range(5))


def test_alignment_yields_to_labels_and_source_language(tmp_path: Path) -> None:
    """A junk translation shared by two sentences, or a word-order pair whose translations collapse
    into one text, must not merge meanings that the source language keeps apart."""
    en: list[Pair] = [("1", "P", "Q", 1), ("2", "R", "S", 1), ("3", "K", "L", 0), ("4", "K", "M", 1)]
    de: list[Pair] = [("1", "NS", "q", 1), ("2", "NS", "s", 1), ("3", "k", "k", 0), ("4", "k", "m", 1)]
    pairs = {
        "en": read_labeled_pairs(paws(tmp_path, "en.tsv", en)),
        "de": read_labeled_pairs(paws(tmp_path, "de.tsv", de)),
    }
    groups, _ = groups_from_pairs(pairs)
    check_groups(groups)
    english = {g.texts: g for g in by_language(groups, "en")}
    assert set(english) == {("P", "Q"), ("R", "S"), ("K", "M")}
    assert len({g.group_id for g in english.values()}) == 3
    assert english[("K", "M")].negatives == ("L",)


def test_repeated_id_cannot_align(tmp_path: Path) -> None:
    pairs = {
        "en": read_labeled_pairs(paws(tmp_path, "en.tsv", [("1", "a", "b", 1), ("1", "c", "d", 1)])),
        "de": read_labeled_pairs(paws(tmp_path, "de.tsv", [("1", "x", "y", 1)])),
    }
    with pytest.raises(InputError, match=r"en.tsv:3: id '1' appears twice \(also at line 2\)"):
        groups_from_pairs(pairs)
    assert len(groups_from_pairs(pairs, align_by_key=False)[0]) == 3


words = st.sampled_from(["s0", "s1", "s2", "s3", "s4", "s5"])
pair_rows = st.tuples(words, words, st.integers(0, 1))


@FAST
@given(
    table=st.lists(st.tuples(st.one_of(st.none(), pair_rows), st.one_of(st.none(), pair_rows)), max_size=12),
)
def test_grouping_invariants(table: list[tuple[tuple[str, str, int] | None, tuple[str, str, int] | None]]) -> None:
    pairs: dict[str, list[LabeledPair]] = {"en": [], "de": []}
    for key, rows in enumerate(table):
        for language, row in zip(("en", "de"), rows, strict=True):
            if row is not None:
                first, second, label = row
                pairs[language].append(LabeledPair(first, second, label, key, Path(language), str(key)))
    groups, _ = groups_from_pairs(pairs)
    check_groups(groups)
    unit_of: dict[tuple[str, str], TextUnit] = {}
    for group in groups:
        assert len(set(group.languages)) == 1
        for text in group.texts:
            assert (group.languages[0], text) not in unit_of  # a text belongs to one unit
            unit_of[(group.languages[0], text)] = group
    for group in groups:
        for negative in group.negatives:
            other = unit_of.get((group.languages[0], negative))
            assert other is None or other.group_id != group.group_id
    for language, labeled in pairs.items():
        for pair in labeled:
            unit = unit_of.get((language, pair.first))
            if pair.label == 1 and pair.first != pair.second and unit is not None:
                assert pair.second in unit.texts


def pair_line(row: tuple[str, str, str]) -> str:
    return "\t".join(row)


line_text = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=6)


@FAST
@given(
    rows=st.lists(
        st.one_of(
            st.tuples(line_text, line_text, st.sampled_from(["1", "0", "true", "x", ""])).map(pair_line),
            line_text,
        ),
        max_size=10,
    )
)
def test_labeled_pairs_from_odd_rows(tmp_path: Path, rows: list[str]) -> None:
    path = write(tmp_path, "odd.tsv", "\n".join(["sentence1\tsentence2\tlabel", *rows]) + "\n")
    policy = RowPolicy("skip")
    pairs = read_labeled_pairs(path, policy=policy)
    assert len(pairs) + policy.skipped == len(rows)
    assert all(p.first.strip() and p.second.strip() and p.label in (0, 1) for p in pairs)
    if policy.skipped:
        with pytest.raises(InputError):
            read_labeled_pairs(path)
    else:
        assert read_labeled_pairs(path) == pairs


@FAST
@given(data=st.one_of(st.binary(max_size=200), st.text(max_size=150).map(lambda s: s.encode("utf-8"))))
def test_pair_readers_on_any_bytes(tmp_path: Path, data: bytes) -> None:
    for name in ("any.tsv", "any.csv", "any.jsonl"):
        try:
            pairs = read_labeled_pairs(write(tmp_path, name, data), policy=RowPolicy("skip"))
        except ParaxlError:
            continue
        assert all(p.first.strip() and p.second.strip() for p in pairs)


def lines(tmp_path: Path, name: str, texts: list[str]) -> Path:
    return write(tmp_path, name, "".join(text + "\n" for text in texts))


def test_aligned_files_dedupe_and_merge_near_duplicates(tmp_path: Path) -> None:
    paths = [
        lines(tmp_path, "en.txt", ["one", "two", "one", "Two."]),
        lines(tmp_path, "de.txt", ["eins", "zwei", "eins", "zwei"]),
        lines(tmp_path, "fr.txt", ["un", "deux", "un", "deux !"]),
    ]
    data = read_parallel(paths, ["en", "de", "fr"])
    assert [(g.group_id, g.texts) for g in data.units] == [
        (0, ("one", "eins", "un")),
        (1, ("two", "zwei", "deux")),
        (1, ("Two.", "zwei", "deux !")),  # a recurring item, slightly re-translated: same meaning
    ]
    assert data.units[0].languages == ("en", "de", "fr")
    assert (data.duplicate_units, data.dropped_units, data.skipped_rows) == (1, 0, 0)
    assert data.sources == paths and data.group_ids() == [0, 1, 1]


def test_aligned_files_of_different_length(tmp_path: Path) -> None:
    short = lines(tmp_path, "a.txt", ["x", "y"])
    long = lines(tmp_path, "b.txt", ["x1", "y1", "z1"])
    with pytest.raises(InputError) as caught:
        read_parallel([long, short], ["b", "a"], RowPolicy("skip"))
    assert str(caught.value) == f"{short}:2: ends after 2 row(s) but {long} has 3: the files are not line-aligned"


def test_aligned_skip_drops_the_row_in_every_file(tmp_path: Path) -> None:
    paths = [
        write(tmp_path, "en.tsv", "premise\thypothesis\nP0\tH0\nP1\tH1\nP2\tH2\nP3\t \n"),
        write(tmp_path, "de.tsv", b"premise\thypothesis\nQ0\tI0\nQ1\t\xff\nQ2\tI2\nQ3\tI3\n"),
    ]
    policy = RowPolicy("skip")
    data = read_aligned_files(
        paths, languages=["en", "de"], columns=["premise", "hypothesis"], header=True, policy=policy
    )
    assert [g.texts for g in data.units] == [("P0", "Q0"), ("H0", "I0"), ("P2", "Q2"), ("H2", "I2")]
    assert data.skipped_rows == 2 and policy.skipped == 2
    assert [str(e) for e in policy.first_errors] == [
        f"{paths[1]}:3: not valid UTF-8 (byte 4 of the line)",
        f"{paths[0]}:5: empty text in column 'hypothesis'",
    ]
    with pytest.raises(InputError, match=r"de.tsv:3: not valid UTF-8"):
        read_aligned_files(paths, languages=["en", "de"], columns=["premise"], header=True)


def test_aligned_argument_errors(tmp_path: Path) -> None:
    one = lines(tmp_path, "a.txt", ["same"])
    with pytest.raises(InputError, match="at least two files"):
        read_parallel([one], ["a"])
    with pytest.raises(InputError, match="2 aligned files but 1 languages"):
        read_parallel([one, one], ["a"])
    with pytest.raises(InputError, match=r"no training groups .* 1 unit"):
        read_parallel([one, lines(tmp_path, "b.txt", ["same"])], ["a", "b"])  # identical texts: no pair


@FAST
@given(
    rows=st.lists(st.tuples(line_text, st.one_of(line_text, st.binary(max_size=4))), min_size=1, max_size=8),
)
def test_aligned_files_from_odd_rows(tmp_path: Path, rows: list[tuple[str, str | bytes]]) -> None:
    left = write(tmp_path, "l.txt", "".join(a + "\n" for a, _ in rows))
    right = write(
        tmp_path,
        "r.txt",
        b"".join((b if isinstance(b, bytes) else b.encode()).replace(b"\n", b"") + b"\n" for _, b in rows),
    )
    try:
        data = read_parallel([left, right], ["l", "r"], RowPolicy("skip"))
    except ParaxlError:
        return
    check_groups(data.units)
    kept_rows = len(rows) - data.skipped_rows
    assert len(data.units) + data.duplicate_units + data.dropped_units == kept_rows


def test_benchmark_layouts_on_small_files(tmp_path: Path) -> None:
    paws(tmp_path, "pawsx/resplit/en/train.tsv", [("1", "A", "B", 1), ("2", "C", "D", 1), ("3", "E", "F", 1)])
    paws(tmp_path, "pawsx/resplit/de/train.tsv", [("1", "a", "b", 1), ("2", "NS", "d", 1), ("3", "e", "oops")])
    policy = RowPolicy("skip")
    data = read_pawsx(tmp_path, "train", ["en", "de"], policy=policy)
    assert [(g.group_id, g.texts) for g in data.units] == [
        (0, ("A", "B")),
        (1, ("C", "D")),
        (2, ("E", "F")),
        (0, ("a", "b")),
    ]
    assert data.skipped_rows == 2 and policy.skipped == 1  # "NS" is untranslated, not malformed
    for language in ("en", "de"):
        write(tmp_path, f"xnli/dev-{language}.tsv", f"premise\thypothesis\tlabel\nP{language}\tH{language}\tneutral\n")
    xnli = read_xnli(tmp_path, splits=("dev",), languages=("en", "de"))
    assert [g.texts for g in xnli.units] == [("Pen", "Pde"), ("Hen", "Hde")]
    with pytest.raises(InputError, match=r"unknown XNLI language\(s\) \['xx'\]"):
        read_xnli(tmp_path, languages=("en", "xx"))
    with pytest.raises(InputError, match=r"test-en\.tsv: no such file"):
        read_xnli(tmp_path, languages=("en", "de"))


def test_real_pawsx_resplit_train(data_dir: Path) -> None:
    data = read_pawsx(data_dir, "train")
    check_groups(data.units)
    assert 100 < data.skipped_rows < 400 and len(data.sources) == 7  # pairs with an untranslated "NS"
    assert not any("NS" in (*g.texts, *g.negatives) for g in data.units)
    per_language = Counter(g.languages[0] for g in data.units)
    assert set(per_language) == set(PAWSX_LANGUAGES)
    assert all(700 <= count <= 1300 for count in per_language.values()), per_language
    groups = Counter(data.group_ids())
    assert 900 <= len(groups) <= 1400 and max(groups.values()) <= 7  # at most one unit per language
    assert max(len(g.texts) for g in data.units) < 40  # no chains through junk translations
    assert sum(len(g.negatives) > 0 for g in data.units) > len(data.units) / 3
    validation = read_pawsx_pairs(data_dir, "validation", ["en"])["en"]
    held_out = {text.strip() for p in validation for text in (p.first, p.second)}
    train = read_pawsx_pairs(data_dir, "train", ["en"])["en"]
    trained = {text.strip() for p in train for text in (p.first, p.second)}
    grouped = {text for g in data.units if g.languages[0] == "en" for text in (*g.texts, *g.negatives)}
    assert grouped <= trained
    assert len(held_out) > 300 and not held_out & trained  # the resplit leaks no English sentence


def test_real_pawsx_pairs_and_errors(data_dir: Path) -> None:
    pairs = read_pawsx_pairs(data_dir, "dev_2k", ["de", "zh"], protocol="official")
    assert list(pairs) == ["de", "zh"] and all(len(p) == 2000 for p in pairs.values())
    assert pairs["de"][0].key == pairs["zh"][0].key and pairs["de"][0].label in (0, 1)
    with pytest.raises(InputError, match="unknown PAWS-X resplit split 'dev_2k'"):
        read_pawsx(data_dir, "dev_2k")
    with pytest.raises(InputError, match=r"unknown PAWS-X language\(s\) \['it'\]"):
        read_pawsx(data_dir, "train", ["en", "it"])
    with pytest.raises(InputError, match=r"test_2k\.tsv: no such file"):
        read_pawsx(data_dir, "test_2k", ["en"], protocol="official")  # en has only test_2k.derived


def test_parse_languages_from_a_command_line() -> None:
    assert parse_languages(" en, de ,zh,") == ("en", "de", "zh")
    assert parse_languages("sw,th", XNLI_LANGUAGES, "XNLI") == ("sw", "th")
    with pytest.raises(InputError, match=r"unknown PAWS-X language\(s\) \[\]"):
        parse_languages(" , ")
    with pytest.raises(InputError, match=r"unknown XNLI language\(s\) \['ja'\]"):
        parse_languages("en,ja", XNLI_LANGUAGES, "XNLI")
    with pytest.raises(InputError, match=r"PAWS-X languages repeat: \['en', 'de', 'en'\]"):
        parse_languages("en,de,en")


def test_real_xnli_dev_premises(data_dir: Path) -> None:
    data = read_xnli(data_dir, splits=("dev",), columns=("premise",))
    check_groups(data.units)
    assert 700 <= len(data.units) <= 900  # 2490 rows, each premise three times
    assert data.duplicate_units >= 1600
    full = [g for g in data.units if len(g.texts) == 15]
    assert len(full) > 0.95 * len(data.units) and set(full[0].languages) == set(XNLI_LANGUAGES)


def test_real_tatoeba_parallel(data_dir: Path) -> None:
    folder = data_dir / "tatoeba" / "v1"
    data = read_parallel([folder / "tatoeba.deu-eng.deu", folder / "tatoeba.deu-eng.eng"], ["de", "en"])
    assert isinstance(data, TrainingData) and len(data.units) + data.duplicate_units + data.dropped_units == 1000
    check_groups(data.units)
