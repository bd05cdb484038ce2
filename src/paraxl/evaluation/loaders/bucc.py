"""BUCC 2018 bitext mining: two monolingual corpora with ids and the gold translation pairs among them.

Layout under ``data_dir`` (the official BUCC 2018 naming, for de/fr/ru/zh and every split)::

    bucc2018/{xx}-en/{xx}-en.{split}.{xx}     id<TAB>sentence, e.g. "zh-000000001<TAB>辽宁省..."
    bucc2018/{xx}-en/{xx}-en.{split}.en       id<TAB>sentence
    bucc2018/{xx}-en/{xx}-en.{split}.gold     xx-id<TAB>en-id, one gold pair per line

``split`` is ``sample``, ``training`` or ``test``; the test split is published without gold, so a
missing ``.gold`` file there gives ``gold=()`` (elsewhere it is an error). Only the ``zh-en``
sample set is in the shared data (8624 zh, 13589 en sentences, 257 gold pairs).
"""

from __future__ import annotations

from pathlib import Path

from paraxl.errors import InputError
from paraxl.evaluation.loaders._common import check_choice, data_file, data_folder
from paraxl.evaluation.records import BitextCorpus
from paraxl.io.rows import iter_rows

__all__ = ["BUCC_PAIRS", "BUCC_SPLITS", "read_bucc"]

BUCC_PAIRS = ("de-en", "fr-en", "ru-en", "zh-en")
BUCC_SPLITS = ("sample", "training", "test")


def read_bucc(data_dir: str | Path, pair: str = "zh-en", split: str = "sample") -> BitextCorpus:
    """One BUCC 2018 language pair and split; source = the non-English side, target = English.

    Ids must be unique within each corpus and every gold id must occur in its corpus.
    """
    check_choice(pair, BUCC_PAIRS, "BUCC pair")
    check_choice(split, BUCC_SPLITS, "BUCC split")
    language = pair.split("-")[0]
    data_folder(data_dir, f"bucc2018/{pair}", f"BUCC 2018 {pair} folder")
    stem = f"bucc2018/{pair}/{pair}.{split}"
    source_path = data_file(data_dir, f"{stem}.{language}", f"BUCC {pair} {split} {language} corpus")
    target_path = data_file(data_dir, f"{stem}.en", f"BUCC {pair} {split} English corpus")
    source_ids, source_texts = read_id_text_file(source_path)
    target_ids, target_texts = read_id_text_file(target_path)
    files = [source_path, target_path]
    gold: tuple[tuple[str, str], ...] = ()
    gold_path = Path(data_dir) / f"{stem}.gold"
    if split != "test" or gold_path.exists():
        gold_path = data_file(data_dir, f"{stem}.gold", f"BUCC {pair} {split} gold pairs")
        gold = _read_gold(gold_path, set(source_ids), source_path, set(target_ids), target_path)
        files.append(gold_path)
    return BitextCorpus(
        name=f"{pair}.{split}",
        source_ids=source_ids,
        source_texts=source_texts,
        target_ids=target_ids,
        target_texts=target_texts,
        gold=gold,
        files=tuple(files),
    )


def read_id_text_file(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(ids, texts)`` of one ``id<TAB>sentence`` file; an empty or repeated id is an error."""
    first_line: dict[str, int] = {}
    texts: list[str] = []
    for row in iter_rows(path, "tsv", header=("id", "text")):
        sentence_id = row.fields["id"]
        if not sentence_id.strip():
            raise InputError("empty sentence id (expected id<TAB>sentence)", path, row.line)
        if sentence_id in first_line:
            raise InputError(f"sentence id {sentence_id!r} repeats line {first_line[sentence_id]}", path, row.line)
        first_line[sentence_id] = row.line
        texts.append(row.fields["text"])
    return tuple(first_line), tuple(texts)


def _read_gold(
    path: Path, source_ids: set[str], source_path: Path, target_ids: set[str], target_path: Path
) -> tuple[tuple[str, str], ...]:
    """The ``source-id<TAB>target-id`` pairs; each id must exist in its corpus and no pair may repeat."""
    first_line: dict[tuple[str, str], int] = {}
    for row in iter_rows(path, "tsv", header=("source", "target")):
        pair = (row.fields["source"], row.fields["target"])
        if pair[0] not in source_ids:
            raise InputError(f"gold source id {pair[0]!r} does not occur in {source_path}", path, row.line)
        if pair[1] not in target_ids:
            raise InputError(f"gold target id {pair[1]!r} does not occur in {target_path}", path, row.line)
        if pair in first_line:
            raise InputError(f"gold pair {pair[0]} {pair[1]} repeats line {first_line[pair]}", path, row.line)
        first_line[pair] = row.line
    return tuple(first_line)
