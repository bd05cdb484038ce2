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

A search across languages (English queries, a German corpus) hands its reranker other candidates:
with ``cross_lingual_queries: [en]``, each English sentence1 of an id whose rows in English and in
German both say paraphrase also queries the German sentence2s, its gold paraphrases there being the
German sentence2 of each such id (the cross-lingual evaluation's rule, ``cross_lingual_usable``);
the German sentence2 of an id whose two rows disagree on the label is neither gold nor negative.
Likewise for every other language. The mined rows are named "en-de" like the cross-lingual pairs of
``data.cross_lingual``, which are never queries themselves (the corpus of a search is one
language's sentence2s). Everything is mined from the rows the run trains on (its data section), so
no other split is read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from paraxl.data.cross_lingual_pairs import aligned_units, cell_name
from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import cross_lingual_usable
from paraxl.errors import InputError
from paraxl.training.cross_encoder_config import RetrievalNegatives
from paraxl.training.cross_encoder_data import TrainPairs

ANCHOR, CANDIDATE = "anchor", "positive"  # mine_hard_negatives' column names (a labelled pair's two sides)


@dataclass(frozen=True)
class Search:
    """One search a reranker would sit behind: its queries' gold paraphrases and the corpus searched."""

    name: str  # the language, or "A-B": sentence1s of A searching the sentence2s of B
    paraphrases: list[LabeledPair]  # label 1; ``first`` a query, ``second`` a gold paraphrase in the corpus
    corpus: list[str]  # distinct texts, in order of first appearance
    # (query, corpus text) pairs of no known label, never mined as negatives: across languages, the
    # sentence1 and sentence2 of one id whose rows disagree on the label
    unlabelled: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class MinedNegatives:
    rows: list[LabeledPair]  # label 0; path and line: the first row the query is sentence1 of
    per_search: dict[str, int]  # per search: a language, or "A-B" across languages


def with_retrieval_negatives(
    pairs: TrainPairs, spec: RetrievalNegatives, miner_folder: Path, say: Callable[[str], None] = print
) -> TrainPairs:
    """``pairs`` with the mined negatives of its monolingual rows' searches appended (counted per search);
    ``miner_folder``: ``spec.miner`` resolved (the caller has it already, for its fingerprint)."""
    monolingual = pairs.rows[: sum(pairs.pairs.values())]  # the rows are every language's, then the cross-lingual
    by_language: dict[str, list[LabeledPair]] = {}
    for row in monolingual:
        by_language.setdefault(row.language, []).append(row)
    searches = monolingual_searches(by_language)
    for language in spec.cross_lingual_queries:
        searches += cross_lingual_searches(by_language, language)
    mined = mine_negatives(searches, miner_folder, spec, say)
    return replace(pairs, rows=[*pairs.rows, *mined.rows], retrieval_negatives=mined.per_search)


def monolingual_searches(by_language: Mapping[str, Sequence[LabeledPair]]) -> list[Search]:
    """Per language, its sentence1s with a paraphrase searching its sentence2s (both labels)."""
    return [
        Search(language, [pair for pair in pairs if pair.label == 1], _distinct(pair.second for pair in pairs))
        for language, pairs in by_language.items()
    ]


def cross_lingual_searches(by_language: Mapping[str, Sequence[LabeledPair]], source: str) -> list[Search]:
    """``source``'s sentence1s searching each other language's sentence2s. A query's gold paraphrases
    there: the sentence2 of each id whose rows in both languages say paraphrase (the queries are the
    sentence1s of such ids); the sentence2 of an id whose rows disagree is no negative either."""
    rows = by_language.get(source)
    if not rows:
        raise InputError(f"retrieval_negatives.cross_lingual_queries: no usable {source!r} pairs to query with")
    keyless = next((pair for pair in rows if pair.key is None), None)
    if keyless is not None:  # ids align the languages; a pair file without an id column cannot be aligned
        raise InputError(
            "cross_lingual_queries need an id on every pair to align languages", keyless.path, keyless.line
        )
    aligned = [unit for unit in aligned_units(by_language) if source in unit]  # once, for every target
    searches: list[Search] = []
    for target, pairs in by_language.items():
        if target == source:
            continue
        name = cell_name((source, target))
        units = [unit for unit in aligned if target in unit]
        paraphrases = [
            LabeledPair(unit[source].first, unit[target].second, 1, unit[source].line, unit[source].path, language=name)
            for unit in units
            if unit[source].label == 1 and cross_lingual_usable(unit[source], unit[target])
        ]
        unlabelled = frozenset(
            (unit[source].first, unit[target].second) for unit in units if unit[source].label != unit[target].label
        )
        searches.append(Search(name, paraphrases, _distinct(pair.second for pair in pairs), unlabelled))
    return searches


def _distinct(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def mine_negatives(
    searches: Sequence[Search],
    miner_folder: Path,
    spec: RetrievalNegatives,
    say: Callable[[str], None] = print,
) -> MinedNegatives:
    """Per search, up to ``spec.per_query`` label-0 pairs per distinct query (named by the search)."""
    names = [search.name for search in searches]
    if len(set(names)) < len(names):
        raise InputError(f"the same search twice among {names}: its negatives would be mined twice")
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    miner = SentenceTransformer(str(miner_folder))
    # both sides with the model's default prompt, as paraxl embeds (e5: "query: "); the library would
    # otherwise give the corpus the model's document prompt (e5: "passage: "), another retriever
    prompt = miner.prompts.get(miner.default_prompt_name or "", "")
    rows: list[LabeledPair] = []
    per_search: dict[str, int] = {}
    for search in searches:
        if not search.paraphrases:  # across languages: no id with a paraphrase row in both
            say(f"mining retrieval negatives ({search.name or 'pairs'}): no paraphrase to query with, none mined")
            continue
        queries, paraphrases = [pair.first for pair in search.paraphrases], [pair.second for pair in search.paraphrases]
        dataset = Dataset.from_dict({ANCHOR: queries, CANDIDATE: paraphrases})
        say(
            f"mining retrieval negatives ({search.name or 'pairs'}): "
            f"{len(dataset)} paraphrases, {len(search.corpus)} sentences"
        )
        mined = mine_hard_negatives(
            dataset,
            miner,
            corpus=search.corpus,
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
        first_rows = {pair.first: pair for pair in reversed(search.paraphrases)}
        found = [
            pair
            for pair in _negatives(mined.to_dict(), first_rows, search.name)
            if (pair.first, pair.second) not in search.unlabelled
        ]
        rows += found
        per_search[search.name] = len(found)
    return MinedNegatives(rows, per_search)


def _negatives(mined: dict[str, list[Any]], source: Mapping[str, LabeledPair], language: str) -> list[LabeledPair]:
    """The label-0 rows of ``mine_hard_negatives``' labelled pairs (its label-1 rows are the paraphrases
    the run has already); ``source``: the first row of each query, named in any later error."""
    return [
        LabeledPair(anchor, candidate, 0, source[anchor].line, source[anchor].path, language=language)
        for anchor, candidate, label in zip(mined[ANCHOR], mined[CANDIDATE], mined["label"], strict=True)
        if label == 0
    ]
