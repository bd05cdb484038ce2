from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from paraxl.errors import InputError
from paraxl.evaluation.loaders import (
    BUCC_PAIRS,
    MTOP_LANGUAGES,
    SIB200_LABELS,
    SIB200_SPLITS,
    STS17_TRACKS,
    STSB_LANGUAGES,
    TATOEBA_LANGUAGES,
    TATOEBA_XTREME36,
    read_bucc,
    read_korsts,
    read_mtop,
    read_sib200,
    read_sts17,
    read_sts17_extended,
    read_sts22,
    read_sts_pairs_file,
    read_stsb_cross_lingual,
    read_stsb_multi_mt,
    read_tatoeba,
    sib200_languages,
)


def write(root: Path, relative: str, data: str | bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def lines(*rows: str) -> str:
    return "".join(row + "\n" for row in rows)


def raises_at(path: Path, line: int | None, *words: str) -> Any:
    """Expect an InputError located at ``path[:line]`` whose message contains ``words``."""
    where = f"{path}:{line}: " if line is not None else f"{path}: "
    pattern = "^" + re.escape(where) + "".join(f"(?=.*{re.escape(word)})" for word in words)
    return pytest.raises(InputError, match=pattern)


# ---------------------------------------------------------------------------------------- real data


def test_bucc_zh_en_sample(data_dir: Path) -> None:
    corpus = read_bucc(data_dir)
    assert corpus.name == "zh-en.sample"
    assert (len(corpus.source_ids), len(corpus.target_ids), len(corpus.gold)) == (8624, 13589, 257)
    assert len(corpus.source_texts) == 8624 and len(corpus.target_texts) == 13589
    assert corpus.source_ids[0] == "zh-000000001"
    assert corpus.source_texts[0].startswith("辽宁省，简称辽")
    assert corpus.target_ids[0] == "en-000000001"
    assert corpus.target_texts[0].startswith("Coalition strategy relied on establishing")
    assert corpus.gold[0] == ("zh-000000057", "en-000008530")
    assert [path.name for path in corpus.files] == ["zh-en.sample.zh", "zh-en.sample.en", "zh-en.sample.gold"]


def test_tatoeba_language_lists(data_dir: Path) -> None:
    on_disk = {path.name.split(".")[1].removesuffix("-eng") for path in (data_dir / "tatoeba" / "v1").glob("tatoeba.*")}
    assert len(TATOEBA_LANGUAGES) == len(set(TATOEBA_LANGUAGES)) == 112
    assert set(TATOEBA_LANGUAGES) == on_disk
    assert len(TATOEBA_XTREME36) == len(set(TATOEBA_XTREME36)) == 36
    assert set(TATOEBA_XTREME36) <= set(TATOEBA_LANGUAGES)


def test_tatoeba_every_language(data_dir: Path) -> None:
    sizes = {}
    for language in TATOEBA_LANGUAGES:
        corpus = read_tatoeba(data_dir, language)
        assert corpus.name == f"{language}-eng"
        assert len(corpus.source) == len(corpus.target)
        assert [path.name for path in corpus.files] == [
            f"tatoeba.{language}-eng.{language}",
            f"tatoeba.{language}-eng.eng",
        ]
        sizes[language] = len(corpus.source)
    assert max(sizes.values()) == 1000 and min(sizes.values()) > 0
    assert sum(size == 1000 for size in sizes.values()) == 72
    afr = read_tatoeba(data_dir, "afr")
    assert (afr.source[0], afr.target[0]) == ("Haar Engels is uitstekend.", "Her English is excellent.")


def test_sts17_tracks(data_dir: Path) -> None:
    names = []
    for track in STS17_TRACKS:
        pairs = read_sts17(data_dir, track)
        assert len(pairs.first) == len(pairs.second) == len(pairs.gold) == 250  # no blank gold lines in 2017
        assert all(0.0 <= score <= 5.0 for score in pairs.gold)
        assert [path.parent.name for path in pairs.files] == ["STS2017.eval.v1.1", "STS2017.gs"]
        names.append(pairs.name)
    assert names == ["track1.ar-ar", "track2.ar-en", "track3.es-es", "track4a.es-en", "track4b.es-en", "track5.en-en"]
    en = read_sts17(data_dir, "en-en")
    assert en.first[0] == "A person is on a baseball team."
    assert en.second[0] == "A person is playing basketball on a team."
    assert en.gold[:2] == (2.4, 0.2)
    assert read_sts17(data_dir, "es-en-wmt").gold[:2] == (5.0, 4.0)  # track 4b's gold is written "5", "4"


def test_stsb_multi_mt(data_dir: Path) -> None:
    for language in STSB_LANGUAGES:
        assert len(read_stsb_multi_mt(data_dir, language).gold) == 1379
    en = read_stsb_multi_mt(data_dir, "en")
    assert en.name == "en.test"
    assert (en.first[0], en.second[0], en.gold[0]) == (
        "A girl is styling her hair.",
        "A girl is brushing her hair.",
        2.5,
    )
    assert len(read_stsb_multi_mt(data_dir, "de", "dev").gold) == 1500
    assert len(read_stsb_multi_mt(data_dir, "de", "train").gold) == 5749


def test_stsb_cross_lingual(data_dir: Path) -> None:
    pairs = read_stsb_cross_lingual(data_dir, "en", "de")
    assert pairs.name == "en-de.test"
    assert len(pairs.gold) == 1379
    assert (pairs.first[0], pairs.second[0], pairs.gold[0]) == (
        "A girl is styling her hair.",
        "Ein Mädchen bürstet sich die Haare.",
        2.5,
    )
    assert pairs.gold == read_stsb_multi_mt(data_dir, "en").gold
    assert [path.name for path in pairs.files] == ["stsb-en-test.csv", "stsb-de-test.csv"]


def test_korsts(data_dir: Path) -> None:
    sizes = {split: len(read_korsts(data_dir, split).gold) for split in ("train", "dev", "test")}
    assert sizes == {"train": 5749, "dev": 1500, "test": 1379}
    test = read_korsts(data_dir, "test")
    assert (test.first[0], test.second[0], test.gold[0]) == (
        "한 소녀가 머리를 스타일링하고 있다.",
        "한 소녀가 머리를 빗고 있다.",
        2.5,
    )
    # quotes are text in KorSTS (no CSV quoting): line 409 of the file starts with one
    assert test.first[407].startswith('"다이빙 금지"라고')


def test_sib200(data_dir: Path) -> None:
    languages = sib200_languages(data_dir)
    assert len(languages) == 21 and "eng_Latn" in languages and languages == tuple(sorted(languages))
    for language in languages:
        sizes = [len(read_sib200(data_dir, language, split).texts) for split in SIB200_SPLITS]
        assert sizes == [701, 99, 204], language
    train = read_sib200(data_dir, "eng_Latn", "train")
    assert train.name == "eng_Latn.train"
    assert set(train.labels) == set(SIB200_LABELS) and len(SIB200_LABELS) == 7
    assert (train.labels[0], train.texts[0]) == (
        "geography",
        "Turkey is encircled by seas on three sides: the Aegean Sea to the west, the Black Sea to the north "
        "and the Mediterranean Sea to the south.",
    )
    assert [path.name for path in train.files] == ["train.tsv", "labels.txt"]
    dev = read_sib200(data_dir, "eng_Latn", "dev")
    quoted = [text for text in dev.texts if text.startswith("In an interview, he said the new variant")]
    assert quoted == [
        'In an interview, he said the new variant was "very highly troubling and alarming because of the very high '
        'fatality rate."'
    ]


# ------------------------------------------------------------------------------ missing data, choices


def test_missing_data_dir_and_file(tmp_path: Path) -> None:
    absent = tmp_path / "nowhere"
    with pytest.raises(InputError, match=r"data directory .*nowhere does not exist.*tatoeba/v1/tatoeba.afr-eng.afr"):
        read_tatoeba(absent, "afr")
    expected = tmp_path / "korsts" / "sts-test.tsv"
    with raises_at(expected, None, "KorSTS test file not found", "korsts/sts-test.tsv", "data directory"):
        read_korsts(tmp_path)
    with raises_at(tmp_path / "bucc2018" / "zh-en", None, "folder bucc2018/zh-en", "data directory"):
        read_bucc(tmp_path)
    with raises_at(tmp_path / "sib200", None, "folder sib200"):
        sib200_languages(tmp_path)


@pytest.mark.parametrize(
    ("call", "valid"),
    [
        (lambda d: read_bucc(d, "xx-en"), BUCC_PAIRS),
        (lambda d: read_bucc(d, "zh-en", "dev"), ("sample", "training", "test")),
        (lambda d: read_tatoeba(d, "xxx"), TATOEBA_LANGUAGES[:3]),
        (lambda d: read_sts17(d, "tr-en"), STS17_TRACKS),
        (lambda d: read_stsb_multi_mt(d, "ko"), STSB_LANGUAGES),
        (lambda d: read_stsb_multi_mt(d, "en", "validation"), ("train", "dev", "test")),
        (lambda d: read_stsb_cross_lingual(d, "en", "ko"), STSB_LANGUAGES),
        (lambda d: read_korsts(d, "validation"), ("train", "dev", "test")),
        (lambda d: read_sib200(d, "eng_Latn", "validation"), SIB200_SPLITS),
        (lambda d: read_mtop(d, "ja", "test"), MTOP_LANGUAGES),
        (lambda d: read_mtop(d, "en", "dev"), ("train", "eval", "test")),
    ],
)
def test_unknown_choices_list_the_valid_ones(tmp_path: Path, call: object, valid: tuple[str, ...]) -> None:
    assert callable(call)
    with pytest.raises(InputError, match=r"^unknown .*; use one of") as caught:
        call(tmp_path)
    assert all(choice in str(caught.value) for choice in valid)


# ------------------------------------------------------------------------------------------- BUCC


def bucc_dir(tmp_path: Path, zh: str, en: str, gold: str | None, split: str = "sample") -> Path:
    write(tmp_path, f"bucc2018/zh-en/zh-en.{split}.zh", zh)
    write(tmp_path, f"bucc2018/zh-en/zh-en.{split}.en", en)
    if gold is not None:
        write(tmp_path, f"bucc2018/zh-en/zh-en.{split}.gold", gold)
    return tmp_path / "bucc2018" / "zh-en"


def test_bucc_small_and_test_split_without_gold(tmp_path: Path) -> None:
    bucc_dir(tmp_path, lines("zh-1\t你好 ", "zh-2\t再见"), lines("en-1\thello", "en-2\t bye"), lines("zh-1\ten-1"))
    corpus = read_bucc(tmp_path)
    assert corpus.source_texts == ("你好 ", "再见") and corpus.target_texts == ("hello", " bye")
    assert corpus.gold == (("zh-1", "en-1"),)
    bucc_dir(tmp_path, lines("zh-1\ta"), lines("en-1\tb"), None, split="test")
    test = read_bucc(tmp_path, split="test")
    assert test.gold == () and len(test.files) == 2 and test.name == "zh-en.test"


def test_bucc_errors(tmp_path: Path) -> None:
    folder = bucc_dir(tmp_path, lines("zh-1\ta", "zh-2\tb\tc"), lines("en-1\tb"), lines("zh-1\ten-1"))
    with raises_at(folder / "zh-en.sample.zh", 2, "expected 2 tab-separated fields, found 3"):
        read_bucc(tmp_path)
    bucc_dir(tmp_path, lines("zh-1\ta", "zh-2\tb"), lines("en-1\tb", "en-2\tc", "en-1\td"), lines("zh-1\ten-1"))
    with raises_at(folder / "zh-en.sample.en", 3, "'en-1' repeats line 1"):
        read_bucc(tmp_path)
    bucc_dir(tmp_path, lines("zh-1\ta"), lines("en-1\tb"), lines("zh-1\ten-1", "zh-9\ten-1"))
    with raises_at(folder / "zh-en.sample.gold", 2, "'zh-9' does not occur in", "zh-en.sample.zh"):
        read_bucc(tmp_path)
    bucc_dir(tmp_path, lines("zh-1\ta"), lines("en-1\tb"), lines("zh-1\ten-7"))
    with raises_at(folder / "zh-en.sample.gold", 1, "'en-7' does not occur in", "zh-en.sample.en"):
        read_bucc(tmp_path)
    bucc_dir(tmp_path, lines("zh-1\ta"), lines("en-1\tb"), lines("zh-1\ten-1", "zh-1\ten-1"))
    with raises_at(folder / "zh-en.sample.gold", 2, "repeats line 1"):
        read_bucc(tmp_path)
    (folder / "zh-en.sample.gold").unlink()
    with raises_at(folder / "zh-en.sample.gold", None, "gold pairs not found", "data directory"):
        read_bucc(tmp_path)


# ----------------------------------------------------------------------------------------- Tatoeba


def test_tatoeba_small_keeps_empty_lines_and_text(tmp_path: Path) -> None:
    write(tmp_path, "tatoeba/v1/tatoeba.afr-eng.afr", "  Hallo \r\n\nTot siens\n")
    write(tmp_path, "tatoeba/v1/tatoeba.afr-eng.eng", "Hello\n\nGoodbye")
    corpus = read_tatoeba(tmp_path, "afr")
    assert corpus.source == ("  Hallo ", "", "Tot siens")
    assert corpus.target == ("Hello", "", "Goodbye")


def test_tatoeba_errors(tmp_path: Path) -> None:
    source = write(tmp_path, "tatoeba/v1/tatoeba.afr-eng.afr", lines("a", "b", "c"))
    target = write(tmp_path, "tatoeba/v1/tatoeba.afr-eng.eng", lines("a", "b"))
    with raises_at(target, 2, "ends after 2 line(s)", f"{source} has 3", "not aligned"):
        read_tatoeba(tmp_path, "afr")
    write(tmp_path, "tatoeba/v1/tatoeba.afr-eng.eng", b"a\nb\xff\nc\n")
    with raises_at(target, 2, "not valid UTF-8"):
        read_tatoeba(tmp_path, "afr")
    write(tmp_path, "tatoeba/v1/tatoeba.afr-eng.eng", b"")
    with raises_at(target, None, "the file is empty"):
        read_tatoeba(tmp_path, "afr")


# ------------------------------------------------------------------------------------------- STS17


def sts17_files(tmp_path: Path, inputs: str, gold: str) -> tuple[Path, Path]:
    return (
        write(tmp_path, "sts17/STS2017.eval.v1.1/STS.input.track5.en-en.txt", inputs),
        write(tmp_path, "sts17/STS2017.gs/STS.gs.track5.en-en.txt", gold),
    )


def test_sts17_blank_gold_skips_the_pair(tmp_path: Path) -> None:
    sts17_files(tmp_path, lines("a\tb", "c\td", " e\tf "), lines("4.2", "", "1"))
    pairs = read_sts17(tmp_path, "en-en")
    assert (pairs.first, pairs.second, pairs.gold) == (("a", " e"), ("b", "f "), (4.2, 1.0))
    assert pairs.name == "track5.en-en"


def test_sts17_errors(tmp_path: Path) -> None:
    inputs, gold = sts17_files(tmp_path, lines("a\tb", "c\td"), lines("4.2", "high"))
    with raises_at(gold, 2, "score 'high' is not a number"):
        read_sts17(tmp_path, "en-en")
    sts17_files(tmp_path, lines("a\tb", "c\td"), lines("4.2", "7"))
    with raises_at(gold, 2, "outside the range 0 to 5"):
        read_sts17(tmp_path, "en-en")
    sts17_files(tmp_path, lines("a\tb", "c d"), lines("4.2", "1"))
    with raises_at(inputs, 2, "expected 2 tab-separated fields, found 1"):
        read_sts17(tmp_path, "en-en")
    sts17_files(tmp_path, lines("a\tb", "c\td", "e\tf"), lines("4.2", "1"))
    with raises_at(gold, None, "ends after 2 line(s)", f"{inputs} has 3"):
        read_sts17(tmp_path, "en-en")


# ----------------------------------------------------------------------------------- STS-B, KorSTS


def test_stsb_csv_quoting_and_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "stsb_multi_mt/stsb-en-test.csv", lines('"A, quoted ""one""",b,3.5', "c,d,0"))
    pairs = read_stsb_multi_mt(tmp_path, "en")
    assert pairs.first == ('A, quoted "one"', "c") and pairs.gold == (3.5, 0.0)
    write(tmp_path, "stsb_multi_mt/stsb-en-test.csv", lines("a,b,3.5", "c,d,e,1"))
    with raises_at(path, 2, "expected 3 comma-separated fields, found 4"):
        read_stsb_multi_mt(tmp_path, "en")
    write(tmp_path, "stsb_multi_mt/stsb-en-test.csv", lines("a,b,3.5", "c,d,n/a"))
    with raises_at(path, 2, "'n/a' is not a number"):
        read_stsb_multi_mt(tmp_path, "en")


