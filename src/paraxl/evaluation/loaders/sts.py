"""Semantic textual similarity benchmarks: sentence pairs with a gold similarity each.

Layouts under ``data_dir``::

    sts17/STS2017.eval.v1.1/STS.input.track{N}.{pair}.txt   s1<TAB>s2, one pair per line (SemEval-2017)
    sts17/STS2017.gs/STS.gs.track{N}.{pair}.txt              one gold score (0-5) per line
    stsb_multi_mt/stsb-{lang}-{split}.csv                    CSV, no header: s1,s2,score (0-5)
    korsts/sts-{split}.tsv                                   header genre filename year id score sentence1 sentence2

Spearman correlation only ranks the gold scores, so they are kept exactly as published (STS17 and
STS-B 0-5, STS22 1-4); the fixed-range benchmarks still check the range to catch a wrong column.
Files that are not in the shared data (STS17's extended cross-lingual pairs, STS22) are read by
:func:`read_sts_pairs_file` from the files a user downloads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from paraxl.data.sts_pairs import STSB_LANGUAGES, sts_relative_path, sts_row_results, sts_score
from paraxl.errors import InputError
from paraxl.evaluation.loaders._common import check_choice, data_file, read_lines
from paraxl.evaluation.records import ScoredPairs
from paraxl.io.rows import Row, RowFormat, good_rows, iter_lines, iter_rows, parse_score

__all__ = [
    "STS17_TRACKS",
    "STSB_LANGUAGES",
    "STSB_SPLITS",
    "read_korsts",
    "read_sts17",
    "read_sts17_extended",
    "read_sts22",
    "read_sts_pairs_file",
    "read_stsb_cross_lingual",
    "read_stsb_multi_mt",
]

STS17_TRACKS = ("ar-ar", "ar-en", "es-es", "es-en", "es-en-wmt", "en-en")
_STS17_FILES = {
    "ar-ar": "track1.ar-ar",
    "ar-en": "track2.ar-en",
    "es-es": "track3.es-es",
    "es-en": "track4a.es-en",  # SNLI sentences
    "es-en-wmt": "track4b.es-en",  # WMT news sentences
    "en-en": "track5.en-en",
}
STSB_SPLITS = ("train", "dev", "test")
_ZERO_TO_FIVE = (0.0, 5.0)
_PAIR_FORMATS: dict[str, RowFormat] = {".jsonl": "jsonl", ".tsv": "tsv", ".csv": "csv"}
_SPLIT_STEMS = ("train", "dev", "eval", "validation", "test")


def read_sts17(data_dir: str | Path, track: str) -> ScoredPairs:
    """One SemEval-2017 STS track (250 pairs each); ``name`` is e.g. ``"track4b.es-en"``.

    Line i of the gold file scores line i of the input file, so both must have as many lines. A
    blank gold line is SemEval's mark of an unscored pair: that pair is left out (the 2017 gold
    files have none; earlier years' do). Input lines must hold exactly two tab-separated sentences.
    """
    check_choice(track, STS17_TRACKS, "STS17 track")
    stem = _STS17_FILES[track]
    input_path = data_file(data_dir, f"sts17/STS2017.eval.v1.1/STS.input.{stem}.txt", f"STS17 {track} input")
    gold_path = data_file(data_dir, f"sts17/STS2017.gs/STS.gs.{stem}.txt", f"STS17 {track} gold scores")
    rows = list(iter_rows(input_path, "tsv", header=("sentence1", "sentence2")))
    gold_lines = read_lines(gold_path)
    if len(rows) != len(gold_lines):
        short, long = (input_path, gold_path) if len(rows) < len(gold_lines) else (gold_path, input_path)
        raise InputError(
            f"ends after {min(len(rows), len(gold_lines))} line(s) but {long} has "
            f"{max(len(rows), len(gold_lines))}: each gold line scores the input pair on the same line",
            short,
        )
    first: list[str] = []
    second: list[str] = []
    gold: list[float] = []
    for row, (number, text) in zip(rows, enumerate(gold_lines, start=1), strict=True):
        if not text.strip():
            continue  # unscored pair
        gold.append(parse_score(text.strip(), gold_path, number, bounds=_ZERO_TO_FIVE))
        first.append(row.fields["sentence1"])
        second.append(row.fields["sentence2"])
    return ScoredPairs(stem, tuple(first), tuple(second), tuple(gold), (input_path, gold_path))


def read_stsb_multi_mt(data_dir: str | Path, language: str, split: str = "test") -> ScoredPairs:
    """STS-benchmark machine-translated to ``language`` (stsb_multi_mt): 5749 / 1500 / 1379 pairs.

    CSV without header (quoted fields as in Python's :mod:`csv`): ``sentence1,sentence2,score``.
    """
    path = _stsb_path(data_dir, language, split)
    rows = _sts_rows(path)
    return ScoredPairs(
        name=f"{language}.{split}",
        first=tuple(row.fields["sentence1"] for row in rows),
        second=tuple(row.fields["sentence2"] for row in rows),
        gold=tuple(sts_score(row, path) for row in rows),
        files=(path,),
    )


def read_stsb_cross_lingual(
    data_dir: str | Path, first_language: str, second_language: str, split: str = "test"
) -> ScoredPairs:
    """Cross-lingual STS-B from two stsb_multi_mt files, whose rows are translations of each other.

    Pair i is (sentence1 of row i in ``first_language``, sentence2 of row i in ``second_language``),
    scored with row i's score. The files must have as many rows and the same score on every row
    (they do in the published data); otherwise they are not aligned and the loader refuses them.
    """
    for language in (first_language, second_language):
        check_choice(language, STSB_LANGUAGES, "stsb_multi_mt language")
    first_path = _stsb_path(data_dir, first_language, split)
    second_path = _stsb_path(data_dir, second_language, split)
    first_rows = _sts_rows(first_path)
    second_rows = _sts_rows(second_path)
    if len(first_rows) != len(second_rows):
        short, short_rows, long, long_rows = (
            (first_path, first_rows, second_path, second_rows)
            if len(first_rows) < len(second_rows)
            else (second_path, second_rows, first_path, first_rows)
        )
        raise InputError(
            f"ends after {len(short_rows)} row(s) but {long} has {len(long_rows)}: the two languages' "
            f"files are not aligned row by row",
            short,
            short_rows[-1].line if short_rows else None,
        )
    gold: list[float] = []
    for first_row, second_row in zip(first_rows, second_rows, strict=True):
        first_score = sts_score(first_row, first_path)
        second_score = sts_score(second_row, second_path)
        if first_score != second_score:
            raise InputError(
                f"score {first_score:g} differs from {second_score:g} at {second_path}:{second_row.line}: "
                f"the two languages' files are not aligned row by row",
                first_path,
                first_row.line,
            )
        gold.append(first_score)
    return ScoredPairs(
        name=f"{first_language}-{second_language}.{split}",
        first=tuple(row.fields["sentence1"] for row in first_rows),
        second=tuple(row.fields["sentence2"] for row in second_rows),
        gold=tuple(gold),
        files=(first_path, second_path),
    )


def read_korsts(data_dir: str | Path, split: str = "test") -> ScoredPairs:
    """KorSTS (Korean STS-B): 5749 / 1500 / 1379 pairs; ``score`` 0-5.

    Tab-separated with no quoting: the quotes in KorSTS sentences are text (a CSV-style reader would
    drop them, or join rows at an unmatched one). Every row of the published files has the header's
    7 fields; a row with any other count cannot be split reliably, so it is an error naming its line
    rather than a guess.
    """
    check_choice(split, STSB_SPLITS, "KorSTS split")
    path = data_file(data_dir, sts_relative_path("ko", split), f"KorSTS {split} file")
    rows = _sts_rows(path)
    return ScoredPairs(
        name=f"ko.{split}",
        first=tuple(row.fields["sentence1"] for row in rows),
        second=tuple(row.fields["sentence2"] for row in rows),
        gold=tuple(sts_score(row, path) for row in rows),
        files=(path,),
    )


def read_sts_pairs_file(
    path: str | Path, *, name: str | None = None, score_column: str = "score", language_column: str = "lang"
) -> dict[str, ScoredPairs]:
    """Scored pairs from a ``.jsonl``, ``.tsv`` or ``.csv`` file (the last two with a header row).

    Every row needs ``sentence1``, ``sentence2`` and ``score_column`` (a number, or in JSON also a
    number given as text). With a ``language_column`` (e.g. ``"en-de"``) the result has one entry
    per language value, in order of first appearance, each named by its value; without one the whole
    file is one entry named ``name``, else the file's stem, else (for stems like ``test``) its folder.
    Compressed files (``.jsonl.gz``) must be decompressed first.
    """
    return _read_pairs_file(Path(path), name, score_column, language_column, None)


def read_sts17_extended(path: str | Path, *, name: str | None = None) -> dict[str, ScoredPairs]:
    """STS17's cross-lingual pairs as MTEB publishes them (``mteb/sts17-crosslingual-sts``).

    One file per language pair on the hub (``{pair}/test.jsonl.gz``, decompressed here), rows
    ``{"sentence1": ..., "sentence2": ..., "score": 0-5}`` with a ``lang`` field where present; the
    pairs beyond the SemEval files are en-de, en-tr, en-ar, fr-en, it-en, nl-en and ko-ko.
    """
    return _read_pairs_file(Path(path), name, "score", "lang", _ZERO_TO_FIVE)


def read_sts22(path: str | Path, *, name: str | None = None) -> dict[str, ScoredPairs]:
    """SemEval-2022 task 8 (multilingual news article similarity) as MTEB publishes it.

    ``mteb/sts22-crosslingual-sts``: ``{lang}/test.jsonl`` rows with ``sentence1``, ``sentence2``
    (whole articles), ``score`` 1-4 and ``lang`` (``"de"``, ``"de-en"``, ...). The hub's copy
    inverted the original scale (there 1 meant most similar) so that higher is more similar;
    scores are kept as given, only checked to lie in 1-4.
    """
    return _read_pairs_file(Path(path), name, "score", "lang", (1.0, 4.0))


def _read_pairs_file(
    path: Path,
    name: str | None,
    score_column: str,
    language_column: str,
    bounds: tuple[float, float] | None,
) -> dict[str, ScoredPairs]:
    fmt = _PAIR_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"cannot tell the format from extension {path.suffix!r}; use a .jsonl, .tsv or .csv file "
            f"(decompress .gz files first)",
            path,
        )
    required = ("sentence1", "sentence2", score_column)
    if fmt == "jsonl":
        records = _jsonl_records(path, required[:2], score_column, language_column)
    else:
        records = ((row.line, row.fields) for row in iter_rows(path, fmt, header=True, columns=required))
    default = name or (path.parent.name if path.stem.lower() in _SPLIT_STEMS and path.parent.name else path.stem)
    groups: dict[str, tuple[list[str], list[str], list[float]]] = {}
    with_language: bool | None = None
    for line, fields in records:
        has_language = language_column in fields
        if with_language is None:
            with_language = has_language
        elif has_language != with_language:
            state = "lacks" if with_language else "has"
            raise InputError(f"this row {state} the {language_column!r} column unlike the first row", path, line)
        key = fields[language_column] if has_language else default
        if not key.strip():
            raise InputError(f"empty {language_column!r}", path, line)
        first, second, gold = groups.setdefault(key, ([], [], []))
        gold.append(parse_score(fields[score_column].strip(), path, line, bounds=bounds, what=score_column))
        first.append(fields["sentence1"])
        second.append(fields["sentence2"])
    if not groups:
        raise InputError("no scored pairs in the file", path)
    return {
        key: ScoredPairs(key, tuple(first), tuple(second), tuple(gold), (path,))
        for key, (first, second, gold) in groups.items()
    }


def _jsonl_records(
    path: Path, texts: tuple[str, ...], score_column: str, language_column: str
) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, fields)`` of a JSON lines file: ``texts`` must be strings, the score a number or text."""
    seen = False
    for number, text in iter_lines(path):
        seen = True
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid JSON ({exc.msg} at column {exc.colno})", path, number) from None
        except (ValueError, RecursionError) as exc:  # over-long integers, absurd nesting
            raise InputError(f"invalid JSON ({type(exc).__name__})", path, number) from None
        if not isinstance(record, dict):
            raise InputError(f"expected a JSON object, found {type(record).__name__}", path, number)
        fields: dict[str, str] = {}
        for key in (*texts, score_column, language_column):
            if key in record:
                fields[key] = _json_field(record[key], key, key == score_column, path, number)
            elif key != language_column:
                expected = ", ".join((*texts, score_column))
                raise InputError(f"no key {key!r} in the object (expected {expected})", path, number)
        yield number, fields
    if not seen:
        raise InputError("the file is empty", path)


def _json_field(value: object, key: str, numeric: bool, path: Path, line: int) -> str:
    """A JSON value as text: a string, or (where ``numeric``) a number; anything else is an error."""
    if numeric and isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"key {key!r} holds a lone surrogate, not valid Unicode text", path, line) from None
        return value
    kind = "null" if value is None else type(value).__name__
    raise InputError(f"key {key!r} holds {kind}, expected {'a number' if numeric else 'text'}", path, line)


def _stsb_path(data_dir: str | Path, language: str, split: str) -> Path:
    check_choice(language, STSB_LANGUAGES, "stsb_multi_mt language")
    check_choice(split, STSB_SPLITS, "stsb_multi_mt split")
    return data_file(data_dir, sts_relative_path(language, split), f"stsb_multi_mt {language} {split} file")


def _sts_rows(path: Path) -> list[Row]:
    """The rows of an STS-B file; the first bad row is an error (an evaluation set is never partly read)."""
    return list(good_rows(sts_row_results(path)))
