"""A reranker's negatives: each sentence1 with what a bi-encoder retrieves for it, labelled 0.

A cross-encoder trained on PAWS-X pairs alone has seen only word-swap non-paraphrases: a pair of
two sentences about different things is outside its training data, and it scores such pairs
higher than word swaps (RESULTS.md, issue 28), so reranking a retriever's candidates with it does
worse than the retriever. The candidates a reranker sees are the retriever's nearest sentences, so
these negatives are those: per language, each distinct sentence1 that has a paraphrase is the
query, every sentence2 of the language is the corpus, and sentence-transformers'
``mine_hard_negatives`` (the library's reranker recipe) keeps its top candidates that are neither
the query, nor one of its gold paraphrases, nor within ``relative_margin`` of its weakest
paraphrase's cosine (a likely unlabelled paraphrase). Mining is deterministic ("top" sampling),
so a resumed run mines the same pairs again.

Cross-lingual rows (``data.cross_lingual``) are not queries: the retriever's corpus is one
language's sentences.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from paraxl.data.pairs import LabeledPair
from paraxl.training.cross_encoder_config import RetrievalNegatives
from paraxl.training.cross_encoder_data import TrainPairs

ANCHOR, CANDIDATE = "anchor", "positive"  # mine_hard_negatives' column names (a labelled pair's two sides)


@dataclass(frozen=True)
class MinedNegatives:
    rows: list[LabeledPair]  # label 0; path and line: the first row the query is sentence1 of
    per_language: dict[str, int]


def with_retrieval_negatives(
    pairs: TrainPairs, spec: RetrievalNegatives, miner_folder: Path, say: Callable[[str], None] = print
) -> TrainPairs:
    """``pairs`` with the mined negatives of its monolingual rows appended (counted per language);
    ``miner_folder``: ``spec.miner`` resolved (the caller has it already, for its fingerprint)."""
    monolingual = pairs.rows[: sum(pairs.pairs.values())]  # the rows are every language's, then the cross-lingual
    by_language: dict[str, list[LabeledPair]] = {}
    for row in monolingual:
        by_language.setdefault(row.language, []).append(row)
    mined = mine_negatives(by_language, miner_folder, spec, say)
    return replace(pairs, rows=[*pairs.rows, *mined.rows], retrieval_negatives=mined.per_language)


def mine_negatives(
    by_language: Mapping[str, Sequence[LabeledPair]],
    miner_folder: Path,
    spec: RetrievalNegatives,
    say: Callable[[str], None] = print,
) -> MinedNegatives:
    """Per language, up to ``spec.per_query`` label-0 pairs per distinct sentence1 with a paraphrase."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    miner = SentenceTransformer(str(miner_folder))
    # both sides with the model's default prompt, as paraxl embeds (e5: "query: "); the library would
    # otherwise give the corpus the model's document prompt (e5: "passage: "), another retriever
    prompt = miner.prompts.get(miner.default_prompt_name or "", "")
    rows: list[LabeledPair] = []
    per_language: dict[str, int] = {}
    for language, pairs in by_language.items():
        paraphrases = [pair for pair in pairs if pair.label == 1]
        if not paraphrases:
            continue
        corpus = list(dict.fromkeys(pair.second for pair in pairs))  # what a retriever would search
        dataset = Dataset.from_dict(
            {ANCHOR: [pair.first for pair in paraphrases], CANDIDATE: [pair.second for pair in paraphrases]}
        )
        say(f"mining retrieval negatives ({language or 'pairs'}): {len(dataset)} paraphrases, {len(corpus)} sentences")
        mined = mine_hard_negatives(
            dataset,
            miner,
            corpus=corpus,
            num_negatives=spec.per_query,
            range_max=spec.range_max,
            relative_margin=spec.relative_margin,
            sampling_strategy="top",
            query_prompt=prompt,
            corpus_prompt=prompt,
            output_format="labeled-pair",
            batch_size=spec.batch_size,
            verbose=False,
        )
        found = _negatives(mined.to_dict(), {pair.first: pair for pair in reversed(paraphrases)}, language)
        rows += found
        per_language[language] = len(found)
    return MinedNegatives(rows, per_language)


def _negatives(mined: dict[str, list[Any]], source: Mapping[str, LabeledPair], language: str) -> list[LabeledPair]:
    """The label-0 rows of ``mine_hard_negatives``' labelled pairs (its label-1 rows are the paraphrases
    the run has already); ``source``: the first row of each query, named in any later error."""
    return [
        LabeledPair(anchor, candidate, 0, source[anchor].line, source[anchor].path, language=language)
        for anchor, candidate, label in zip(mined[ANCHOR], mined[CANDIDATE], mined["label"], strict=True)
        if label == 0
    ]
