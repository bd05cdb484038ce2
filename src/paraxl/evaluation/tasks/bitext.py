"""Bitext mining (BUCC) and translation retrieval (Tatoeba).

BUCC: candidates from ratio-margin scoring (k = 4 nearest neighbours both ways, Artetxe &
Schwenk 2019), 1-to-1. The decision threshold is fitted on one half of the source sentences
(assigned by a fixed hash of their ids) and F1 is measured on the other half, both ways round;
the main score is the mean of the two held-out F1s. The XTREME-style number, the F1 at the best
threshold fitted on all of the gold, is reported as ``oracle_f1_fit_on_gold``.

Tatoeba: each sentence retrieves its nearest neighbour among the other language's sentences
(cosine); accuracy in both directions per language, means over all languages and over the 36
that XTREME reports (the task ``tatoeba36`` reads only those, a third of the text).
``mteb_f1_xx_to_en`` is MTEB's main score for comparison (macro F1 of the xx -> en retrieval,
which weights each target sentence as a class).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from paraxl.evaluation.loaders.bucc import BUCC_PAIRS, read_bucc
from paraxl.evaluation.loaders.tatoeba import TATOEBA_LANGUAGES, TATOEBA_XTREME36, read_tatoeba
from paraxl.evaluation.metrics.bitext import (
    best_f1,
    f1_at_thresholds,
    precision_recall_f1,
    split_by_hash,
)
from paraxl.evaluation.metrics.retrieval import nearest_neighbor_accuracy
from paraxl.evaluation.tasks.base import EvalContext, TaskResult, TaskSpec, mean, rounded
from paraxl.mining.bitext import mine_bitext
from paraxl.modeling.protocol import Embedder
from paraxl.retrieval import exact_topk, unit_rows

MARGIN_NEIGHBOURS = 4


class BuccTask:
    spec = TaskSpec(
        name="bucc",
        task_type="bitext_mining",
        description="BUCC 2018 bitext mining with ratio-margin scoring (k=4), 1-to-1 candidates",
        main_score="F1 on one half of the sources at the threshold fitted on the other half, mean of both ways",
        languages=("zh-en",),
        reference="Zweigenbaum et al. 2018 (BUCC); Artetxe & Schwenk 2019 (arXiv:1811.01136)",
    )

    def __init__(self, pairs: tuple[str, ...] | None = None, split: str = "sample") -> None:
        self.pairs = pairs  # None: every BUCC pair whose files for ``split`` are in the data dir
        self.split = split

    def _pairs(self, context: EvalContext) -> tuple[str, ...]:
        if self.pairs is not None:
            return self.pairs
        root = context.data_dir / "bucc2018"
        found = tuple(pair for pair in BUCC_PAIRS if (root / pair / f"{pair}.{self.split}.en").is_file())
        return found or ("zh-en",)  # none found: read zh-en, whose loader names the missing file

    def run(self, embedder: Embedder, context: EvalContext) -> TaskResult:
        per_pair: dict[str, dict[str, Any]] = {}
        details: dict[str, Any] = {}
        files = []
        for pair in self._pairs(context):
            corpus = read_bucc(context.data_dir, pair, self.split)
            files += list(corpus.files)
            context.progress(f"bucc {pair}: embedding {len(corpus.source_texts) + len(corpus.target_texts)} sentences")
            mined = mine_bitext(embedder, corpus.source_texts, corpus.target_texts, k=MARGIN_NEIGHBOURS)
            candidates = [(corpus.source_ids[m.source_index], corpus.target_ids[m.target_index]) for m in mined]
            scores = np.array([m.score for m in mined], dtype=np.float64)
            per_pair[pair], details[pair] = score_mining(candidates, scores, list(corpus.gold))
        main = mean([scores["f1"] for scores in per_pair.values()])
        return TaskResult("bucc", main, {"per_pair": per_pair, "split": self.split}, sorted(set(files)), details)


def score_mining(
    candidates: list[tuple[str, str]], scores: np.ndarray, gold: list[tuple[str, str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Held-out F1 (fit on half A, score on half B and the reverse) and the oracle F1 on all gold."""
    if not gold:
        return {"n_candidates": len(candidates), "f1": float("nan"), "note": "no gold pairs in this split"}, {}
    source_ids = sorted({c[0] for c in candidates} | {g[0] for g in gold})
    in_half_a = dict(zip(source_ids, split_by_hash(source_ids).tolist(), strict=True))
    folds: dict[str, dict[str, float]] = {}
    for fit_half, name in ((True, "fit_a_test_b"), (False, "fit_b_test_a")):
        fit_rows = [row for row, c in enumerate(candidates) if in_half_a[c[0]] == fit_half]
        test_rows = [row for row, c in enumerate(candidates) if in_half_a[c[0]] != fit_half]
        fit_gold = [g for g in gold if in_half_a[g[0]] == fit_half]
        test_gold = [g for g in gold if in_half_a[g[0]] != fit_half]
        threshold, *_ = best_f1([candidates[r] for r in fit_rows], scores[fit_rows], fit_gold)
        predicted = [candidates[r] for r in test_rows if scores[r] >= threshold]
        precision, recall, f1 = precision_recall_f1(predicted, test_gold)
        folds[name] = {
            "threshold": threshold,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "n_fit_gold": len(fit_gold),
            "n_test_gold": len(test_gold),
        }
    oracle_threshold, oracle_p, oracle_r, oracle_f1 = best_f1(candidates, scores, gold)
    thresholds, precision_curve, recall_curve, f1_curve = f1_at_thresholds(candidates, scores, gold)
    keep = np.unique(np.linspace(0, thresholds.size - 1, min(thresholds.size, 400)).astype(int))
    result = {
        "f1": mean([fold["f1"] for fold in folds.values()]),
        "precision": mean([fold["precision"] for fold in folds.values()]),
        "recall": mean([fold["recall"] for fold in folds.values()]),
        "folds": folds,
        "oracle_f1_fit_on_gold": oracle_f1,
        "oracle_precision": oracle_p,
        "oracle_recall": oracle_r,
        "oracle_threshold": oracle_threshold,
        "n_candidates": len(candidates),
        "n_gold": len(gold),
    }
    curve = {
        "thresholds": rounded(thresholds[keep]),
        "precision": rounded(precision_curve[keep]),
        "recall": rounded(recall_curve[keep]),
        "f1": rounded(f1_curve[keep]),
    }
    return result, curve


