"""Labeled sentence pairs (PAWS-X layout) and the groups they imply.

A label-1 pair says its two sentences mean the same; a label-0 pair says they do not, which makes
the second a hard negative of the first. Files of different languages aligned by an ``id`` column
(PAWS-X) also say that same-id sentences are translations of each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from paraxl.data.grouping import GroupBuilder
from paraxl.data.records import TextUnit
from paraxl.errors import InputError
from paraxl.io.rows import Row, RowPolicy, choose_format, iter_rows, read_header

PairFormat = Literal["tsv", "csv", "jsonl"]
_EXTENSIONS: dict[str, PairFormat] = {".tsv": "tsv", ".csv": "csv", ".jsonl": "jsonl"}
_LABELS = {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0}
KEY_COLUMN = "id"


@dataclass(frozen=True)
class LabeledPair:
    """One row: ``label`` is 1 (paraphrase), 0 (not), or None (no label column: taken as 1).

    ``key`` is the row's ``id`` (None without one); it aligns translations across files.
    """

    first: str
    second: str
    label: int | None
    line: int
    path: Path
    key: str | None = None
    language: str = ""


def pair_format(path: Path, fmt: str | None = None) -> PairFormat:
    """``fmt`` checked, or the format named by the extension (.tsv, .csv, .jsonl)."""
    return choose_format(path, fmt, _EXTENSIONS, "use .tsv, .csv or .jsonl")  # type: ignore[return-value]


def read_labeled_pairs(
    path: str | Path,
    *,
    fmt: str | None = None,
    first: str = "sentence1",
    second: str = "sentence2",
    label: str | None = "label",
    language: str = "",
    policy: RowPolicy | None = None,
) -> list[LabeledPair]:
    """Every good pair of ``path``; bad rows (bad label, empty text, wrong width) go to ``policy``.

    TSV and CSV need a header naming ``first`` and ``second``; without a ``label`` column (or with
    ``label=None``) every pair counts as a paraphrase. In JSON lines, a row without the label key is
    unlabeled. Labels: 1/0, 1.0/0.0, true/false (any case).
    """
    path = Path(path)
    kind = pair_format(path, fmt)
    policy = policy or RowPolicy()
    header = set(read_header(path, kind)) if kind != "jsonl" else None
    if header is not None and label is not None and label not in header:
        label = None
    pairs = []
    optional = (KEY_COLUMN,) if label is None else (label, KEY_COLUMN)
    for row in iter_rows(path, kind, policy=policy, columns=(first, second), optional=optional):
        try:
            pairs.append(_pair(row, path, first, second, label, language))
        except InputError as error:
            policy.reject(error)
    return pairs


def _pair(row: Row, path: Path, first: str, second: str, label: str | None, language: str) -> LabeledPair:
    texts = []
    for column in (first, second):
        text = row.fields[column]
        if not text.strip():
            raise InputError(f"empty text in column {column!r}", path, row.line)
        texts.append(text)
    value = None
    if label is not None and label in row.fields:
        value = _LABELS.get(row.fields[label].strip().lower())
        if value is None:
            raise InputError(f"label {row.fields[label]!r} is not one of 1, 0, true, false", path, row.line)
    key = row.fields.get(KEY_COLUMN, "").strip() or None
    return LabeledPair(texts[0], texts[1], value, row.line, path, key, language)


def groups_from_pairs(
    pairs_by_language: Mapping[str, Sequence[LabeledPair]], *, align_by_key: bool = True
) -> tuple[list[TextUnit], int]:
    """Units and the number dropped for having fewer than two distinct texts.

    One unit per (meaning, language): the texts of that language linked by label-1 pairs and, with
    ``align_by_key``, by same-``key`` rows in other languages (sentence1 to sentence1, sentence2 to
    sentence2) unless that contradicts stronger evidence. A label-0 partner becomes a negative
    of the unit holding ``first``, unless it is linked to it by a label-1 pair (contradictory labels:
    then it is neither).
    """
    builder = GroupBuilder()
    nodes: list[tuple[str, int, int, LabeledPair]] = []
    for language, pairs in pairs_by_language.items():
        for pair in pairs:
            a, b = builder.node(language, pair.first), builder.node(language, pair.second)
            nodes.append((language, a, b, pair))
            if pair.label != 0:
                builder.link(a, b)
    for _, a, b, pair in nodes:
        if pair.label == 0:
            builder.forbid(a, b)
    if align_by_key and len(pairs_by_language) > 1:
        _link_by_key(builder, nodes)
    unit_of: dict[tuple[int, str], int] = {}
    units: list[list[int]] = []
    negatives: list[list[int]] = []
    for language, a, b, pair in nodes:
        for node in (a, b):
            index = unit_of.setdefault((builder.find(node), language), len(units))
            if index == len(units):
                units.append([])
                negatives.append([])
            units[index].append(node)  # repeats are made distinct by build()
        if pair.label == 0:
            negatives[unit_of[(builder.find(a), language)]].append(b)
    built = builder.build(units, negatives)
    return built.units, built.dropped_units


def _link_by_key(builder: GroupBuilder, nodes: list[tuple[str, int, int, LabeledPair]]) -> None:
    """Same key in two languages: link the sentence1 nodes, and the sentence2 nodes.

    The first language a key appears in is its source; see :meth:`GroupBuilder.link_translation`
    for the links that are refused (label-0 partners, two meanings of the source language).
    """
    first_seen: dict[str, tuple[int, int]] = {}
    seen_in: dict[tuple[str, str], LabeledPair] = {}
    for language, a, b, pair in nodes:
        if pair.key is None:
            continue
        earlier = seen_in.setdefault((language, pair.key), pair)
        if earlier is not pair:
            raise InputError(
                f"id {pair.key!r} appears twice (also at line {earlier.line}); cannot align languages by id",
                pair.path,
                pair.line,
            )
        anchor = first_seen.setdefault(pair.key, (a, b))
        builder.link_translation(anchor[0], a)
        builder.link_translation(anchor[1], b)
