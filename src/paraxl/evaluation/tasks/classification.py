"""Topic / domain classification with logistic regression on frozen embeddings.

For each language: in-language (fit on its train split, score its test split) and cross-lingual
zero-shot (fit on English train, score the language's test split), each with the full train split
and k-shot (k = 8 examples per label, mean over 10 seeded draws, as MTEB does). Accuracy in
[0, 100]; macro F1 alongside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.errors import InputError
from paraxl.evaluation.embeddings import Embedder
from paraxl.evaluation.loaders.classification import MTOP_LANGUAGES, read_mtop, read_sib200, sib200_languages
from paraxl.evaluation.metrics.classification import k_shot_scores, logreg_scores
from paraxl.evaluation.records import LabeledTexts
from paraxl.evaluation.tasks.base import EvalContext, TaskResult, TaskSpec, mean

K_SHOT = 8
K_SHOT_EXPERIMENTS = 10

Loader = Callable[[str, str], LabeledTexts]  # (language, split) -> texts


def classification_scores(
    embedder: Embedder,
    load: Loader,
    languages: Sequence[str],
    source_language: str,
    train_split: str,
    test_split: str,
    seed: int,
    progress: Callable[[str], None],
) -> tuple[dict[str, Any], list[Path]]:
    """Per-language in-language and zero-shot (from ``source_language``) scores, plus files read."""
    embedded: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    files: list[Path] = []
    for language in languages:
        progress(f"embedding {language}")
        embedded[language] = {}
        for split in (train_split, test_split):
            data = load(language, split)
            files += list(data.files)
            embedded[language][split] = (embedder.embed(list(data.texts)), np.asarray(data.labels))
    if source_language not in embedded:
        raise InputError(f"zero-shot transfer needs the source language {source_language!r}")
    source_x, source_y = embedded[source_language][train_split]
    per_language: dict[str, dict[str, float]] = {}
    for language in languages:
        progress(f"classifying {language}")
        per_language[language] = _language_scores(
            embedded[language][train_split], embedded[language][test_split], (source_x, source_y), seed
        )
    others = [language for language in languages if language != source_language]
    means = {
        key: mean([per_language[lang][key] for lang in (others if key.startswith("zero") else languages)])
        for key in (
            "in_language_accuracy",
            "in_language_8shot_accuracy",
            "zero_shot_accuracy",
            "zero_shot_8shot_accuracy",
        )
    }
    scores = {
        "source_language": source_language,
        "k_shot": {"k": K_SHOT, "experiments": K_SHOT_EXPERIMENTS},
        "per_language": per_language,
        "mean": means,
        "note": "zero-shot means leave out the source language itself",
    }
    return scores, sorted(set(files))


class Sib200Task:
    spec = TaskSpec(
        name="sib200",
        task_type="classification",
        description="SIB-200 topic classification (7 topics), logistic regression on frozen embeddings",
        main_score="mean over languages of in-language test accuracy (classifier fit on the full train split)",
        languages=(),  # whatever lang_Script folders the data directory holds (21 here)
        reference="Adelani et al. 2024, SIB-200 (arXiv:2309.07445); MTEB's k-shot protocol",
    )

    def run(self, embedder: Embedder, context: EvalContext) -> TaskResult:
        languages = sib200_languages(context.data_dir)
        scores, files = classification_scores(
            embedder,
            lambda language, split: read_sib200(context.data_dir, language, split),
            languages,
            "eng_Latn",
            "train",
            "test",
            context.seed,
            lambda message: context.progress(f"sib200: {message}"),
        )
        return TaskResult("sib200", scores["mean"]["in_language_accuracy"], scores, files)


class MtopTask:
    spec = TaskSpec(
        name="mtop",
        task_type="classification",
        description="MTOP domain classification (11 domains) from the published files under DATA_DIR/mtop/",
        main_score="mean over languages of in-language test accuracy (classifier fit on the full train split)",
        languages=MTOP_LANGUAGES,
        reference="Li et al. 2021, MTOP (arXiv:2008.09335)",
    )

    def run(self, embedder: Embedder, context: EvalContext) -> TaskResult:
        root = context.data_dir / "mtop"
        languages = tuple(language for language in MTOP_LANGUAGES if (root / language).is_dir())
        if not languages:
            raise InputError(f"no MTOP language folders ({', '.join(MTOP_LANGUAGES)}) with train/test .txt files", root)
        source = "en" if "en" in languages else languages[0]
        scores, files = classification_scores(
            embedder,
            lambda language, split: read_mtop(context.data_dir, language, split, "domain"),
            languages,
            source,
            "train",
            "test",
            context.seed,
            lambda message: context.progress(f"mtop: {message}"),
        )
        return TaskResult("mtop", scores["mean"]["in_language_accuracy"], scores, files)


Labelled = tuple[np.ndarray, np.ndarray]  # (embeddings (n, dim), labels (n,))


def _language_scores(train: Labelled, test: Labelled, source: Labelled, seed: int) -> dict[str, float]:
    """One language's scores x100: trained in-language and zero-shot from the source language,
    on the full training split and 8-shot (mean and std of the draws)."""
    (train_x, train_y), (test_x, test_y), (source_x, source_y) = train, test, source
    full = logreg_scores(train_x, train_y, test_x, test_y, seed=seed)
    few = k_shot_scores(train_x, train_y, test_x, test_y, k=K_SHOT, n_experiments=K_SHOT_EXPERIMENTS, seed=seed)
    zero_full = logreg_scores(source_x, source_y, test_x, test_y, seed=seed)
    zero_few = k_shot_scores(source_x, source_y, test_x, test_y, k=K_SHOT, n_experiments=K_SHOT_EXPERIMENTS, seed=seed)
    return {
        "in_language_accuracy": 100 * full["accuracy"],
        "in_language_f1_macro": 100 * full["f1_macro"],
        "in_language_8shot_accuracy": 100 * few["accuracy_mean"],
        "in_language_8shot_accuracy_std": 100 * few["accuracy_std"],
        "zero_shot_accuracy": 100 * zero_full["accuracy"],
        "zero_shot_f1_macro": 100 * zero_full["f1_macro"],
        "zero_shot_8shot_accuracy": 100 * zero_few["accuracy_mean"],
        "zero_shot_8shot_accuracy_std": 100 * zero_few["accuracy_std"],
        "n_train": int(train_y.size),
        "n_test": int(test_y.size),
    }
