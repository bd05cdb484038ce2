"""Training-data readers for the benchmark layouts, on top of the generic pair and aligned readers.

Layout under ``data_dir`` (see ``shared/data/README.md``):
    ``pawsx/resplit/{lang}/{train,validation,test}.tsv``   leak-free resplit of PAWS-X dev+test;
    ``pawsx/official/{lang}/{dev_2k,test_2k,test_2k.derived}.tsv``;
    ``xnli/{dev,test}-{lang}.tsv``                         15-way line-aligned, ``premise hypothesis label``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from paraxl.data.aligned import AlignedCollector, read_aligned_files, read_parallel
from paraxl.data.pairs import LabeledPair, groups_from_pairs, read_labeled_pairs
from paraxl.data.records import TrainingData
from paraxl.errors import InputError
from paraxl.io.rows import RowPolicy, inside_data_dir

__all__ = [
    "PAWSX_LANGUAGES",
    "XNLI_LANGUAGES",
    "LabeledPair",
    "check_languages",
    "groups_from_pairs",
    "parse_languages",
    "read_aligned_files",
    "read_labeled_pairs",
    "read_parallel",
    "read_pawsx",
    "read_pawsx_pairs",
    "read_xnli",
]

PAWSX_LANGUAGES = ("en", "de", "es", "fr", "ja", "ko", "zh")
XNLI_LANGUAGES = ("ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh")
UNTRANSLATED = "NS"  # PAWS-X's placeholder for a sentence left untranslated (hundreds in de/ja/ko/zh)
PawsxProtocol = Literal["resplit", "official"]
PAWSX_SPLITS: dict[str, tuple[str, ...]] = {
    "resplit": ("train", "validation", "test"),
    "official": ("dev_2k", "test_2k", "test_2k.derived"),
}


def read_pawsx_pairs(
    data_dir: str | Path,
    split: str,
    languages: Sequence[str] = PAWSX_LANGUAGES,
    protocol: PawsxProtocol = "resplit",
    policy: RowPolicy | None = None,
) -> dict[str, list[LabeledPair]]:
    """Labeled pairs per language, in ``languages`` order (evaluation needs them as pairs)."""
    splits = PAWSX_SPLITS.get(protocol)
    if splits is None:
        raise InputError(f"unknown PAWS-X protocol {protocol!r}; use resplit or official")
    if split not in splits:
        raise InputError(f"unknown PAWS-X {protocol} split {split!r}; use one of {', '.join(splits)}")
    check_languages(languages, PAWSX_LANGUAGES, "PAWS-X")
    policy = policy or RowPolicy()
    paths = {lang: inside_data_dir(data_dir, pawsx_file(data_dir, protocol, lang, split)) for lang in languages}
    return {language: read_labeled_pairs(path, language=language, policy=policy) for language, path in paths.items()}


def is_untranslated(first: str, second: str) -> bool:
    """Whether either sentence of a pair is PAWS-X's untranslated placeholder (such a pair is not used)."""
    return UNTRANSLATED in (first.strip(), second.strip())


def cross_lingual_usable(first_side: LabeledPair, second_side: LabeledPair) -> bool:
    """Whether sentence 1 of ``first_side`` and sentence 2 of ``second_side`` (one id, two languages) form a
    labelled pair: both labels agree and neither sentence used is the placeholder."""
    return first_side.label == second_side.label and not is_untranslated(first_side.first, second_side.second)


def pawsx_file(data_dir: str | Path, protocol: str, language: str, split: str) -> Path:
    """The one place a PAWS-X file's path is built: ``DATA/pawsx/PROTOCOL/LANGUAGE/SPLIT.tsv``."""
    return Path(data_dir) / "pawsx" / protocol / language / f"{split}.tsv"


def read_pawsx(
    data_dir: str | Path,
    split: str,
    languages: Sequence[str] = PAWSX_LANGUAGES,
    protocol: PawsxProtocol = "resplit",
    policy: RowPolicy | None = None,
) -> TrainingData:
    """PAWS-X as groups: paraphrase components per language, translations sharing a group id by ``id``.

    Pairs with the untranslated placeholder ``NS`` on either side are left out and counted in
    ``skipped_rows``: kept, one placeholder would be a "paraphrase" of whatever it was linked to.
    """
    policy = policy or RowPolicy()
    before = policy.skipped
    pairs = read_pawsx_pairs(data_dir, split, languages, protocol, policy)
    translated = {
        language: [pair for pair in rows if not is_untranslated(pair.first, pair.second)]
        for language, rows in pairs.items()
    }
    untranslated = sum(len(pairs[language]) - len(rows) for language, rows in translated.items())
    groups, dropped = groups_from_pairs(translated)
    sources = [rows[0].path for rows in pairs.values() if rows]
    if not groups:
        raise InputError(f"no training groups in PAWS-X {protocol}/{split} under {data_dir}")
    return TrainingData(groups, policy.skipped - before + untranslated, dropped, sources)


def read_xnli(
    data_dir: str | Path,
    splits: Sequence[str] = ("dev", "test"),
    languages: Sequence[str] = XNLI_LANGUAGES,
    columns: Sequence[str] = ("premise", "hypothesis"),
    policy: RowPolicy | None = None,
) -> TrainingData:
    """XNLI's 15-way translations as groups, premises and hypotheses each their own units.

    Duplicates are merged within and across splits (each premise appears once per hypothesis).
    """
    check_languages(languages, XNLI_LANGUAGES, "XNLI")
    if not splits:
        raise InputError("no XNLI splits given")
    policy = policy or RowPolicy()
    collector = AlignedCollector()
    root = Path(data_dir) / "xnli"
    for split in splits:
        paths = [inside_data_dir(data_dir, root / f"{split}-{language}.tsv") for language in languages]
        collector.read(paths, languages=languages, columns=columns, header=True, policy=policy)
    return collector.finish(what=f"XNLI {', '.join(splits)} under {data_dir}")


def parse_languages(text: str, known: Sequence[str] = PAWSX_LANGUAGES, name: str = "PAWS-X") -> tuple[str, ...]:
    """A comma-separated language list from a command line (``"en, de"``), checked against ``known``."""
    languages = tuple(part.strip() for part in text.split(",") if part.strip())
    check_languages(languages, known, name)
    return languages


def check_languages(languages: Sequence[str], known: Sequence[str], name: str) -> None:
    """``languages`` must be some of ``known``, none twice; otherwise an error naming the data set."""
    unknown = [language for language in languages if language not in known]
    if unknown or not languages:
        raise InputError(f"unknown {name} language(s) {unknown}; use some of {' '.join(known)}")
    if len(set(languages)) != len(languages):
        raise InputError(f"{name} languages repeat: {list(languages)}")
