"""Alignment and uniformity of the embedding space (Wang & Isola 2020), on PAWS-X test sentences.

Per language, on L2-normalised embeddings (alpha = 2, t = 2):
    alignment (paraphrases)   mean ||f(x) - f(y)||^2 over the test pairs labelled paraphrase;
    alignment (translations)  the same over (English sentence1, its translation's sentence1),
                              matched by id (not for English itself);
    uniformity                log mean exp(-2 ||f(x) - f(y)||^2) over all distinct test sentences.
Lower is better for all three. Pairs carrying the untranslated placeholder ``NS`` are left out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from paraxl.data.readers import PAWSX_LANGUAGES, is_untranslated, read_pawsx_pairs
from paraxl.evaluation.embeddings import Embedder
from paraxl.evaluation.metrics.geometry import alignment, uniformity
from paraxl.evaluation.tasks.base import EvalContext, PawsxProtocol, TaskResult, TaskSpec, mean, unit_rows
from paraxl.evaluation.tasks.pawsx import split_names

# Uniformity over ~2,000 sentences is ~2M pairs: exact and cheap. Larger inputs are sampled.
MAX_UNIFORMITY_PAIRS = 5_000_000


class AlignmentUniformityTask:
    spec = TaskSpec(
        name="align",
        task_type="geometry",
        description="alignment (paraphrase and translation pairs) and uniformity on PAWS-X test sentences",
        main_score="mean over languages of paraphrase alignment",
        languages=PAWSX_LANGUAGES,
        reference="Wang & Isola 2020, Understanding contrastive representation learning (arXiv:2005.10242)",
        higher_is_better=False,
    )

    def __init__(self, languages: tuple[str, ...] = PAWSX_LANGUAGES, protocol: PawsxProtocol = "resplit") -> None:
        self.languages = languages
        self.protocol = protocol

    def run(self, embedder: Embedder, context: EvalContext) -> TaskResult:
        per_language: dict[str, dict[str, Any]] = {}
        english_first: dict[str, np.ndarray] = {}
        files = []
        pairs_by_language = {}
        for language in self.languages:
            context.progress(f"align: {language}")
            split = split_names(self.protocol, language)[1]
            pairs = [
                pair
                for pair in read_pawsx_pairs(context.data_dir, split, (language,), self.protocol)[language]
                if not is_untranslated(pair.first, pair.second)
            ]
            pairs_by_language[language] = pairs
            files += sorted({pair.path for pair in pairs})
            positives = [pair for pair in pairs if pair.label == 1]
            first = unit_rows(embedder.embed([pair.first for pair in positives]))
            second = unit_rows(embedder.embed([pair.second for pair in positives]))
            sentences = sorted({text for pair in pairs for text in (pair.first, pair.second)})
            per_language[language] = {
                "alignment_paraphrase": alignment(first, second) if positives else float("nan"),
                "uniformity": uniformity(
                    unit_rows(embedder.embed(sentences)), max_pairs=MAX_UNIFORMITY_PAIRS, seed=context.seed
                ),
                "n_paraphrase_pairs": len(positives),
                "n_sentences": len(sentences),
            }
            if language == "en":
                english_first = {
                    pair.key: vector
                    for pair, vector in zip(pairs, unit_rows(embedder.embed([p.first for p in pairs])), strict=True)
                    if pair.key is not None
                }
        if english_first:
            for language in self.languages:
                if language == "en":
                    continue
                shared = [pair for pair in pairs_by_language[language] if pair.key in english_first]
                if not shared:
                    continue
                source = np.stack([english_first[pair.key] for pair in shared if pair.key is not None])
                target = unit_rows(embedder.embed([pair.first for pair in shared]))
                per_language[language]["alignment_translation_en"] = alignment(source, target)
                per_language[language]["n_translation_pairs"] = len(shared)
        means = {
            key: mean([scores[key] for scores in per_language.values() if key in scores])
            for key in ("alignment_paraphrase", "alignment_translation_en", "uniformity")
        }
        scores = {"protocol": self.protocol, "per_language": per_language, "mean": means}
        return TaskResult("align", means["alignment_paraphrase"], scores, sorted(set(files)))
