"""Plain records that benchmark loaders return and evaluation tasks consume.

Every record lists the data files it was read from (``files``), so that a result file can
carry their sha256 and a reader can tell exactly which data produced a score.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ScoredPairs:
    """Sentence pairs with a gold similarity each (STS): ``gold[i]`` rates ``(first[i], second[i])``."""

    name: str  # e.g. "en-de" or "track4a.es-en"
    first: tuple[str, ...]
    second: tuple[str, ...]
    gold: tuple[float, ...]
    files: tuple[Path, ...]


@dataclass(frozen=True)
class ParallelCorpus:
    """Line-aligned translations (Tatoeba): ``target[i]`` translates ``source[i]``."""

    name: str  # e.g. "afr-eng"
    source: tuple[str, ...]
    target: tuple[str, ...]
    files: tuple[Path, ...]


@dataclass(frozen=True)
class BitextCorpus:
    """Two monolingual corpora with ids and the gold translation pairs among them (BUCC).

    ``gold`` holds ``(source_id, target_id)`` pairs; it is empty when the split has no gold.
    """

    name: str  # e.g. "zh-en.sample"
    source_ids: tuple[str, ...]
    source_texts: tuple[str, ...]
    target_ids: tuple[str, ...]
    target_texts: tuple[str, ...]
    gold: tuple[tuple[str, str], ...]
    files: tuple[Path, ...]


@dataclass(frozen=True)
class LabeledTexts:
    """Texts with one class label each (SIB-200 topics, MTOP domains or intents)."""

    name: str  # e.g. "eng_Latn.train"
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    files: tuple[Path, ...]
