"""Semantic textual similarity: Spearman x 100 between cosine and gold scores, per set.

``sts``: STS17 tracks 1-5 (ar-ar, ar-en, es-es, es-en a/b, en-en), stsb_multi_mt test in 11
languages, cross-lingual pairs built from stsb_multi_mt (English sentence1, sentence2 in each
other language, rows aligned across languages as STS17's extended pairs are), and KorSTS test.
``sts17ext`` / ``sts22``: the published STS17-extended and STS22 files, when a user has them
under ``DATA_DIR/sts17-crosslingual/`` and ``DATA_DIR/sts22/`` (.jsonl, .tsv or .csv).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.errors import InputError
from paraxl.evaluation.embeddings import Embedder
from paraxl.evaluation.loaders.sts import (
    STS17_TRACKS,
    STSB_LANGUAGES,
    read_korsts,
    read_sts17,
    read_sts17_extended,
    read_sts22,
    read_stsb_cross_lingual,
    read_stsb_multi_mt,
)
from paraxl.evaluation.metrics.sts import pearson_x100, spearman_x100
from paraxl.evaluation.records import ScoredPairs
from paraxl.evaluation.tasks.base import EvalContext, TaskResult, TaskSpec, mean, unit_rows

STSB_CROSS_LINGUAL = tuple(("en", language) for language in STSB_LANGUAGES if language != "en")


def score_pairs(embedder: Embedder, pairs: ScoredPairs) -> dict[str, Any]:
    first = unit_rows(embedder.embed(list(pairs.first)))
    second = unit_rows(embedder.embed(list(pairs.second)))
    cosine = np.sum(first * second, axis=1)
    gold = np.asarray(pairs.gold, dtype=np.float64)
    return {"spearman": spearman_x100(cosine, gold), "pearson": pearson_x100(cosine, gold), "n": len(gold)}


class StsTask:
    spec = TaskSpec(
        name="sts",
        task_type="sts",
        description="STS17, stsb_multi_mt (monolingual and en-xx cross-lingual) and KorSTS test sets",
        main_score="mean Spearman x100 over every set",
        languages=tuple(sorted({*STSB_LANGUAGES, "ar", "ko"})),
        reference="Cer et al. 2017 (STS17); May 2021 (stsb_multi_mt); Ham et al. 2020 (KorSTS)",
    )

    def run(self, embedder: Embedder, context: EvalContext) -> TaskResult:
        groups: dict[str, Callable[[], list[ScoredPairs]]] = {
            "sts17": lambda: [read_sts17(context.data_dir, track) for track in STS17_TRACKS],
            "stsb_multi_mt": lambda: [read_stsb_multi_mt(context.data_dir, lang) for lang in STSB_LANGUAGES],
            "stsb_cross_lingual": lambda: [
                read_stsb_cross_lingual(context.data_dir, a, b) for a, b in STSB_CROSS_LINGUAL
            ],
            "korsts": lambda: [read_korsts(context.data_dir)],
        }
        scores: dict[str, Any] = {}
        files: list[Path] = []
        every: list[float] = []
        for group, load in groups.items():
            context.progress(f"sts: {group}")
            sets = {pairs.name: pairs for pairs in load()}
            group_scores = {name: score_pairs(embedder, pairs) for name, pairs in sets.items()}
            files += [path for pairs in sets.values() for path in pairs.files]
            scores[group] = {
                "sets": group_scores,
                "mean_spearman": mean([s["spearman"] for s in group_scores.values()]),
            }
            every += [s["spearman"] for s in group_scores.values()]
        scores["mean_spearman"] = mean(every)
        return TaskResult("sts", scores["mean_spearman"], scores, sorted(set(files)))


class StsFileTask:
    """STS sets from the files a user put in one data folder (STS17-extended, STS22)."""

    def __init__(self, spec: TaskSpec, folder: str, reader: Callable[[Path], dict[str, ScoredPairs]]) -> None:
        self.spec = spec
        self.folder = folder
        self.reader = reader

    def run(self, embedder: Embedder, context: EvalContext) -> TaskResult:
        root = context.data_dir / self.folder
        paths = sorted(p for p in root.glob("*") if p.suffix in (".jsonl", ".tsv", ".csv")) if root.is_dir() else []
        if not paths:
            raise InputError(
                f"no {self.spec.name} files: expected .jsonl/.tsv/.csv files with sentence1, sentence2, score "
                f"(and lang) columns in this folder (see `paraxl eval --help`)",
                root,
            )
        sets: dict[str, ScoredPairs] = {}
        for path in paths:
            for name, pairs in self.reader(path).items():
                if name in sets:
                    raise InputError(f"language pair {name!r} appears in two files ({sets[name].files[0]})", path)
                sets[name] = pairs
        per_set = {name: score_pairs(embedder, pairs) for name, pairs in sorted(sets.items())}
        main = mean([s["spearman"] for s in per_set.values()])
        return TaskResult(self.spec.name, main, {"sets": per_set, "mean_spearman": main}, paths)


STS17_EXTENDED_SPEC = TaskSpec(
    name="sts17ext",
    task_type="sts",
    description="STS17 cross-lingual pairs (en-de, en-tr, fr-en, it-en, nl-en, ko-ko, ...) from the published files",
    main_score="mean Spearman x100 over the language pairs found",
    languages=(),
    reference="Cer et al. 2017 (STS17); MTEB's sts17-crosslingual-sts",
)
STS22_SPEC = TaskSpec(
    name="sts22",
    task_type="sts",
    description="SemEval-2022 task 8 multilingual news article similarity from the published files",
    main_score="mean Spearman x100 over the language pairs found",
    languages=(),
    reference="Chen et al. 2022 (SemEval-2022 task 8); MTEB's sts22-crosslingual-sts",
)


def sts17_extended_task() -> StsFileTask:
    return StsFileTask(STS17_EXTENDED_SPEC, "sts17-crosslingual", read_sts17_extended)


def sts22_task() -> StsFileTask:
    return StsFileTask(STS22_SPEC, "sts22", read_sts22)