class TatoebaTask:
    spec = TaskSpec(
        name="tatoeba",
        task_type="retrieval",
        description="Tatoeba (LASER v1) nearest-neighbour translation retrieval, xx->en and en->xx",
        main_score="mean over the 112 languages of the accuracy averaged over both directions",
        languages=TATOEBA_LANGUAGES,
        reference="Artetxe & Schwenk 2019, massively multilingual sentence embeddings (arXiv:1812.10464)",
    )

    def __init__(self, languages: tuple[str, ...] = TATOEBA_LANGUAGES, name: str = "tatoeba") -> None:
        self.languages = languages
        if name != self.spec.name:  # a named subset (e.g. ``tatoeba36``) writes its own result file
            self.spec = replace(
                self.spec,
                name=name,
                main_score=f"mean over its {len(languages)} languages of the accuracy averaged over both directions",
                languages=languages,
            )

    def run(self, embedder: Embedder, context: EvalContext) -> TaskResult:
        per_language: dict[str, dict[str, float]] = {}
        files = []
        for number, language in enumerate(self.languages, start=1):
            context.progress(f"tatoeba: {language} ({number}/{len(self.languages)})")
            corpus = read_tatoeba(context.data_dir, language)
            files += list(corpus.files)
            source = unit_rows(embedder.embed(list(corpus.source)))
            target = unit_rows(embedder.embed(list(corpus.target)))
            xx_to_en = nearest_neighbor_accuracy(source, target)
            en_to_xx = nearest_neighbor_accuracy(target, source)
            # MTEB: each xx sentence's nearest English one, from the whole (n, n) cosine matrix in one block
            _, nearest = exact_topk(source, target, 1, block_elements=len(source) * len(target))  # (n, 1)
            retrieved = nearest[:, 0]
            gold = np.arange(len(corpus.source))
            per_language[language] = {
                "accuracy_xx_to_en": xx_to_en,
                "accuracy_en_to_xx": en_to_xx,
                "accuracy": (xx_to_en + en_to_xx) / 2,
                "mteb_f1_xx_to_en": float(f1_score(gold, retrieved, average="macro", labels=gold, zero_division=0)),
                "n": len(corpus.source),
            }
        xtreme = [language for language in TATOEBA_XTREME36 if language in per_language]
        scores: dict[str, Any] = {"per_language": per_language}
        for key in ("accuracy", "accuracy_xx_to_en", "accuracy_en_to_xx", "mteb_f1_xx_to_en"):
            scores[f"mean_{key}"] = mean([per_language[lang][key] for lang in per_language])
            scores[f"mean36_{key}"] = mean([per_language[lang][key] for lang in xtreme])
        scores["n_languages"] = len(per_language)
        scores["n_xtreme36"] = len(xtreme)
        return TaskResult(self.spec.name, scores["mean_accuracy"], scores, sorted(set(files)))
