"""Retrieve and rerank on PAWS-X (issue 28): the bi-encoder's search alone vs reranked by the cross-encoder.

Usage (the real run; the cross-encoder scores --top-k pairs per query, ~30 pairs/s on 2 cores):
    python benchmarks/bench_rerank.py --bi runs/soup/final --cross runs/cross-encoder/final \\
        --data-dir ../shared/data --limit 200
Smoke test (tiny models):
    python benchmarks/bench_rerank.py --bi BI --cross CE --data-dir DIR --limit 5 --name rerank-smoke

The retrieval set, per target language X (default: all 7 PAWS-X languages, en -> en included), from
the resplit *test* split only: the queries are the English sentence1 of the test pairs that are
paraphrases (label 1 in both files, matched by id as ``paraxl.evaluation.pawsx_cross.cell_pairs``
matches them; pairs holding the untranslated placeholder NS left out), the target of each is that
pair's sentence2 in X, and the corpus is the distinct sentence2 of *every* X test pair (both labels).
PAWS-X's negatives are word-swapped near-duplicates of the positives' sentences, so the corpus is full
of hard distractors: sentences of the same words and another meaning. A query is answered when the
target's text is among the first k hits (recall@k). One target undercounts: the corpus can hold the
query's own translation and other gold paraphrases of its sentence1, so recall_any@k also accepts
those (:func:`retrieval_set`'s ``accepted``); other paraphrases of the query that no gold pair
links to it still count as misses under both.

Per query, one at a time (as a search request would be): the bi-encoder embeds the query (the
model's default prompt, as ``paraxl index build`` embeds the corpus), an exact ``VectorIndex``
(``paraxl search``'s) returns the --top-k nearest, and the cross-encoder re-scores those --top-k
(query, hit) pairs and reorders them (``paraxl.decision.rerank.rerank_hits``, as ``paraxl search
--rerank`` does). Recall@1 and @10 for both orders, and mean latency per query: bi (encode + search)
and rerank (the cross-encoder), wall clock. With --top-k 10 recall@10 cannot change (reranking only
reorders the same 10 hits); a larger --top-k lets the cross-encoder lift a target from further down.

Writes ``benchmarks/results/<name>.json`` and ``<name>.md``, naming the CPU and its instruction-set flags.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from paraxl.data.readers import PAWSX_LANGUAGES, UNTRANSLATED, parse_languages, pawsx_file
from paraxl.decision.model_scorers import cross_encoder_scorer, is_cross_encoder_model
from paraxl.decision.rerank import rerank_hits
from paraxl.decision.scorers import PairScorer
from paraxl.errors import InputError, ParaxlError
from paraxl.evaluation.bench_report import cpu_info, present_flags, write_report
from paraxl.evaluation.pawsx_cross import cell_pairs
from paraxl.evaluation.pawsx_protocol import read_labelled
from paraxl.evaluation.results import git_commit, library_versions
from paraxl.io.hashing import data_file_records
from paraxl.loading.model import resolve_model
from paraxl.modeling.protocol import SentenceEncoder
from paraxl.serving.index import SearchHit, VectorIndex

RESULTS = Path(__file__).resolve().parent / "results"
RECALL_AT = (1, 10)
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bi", required=True, help="bi-encoder: model folder or bundled:NAME")
    parser.add_argument("--cross", required=True, help="cross-encoder folder")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--languages", default=",".join(PAWSX_LANGUAGES), help="target languages of the corpus")
    parser.add_argument("--limit", type=int, default=None, help="first N queries per language")
    parser.add_argument("--top-k", type=int, default=10, help="hits searched and reranked per query")
    parser.add_argument("--batch-size", type=int, default=64, help="bi-encoder texts per forward pass (corpus)")
    parser.add_argument("--name", default="rerank", help="result file stem under --output-dir")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.top_k < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--top-k and --limit must be at least 1")
    return args


class RetrievalSet(NamedTuple):  # not a dataclass: the tests load this script without registering it
    """One target language: English queries, their targets' texts, the corpus (distinct texts), and
    per query every corpus text known to mean the same (the target among them)."""

    queries: list[str]
    targets: list[str]
    corpus: list[str]
    accepted: list[frozenset[str]]


def retrieval_set(english: Sequence[Any], target: Sequence[Any], limit: int | None) -> RetrievalSet:
    """Queries from the label-1 pairs of the en -> X cell; corpus: every X test pair's sentence2.

    ``accepted``: PAWS-X pairs the same English sentence1 with several sentence2s, and the corpus can
    hold a query's own translation (a sentence1 in X that is another pair's sentence2), so one
    target undercounts what is right. A query's accepted texts: its target, the X sentence1 of
    every pair whose English sentence1 is the query (its translation), and the X sentence2 of every
    label-1 pair of that English sentence1 (its other gold paraphrases); those in the corpus count.
    """
    rows_en, rows_x, _ = cell_pairs(english, target)
    corpus = list(dict.fromkeys(pair.second for pair in target if pair.second.strip() != UNTRANSLATED))
    same_meaning: dict[str, set[str]] = {}
    for row_en, row_x in zip(rows_en, rows_x, strict=True):
        known = same_meaning.setdefault(english[row_en].first, set())
        known.add(target[row_x].first)
        if target[row_x].label == 1:
            known.add(target[row_x].second)
    in_corpus = set(corpus)
    queries, targets, accepted = [], [], []
    for row_en, row_x in zip(rows_en, rows_x, strict=True):
        if target[row_x].label == 1:
            queries.append(english[row_en].first)
            targets.append(target[row_x].second)
            accepted.append(frozenset(same_meaning[english[row_en].first] & in_corpus))
    return RetrievalSet(queries[:limit], targets[:limit], corpus, accepted[:limit])


def recall(ranked: Sequence[Sequence[str]], answers: Sequence[Collection[str]], k: int) -> float:
    """Share of queries with one of their answer texts among their first ``k`` hits."""
    found = [not set(texts).isdisjoint(list(hits)[:k]) for hits, texts in zip(ranked, answers, strict=True)]
    return float(np.mean(found)) if found else float("nan")


def run_language(
    encoder: SentenceEncoder, cross: PairScorer, data: RetrievalSet, args: argparse.Namespace
) -> dict[str, Any]:
    """Index the corpus, then search and rerank each query alone, timed."""
    prompt = encoder.settings.default_prompt_name
    vectors = encoder.encode(data.corpus, batch_size=args.batch_size, prompt_name=prompt)
    ids = [f"c{i}" for i in range(len(data.corpus))]
    index = VectorIndex.build(vectors, ids, data.corpus, "exact", prompt_name=prompt)
    bi_ranked: list[list[str]] = []
    reranked: list[list[str]] = []
    bi_seconds: list[float] = []
    rerank_seconds: list[float] = []
    for query in data.queries:
        start = time.perf_counter()
        hits: list[SearchHit] = index.search(encoder.encode([query], prompt_name=prompt), args.top_k)[0]
        middle = time.perf_counter()
        order = rerank_hits([query], [hits], lambda hit: hit.text, cross)[0]
        bi_seconds.append(middle - start)
        rerank_seconds.append(time.perf_counter() - middle)
        bi_ranked.append([hit.text or "" for hit in hits])
        reranked.append([item.hit.text or "" for item in order])
    out: dict[str, Any] = {"queries": len(data.queries), "corpus": len(data.corpus)}
    for name, ranked in (("bi", bi_ranked), ("reranked", reranked)):
        out[name] = {f"recall@{k}": recall(ranked, [{target} for target in data.targets], k) for k in RECALL_AT}
        out[name] |= {f"recall_any@{k}": recall(ranked, data.accepted, k) for k in RECALL_AT}
    out["accepted_per_query"] = float(np.mean([len(texts) for texts in data.accepted])) if data.accepted else 0.0
    out["ms_per_query"] = {
        "bi": 1000 * float(np.mean(bi_seconds)) if bi_seconds else float("nan"),
        "rerank": 1000 * float(np.mean(rerank_seconds)) if rerank_seconds else float("nan"),
        "total": 1000 * float(np.mean(np.add(bi_seconds, rerank_seconds))) if bi_seconds else float("nan"),
    }
    return out


def mean_row(rows: dict[str, dict[str, Any]], name: str) -> dict[str, float]:
    """Each recall averaged over the languages (each language weighs the same)."""
    keys = [f"{kind}@{k}" for kind in ("recall", "recall_any") for k in RECALL_AT]
    return {key: float(np.mean([row[name][key] for row in rows.values()])) for key in keys}


def markdown(document: dict[str, Any]) -> str:
    cpu, top_k = document["machine"]["cpu"], document["args"]["top_k"]
    lines = [
        f"# Retrieve and rerank: {document['models']['bi']['spec']} + {document['models']['cross']['spec']}",
        "",
        f"PAWS-X resplit test: English queries (label-1 pairs), corpus = every sentence2 of the target "
        f"language's test pairs; {top_k} hits searched and reranked per query. "
        f"{cpu['model']}, {cpu['available_cpus']} CPUs, flags: {', '.join(present_flags(cpu)) or 'none listed'}.",
        "",
        'Recall counts the query\'s target only; "any" also counts the other corpus texts known to mean the same '
        '(the query\'s own translation, the other gold paraphrases of its sentence1; "accepted": their mean count).',
        "",
        "| en -> | queries | corpus | accepted | bi R@1 | bi R@10 | reranked R@1 | reranked R@10 "
        "| bi R@1 any | reranked R@1 any | ms bi | ms rerank | ms total |",
        "|---" * 13 + "|",
    ]
    for language, row in document["languages"].items():
        bi, rr, ms = row["bi"], row["reranked"], row["ms_per_query"]
        lines.append(
            f"| {language} | {row['queries']} | {row['corpus']} | {row['accepted_per_query']:.2f} "
            f"| {100 * bi['recall@1']:.1f} | {100 * bi['recall@10']:.1f} | {100 * rr['recall@1']:.1f} "
            f"| {100 * rr['recall@10']:.1f} | {100 * bi['recall_any@1']:.1f} | {100 * rr['recall_any@1']:.1f} "
            f"| {ms['bi']:.1f} | {ms['rerank']:.1f} | {ms['total']:.1f} |"
        )
    mean = document["mean"]
    lines.append(
        f"| mean | | | | {100 * mean['bi']['recall@1']:.1f} | {100 * mean['bi']['recall@10']:.1f} | "
        f"{100 * mean['reranked']['recall@1']:.1f} | {100 * mean['reranked']['recall@10']:.1f} | "
        f"{100 * mean['bi']['recall_any@1']:.1f} | {100 * mean['reranked']['recall_any@1']:.1f} | | | |"
    )
    return "\n".join(lines) + "\n"


def write(document: dict[str, Any], args: argparse.Namespace) -> None:
    stem = args.output_dir / args.name
    write_report(stem, document, markdown(document))
    print(f"wrote {stem}.json and .md", flush=True)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Every language's row, the means and the provenance; bad input (data, models) raises ParaxlError."""
    languages = parse_languages(args.languages, PAWSX_LANGUAGES, "PAWS-X")
    pairs = read_labelled(args.data_dir, "test", sorted({"en", *languages}), "resplit")
    bi_model, cross_model = resolve_model(args.bi), resolve_model(args.cross)
    if not is_cross_encoder_model(cross_model):  # config checks, before either model loads
        raise InputError(f"--cross {args.cross} is not a cross-encoder (a sentence embedder); this benchmark needs one")
    if is_cross_encoder_model(bi_model):
        raise InputError(f"--bi {args.bi} is a cross-encoder; this benchmark searches with a bi-encoder")
    encoder = bi_model.load().encoder
    cross = cross_encoder_scorer(cross_model)
    cross.score([("warm", "up")])  # first-call allocations stay out of the timings
    encoder.encode(["warm up"])
    start = time.perf_counter()
    rows = {}
    for language in languages:
        rows[language] = run_language(encoder, cross, retrieval_set(pairs["en"], pairs[language], args.limit), args)
        print(f"en -> {language}: {rows[language]['reranked']} ({time.perf_counter() - start:.0f} s)", flush=True)
    return {
        "benchmark": "bench_rerank",
        "models": {
            name: {"spec": model.spec, "fingerprint": model.weights_fingerprint}
            for name, model in (("bi", bi_model), ("cross", cross_model))
        },
        "args": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "data": data_file_records(
            [pawsx_file(args.data_dir, "resplit", lang, "test") for lang in sorted({"en", *languages})],
            args.data_dir,
        ),
        "languages": rows,
        "mean": {name: mean_row(rows, name) for name in ("bi", "reranked")},
        "seconds": time.perf_counter() - start,
        "machine": {"cpu": cpu_info(CPU_FLAGS)},
        "versions": library_versions(),
        "git": git_commit(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run and write the report; bad input is one ``error:`` line and exit status 2, no traceback."""
    args = parse_args(argv)
    try:
        document = benchmark(args)
    except ParaxlError as problem:
        print(f"error: {problem}", flush=True)
        return 2
    write(document, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