def test_stsb_cross_lingual_alignment(tmp_path: Path) -> None:
    en = write(tmp_path, "stsb_multi_mt/stsb-en-test.csv", lines("a1,a2,1.0", "b1,b2,2.5"))
    de = write(tmp_path, "stsb_multi_mt/stsb-de-test.csv", lines("x1,x2,1", "y1,y2,2.5"))
    pairs = read_stsb_cross_lingual(tmp_path, "en", "de")
    assert (pairs.first, pairs.second, pairs.gold) == (("a1", "b1"), ("x2", "y2"), (1.0, 2.5))
    write(tmp_path, "stsb_multi_mt/stsb-de-test.csv", lines("x1,x2,1", "y1,y2,4"))
    with raises_at(en, 2, "score 2.5 differs from 4", f"{de}:2", "not aligned"):
        read_stsb_cross_lingual(tmp_path, "en", "de")
    write(tmp_path, "stsb_multi_mt/stsb-de-test.csv", lines("x1,x2,1"))
    with raises_at(de, 1, "ends after 1 row(s)", f"{en} has 2"):
        read_stsb_cross_lingual(tmp_path, "en", "de")


KORSTS_HEADER = "genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2"


def test_korsts_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "korsts/sts-test.tsv", lines(KORSTS_HEADER, 'g\tf\t2012\t1\t2.5\t"인용" 문장\t문장'))
    assert read_korsts(tmp_path).first == ('"인용" 문장',)
    write(
        tmp_path, "korsts/sts-test.tsv", lines(KORSTS_HEADER, "g\tf\t2012\t1\t2.5\ta\tb", "g\tf\t2012\t2\t3\ta\tb\tc")
    )
    with raises_at(path, 3, "expected 7 tab-separated fields, found 8"):
        read_korsts(tmp_path)
    write(tmp_path, "korsts/sts-test.tsv", lines(KORSTS_HEADER, "g\tf\t2012\t1\tx\ta\tb"))
    with raises_at(path, 2, "score 'x' is not a number"):
        read_korsts(tmp_path)
    write(tmp_path, "korsts/sts-test.tsv", lines("genre\tscore\ts1\ts2", "g\t1\ta\tb"))
    with raises_at(path, 1, "no column 'sentence1'"):
        read_korsts(tmp_path)


# ------------------------------------------------------------------------- STS17 extended, STS22


def test_sts_pairs_file_jsonl_by_language(tmp_path: Path) -> None:
    rows = [
        {"sentence1": "a", "sentence2": "b", "score": 4.5, "lang": "en-de"},
        {"sentence1": "c", "sentence2": "d", "score": 1, "lang": "fr-en"},
        {"sentence1": "e", "sentence2": "f", "score": "2.0", "lang": "en-de", "id": 7},
    ]
    path = write(tmp_path, "sts17.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    found = read_sts_pairs_file(path)
    assert list(found) == ["en-de", "fr-en"]
    assert (found["en-de"].first, found["en-de"].second, found["en-de"].gold) == (("a", "e"), ("b", "f"), (4.5, 2.0))
    assert found["fr-en"].gold == (1.0,) and found["fr-en"].files == (path,)
    assert list(read_sts17_extended(path)) == ["en-de", "fr-en"]


def test_sts_pairs_file_names_without_language(tmp_path: Path) -> None:
    row = json.dumps({"sentence1": "a", "sentence2": "b", "score": 3.0}) + "\n"
    assert list(read_sts_pairs_file(write(tmp_path, "en-de/test.jsonl", row))) == ["en-de"]
    assert list(read_sts_pairs_file(write(tmp_path, "ko-ko.jsonl", row))) == ["ko-ko"]
    assert list(read_sts_pairs_file(tmp_path / "ko-ko.jsonl", name="mine")) == ["mine"]
    tsv = write(tmp_path, "pairs.tsv", lines("sentence1\tsentence2\tsimilarity", "a\tb\t0.5"))
    assert read_sts_pairs_file(tsv, score_column="similarity")["pairs"].gold == (0.5,)
    csv = write(tmp_path, "sts22.csv", lines("id,lang,sentence1,sentence2,score", '1,de,"a, b",c,4', "2,de-en,d,e,1"))
    found = read_sts22(csv)
    assert found["de"].first == ("a, b",) and found["de-en"].gold == (1.0,)


def test_sts_pairs_file_errors(tmp_path: Path) -> None:
    good = {"sentence1": "a", "sentence2": "b", "score": 3.0, "lang": "de"}

    def jsonl(*rows: object) -> Path:
        return write(
            tmp_path, "bad.jsonl", "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
        )

    with raises_at(jsonl(good, {"sentence1": "a", "score": 1}), 2, "no key 'sentence2'"):
        read_sts_pairs_file(tmp_path / "bad.jsonl")
    with raises_at(jsonl(good, "{not json"), 2, "invalid JSON"):
        read_sts_pairs_file(tmp_path / "bad.jsonl")
    with raises_at(jsonl(good, {**good, "score": "high"}), 2, "score 'high' is not a number"):
        read_sts_pairs_file(tmp_path / "bad.jsonl")
    with raises_at(jsonl(good, {**good, "score": True}), 2, "key 'score' holds bool, expected a number"):
        read_sts_pairs_file(tmp_path / "bad.jsonl")
    with raises_at(jsonl(good, {**good, "sentence1": None}), 2, "key 'sentence1' holds null, expected text"):
        read_sts_pairs_file(tmp_path / "bad.jsonl")
    with raises_at(jsonl(good, '{"sentence1": "\\ud800", "sentence2": "b", "score": 1}'), 2, "lone surrogate"):
        read_sts_pairs_file(tmp_path / "bad.jsonl")
    without = {key: value for key, value in good.items() if key != "lang"}
    with raises_at(jsonl(good, without), 2, "lacks the 'lang' column"):
        read_sts_pairs_file(tmp_path / "bad.jsonl")
    with raises_at(jsonl(good, {**good, "score": 5.0}), 2, "outside the range 1 to 4"):
        read_sts22(tmp_path / "bad.jsonl")
    with raises_at(jsonl(good, {**good, "score": 5.5}), 2, "outside the range 0 to 5"):
        read_sts17_extended(tmp_path / "bad.jsonl")
    gz = write(tmp_path, "test.jsonl.gz", b"\x1f\x8b")
    with raises_at(gz, None, "extension '.gz'", "decompress"):
        read_sts_pairs_file(gz)
    tsv = write(tmp_path, "bad.tsv", lines("sentence1\tsentence2\tscore", "a\tb\t1", "c\td"))
    with raises_at(tsv, 3, "expected 3 tab-separated fields, found 2"):
        read_sts_pairs_file(tsv)
    with raises_at(tmp_path / "none.jsonl", None, "no such file"):
        read_sts_pairs_file(tmp_path / "none.jsonl")


# ---------------------------------------------------------------------------------------- SIB-200


SIB_HEADER = "index_id\tcategory\ttext"


def test_sib200_small(tmp_path: Path) -> None:
    for split in SIB200_SPLITS:
        write(
            tmp_path,
            f"sib200/xxx_Latn/{split}.tsv",
            lines(SIB_HEADER, '1\ttravel\t"He said ""no"" twice"', "2\thealth\t x "),
        )
    write(tmp_path, "sib200/partial_Latn/train.tsv", lines(SIB_HEADER))
    assert sib200_languages(tmp_path) == ("xxx_Latn",)
    texts = read_sib200(tmp_path, "xxx_Latn", "dev")
    assert texts.texts == ('He said "no" twice', " x ") and texts.labels == ("travel", "health")
    assert [path.name for path in texts.files] == ["dev.tsv"]  # no labels.txt: checked against SIB200_LABELS
    labels = write(tmp_path, "sib200/labels.txt", lines("travel", "health"))
    assert read_sib200(tmp_path, "xxx_Latn", "dev").files[1] == labels


def test_sib200_errors(tmp_path: Path) -> None:
    for split in SIB200_SPLITS:
        write(tmp_path, f"sib200/xxx_Latn/{split}.tsv", lines(SIB_HEADER, "1\ttravel\ta"))
    with pytest.raises(InputError, match=r"^unknown SIB-200 language 'yyy_Latn'; use one of xxx_Latn$"):
        read_sib200(tmp_path, "yyy_Latn", "dev")
    labels = write(tmp_path, "sib200/xxx_Latn/labels.txt", lines("travel", "health"))
    path = write(tmp_path, "sib200/xxx_Latn/dev.tsv", lines(SIB_HEADER, "1\ttravel\ta", "2\tsport\tb"))
    with raises_at(path, 3, "unknown category 'sport'", f"{labels} lists travel, health"):
        read_sib200(tmp_path, "xxx_Latn", "dev")
    write(tmp_path, "sib200/xxx_Latn/dev.tsv", lines(SIB_HEADER, '1\ttravel\t"open ""quote'))
    with raises_at(path, 2, "malformed quoted text"):
        read_sib200(tmp_path, "xxx_Latn", "dev")
    write(tmp_path, "sib200/xxx_Latn/dev.tsv", lines(SIB_HEADER, "1\ttravel"))
    with raises_at(path, 2, "expected 3 tab-separated fields, found 2"):
        read_sib200(tmp_path, "xxx_Latn", "dev")
    write(tmp_path, "sib200/xxx_Latn/labels.txt", lines("travel", "", "health"))
    with raises_at(labels, 2, "empty line in the label list"):
        read_sib200(tmp_path, "xxx_Latn", "dev")


# ------------------------------------------------------------------------------------------- MTOP


def mtop_row(utterance: str, intent: str = "IN:GET_MESSAGE", domain: str = "messaging") -> str:
    tokens = json.dumps({"tokens": utterance.split()})
    return "\t".join(["3232323", intent, "", utterance, domain, "en_XX", f"[{intent} ]", tokens])


def test_mtop_layouts_and_labels(tmp_path: Path) -> None:
    content = lines(mtop_row("Has Angelika video messaged me ?"), mtop_row("set an alarm", "IN:CREATE_ALARM", "alarm"))
    path = write(tmp_path, "mtop/en/test.txt", content)
    domains = read_mtop(tmp_path, "en", "test")
    assert domains.labels == ("messaging", "alarm") and domains.texts[1] == "set an alarm"
    assert domains.name == "en.test.domain" and domains.files == (path,)
    intents = read_mtop(tmp_path / "mtop", "en", "test", label="intent")
    assert intents.labels == ("IN:GET_MESSAGE", "IN:CREATE_ALARM")
    assert read_mtop(path, "en", "test").texts == domains.texts


def test_mtop_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "mtop/de/train.txt", lines(mtop_row("a"), "1\tIN:X\t\tb\tweather"))
    with raises_at(path, 2, "expected 8 tab-separated fields, found 5"):
        read_mtop(tmp_path, "de", "train")
    write(tmp_path, "mtop/de/train.txt", lines(mtop_row("a", domain="")))
    with raises_at(path, 1, "empty domain"):
        read_mtop(tmp_path, "de", "train")
    with raises_at(tmp_path / "mtop" / "de" / "eval.txt", None, "MTOP de eval file not found", "mtop/de/eval.txt"):
        read_mtop(tmp_path, "de", "eval")
