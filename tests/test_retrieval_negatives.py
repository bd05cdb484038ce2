"""A reranker's negatives (``retrieval_negatives`` of a cross-encoder config), on the tiny model:
mined pairs against a brute-force cosine ranking, never a gold paraphrase, counted in the run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import read_pawsx_pairs
from paraxl.errors import InputError
from paraxl.io.rows import RowPolicy
from paraxl.training.cross_encoder_config import CrossEncoderTrainConfig, RetrievalNegatives, resume_settings
from paraxl.training.retrieval_negatives import (
    MinedNegatives,
    cross_lingual_searches,
    mine_negatives,
    monolingual_searches,
)

from .test_cross_encoder_train import write_config
from .training_helpers import fake_pawsx

runner = CliRunner()


def pawsx_rows(tmp_path: Path, languages: tuple[str, ...] = ("en", "de")) -> dict[str, list[LabeledPair]]:
    data = fake_pawsx(tmp_path / "data")
    found = read_pawsx_pairs(data, "train", list(languages), "resplit", RowPolicy(on_error="raise"))
    return {
        language: [pair for pair in rows if "NS" not in (pair.first, pair.second)] for language, rows in found.items()
    }


def translated_pawsx(tmp_path: Path) -> Path:
    """The fake PAWS-X with German train sentence2s of their own (" de" added: another corpus than the
    English one) and every third German label flipped (those ids give no cross-lingual gold pair)."""
    data = fake_pawsx(tmp_path / "data")
    path = data / "pawsx" / "resplit" / "de" / "train.tsv"
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [lines[0]]
    for number, line in enumerate(lines[1:]):
        key, first, second, label = line.split("\t")
        if second != "NS" and first != "NS":
            second += " de"
            label = str(1 - int(label)) if number % 3 == 0 else label
        rows.append("\t".join((key, first, second, label)))
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return data


def brute_force(
    paraphrases: list[tuple[str, str]],
    corpus: list[str],
    model_dir: Path,
    per_query: int,
    margin: float,
    unlabelled: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, list[str]]:
    """The oracle: for each query with a paraphrase, cosines to every corpus text, the query and its
    paraphrases left out, candidates above (weakest paraphrase's cosine) x (1 - margin) left out, the
    best ``per_query`` of the rest in order, then any (query, text) pair in ``unlabelled`` dropped."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir))
    gold: dict[str, set[str]] = {}
    for query, paraphrase in paraphrases:
        gold.setdefault(query, set()).add(paraphrase)
    queries = list(gold)
    corpus_vectors = model.encode(corpus, normalize_embeddings=True)
    query_vectors = model.encode(queries, normalize_embeddings=True)
    expected: dict[str, list[str]] = {}
    for query, vector in zip(queries, query_vectors, strict=True):
        cosines = {text: float(np.dot(vector, other)) for text, other in zip(corpus, corpus_vectors, strict=True)}
        weakest = min(cosines[text] for text in gold[query])
        ceiling = weakest - abs(weakest) * margin
        allowed = [t for t in corpus if t != query and t not in gold[query] and cosines[t] <= ceiling]
        top = sorted(allowed, key=lambda text: -cosines[text])[:per_query]
        expected[query] = [text for text in top if (query, text) not in unlabelled]
    return expected


def mined_by_query(mined: MinedNegatives, search: str) -> dict[str, list[str]]:
    got: dict[str, list[str]] = {}
    for pair in mined.rows:
        if pair.language == search:
            got.setdefault(pair.first, []).append(pair.second)
    return got


def test_mined_negatives_are_the_top_cosines_outside_the_paraphrases_and_the_margin(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    by_language = pawsx_rows(tmp_path)
    # range_max past the corpus (48 sentences a language): every sentence2 is a candidate, as in the oracle
    spec = RetrievalNegatives(miner=str(tiny_model_dir), per_query=2, range_max=64, relative_margin=0.05)
    mined = mine_negatives(monolingual_searches(by_language), tiny_model_dir, spec, say=lambda _: None)

    assert sum(mined.per_search.values()) == len(mined.rows) > 0
    for language, rows in by_language.items():
        paraphrases = [(row.first, row.second) for row in rows if row.label == 1]
        corpus = list(dict.fromkeys(row.second for row in rows))
        expected = brute_force(paraphrases, corpus, tiny_model_dir, per_query=2, margin=0.05)
        assert mined_by_query(mined, language) == {query: texts for query, texts in expected.items() if texts}
        assert mined.per_search[language] == sum(len(texts) for texts in expected.values())


def test_cross_lingual_queries_search_the_other_languages_sentence2s_with_gold_by_id(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = translated_pawsx(tmp_path)
    found = read_pawsx_pairs(data, "train", ["en", "de"], "resplit", RowPolicy(on_error="raise"))
    by_language = {language: [p for p in rows if "NS" not in (p.first, p.second)] for language, rows in found.items()}
    # the tiny model ranks its allowed candidates low: no margin, the whole corpus a candidate
    spec = RetrievalNegatives(miner=str(tiny_model_dir), per_query=2, range_max=64, relative_margin=0.0)
    searches = cross_lingual_searches(by_language, "en")
    assert [search.name for search in searches] == ["en-de"]
    mined = mine_negatives(searches, tiny_model_dir, spec, say=lambda _: None)

    # the oracle's gold, by a plain double loop: the German sentence2 of the same id, both rows label 1
    german = by_language["de"]
    paraphrases = [
        (en.first, de.second)
        for en in by_language["en"]
        for de in german
        if en.key == de.key and en.label == de.label == 1
    ]
    assert paraphrases and len(paraphrases) < sum(row.label for row in by_language["en"])  # flipped ids left out
    # a flipped id's German sentence2 has no known label for its English sentence1: never a negative
    unlabelled = frozenset(
        (en.first, de.second) for en in by_language["en"] for de in german if en.key == de.key and en.label != de.label
    )
    corpus = list(dict.fromkeys(row.second for row in german))
    expected = brute_force(paraphrases, corpus, tiny_model_dir, per_query=2, margin=0.0, unlabelled=unlabelled)
    assert expected != brute_force(paraphrases, corpus, tiny_model_dir, per_query=2, margin=0.0)  # some dropped
    assert mined_by_query(mined, "en-de") == {query: texts for query, texts in expected.items() if texts}
    assert all(pair.second.endswith(" de") and pair.label == 0 for pair in mined.rows)  # German corpus only
    assert mined.per_search == {"en-de": len(mined.rows)} and mined.rows


def test_a_mined_negative_is_never_a_gold_paraphrase_and_names_its_querys_row(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    by_language = pawsx_rows(tmp_path)
    spec = RetrievalNegatives(miner=str(tiny_model_dir), per_query=5, relative_margin=0.0)
    mined = mine_negatives(monolingual_searches(by_language), tiny_model_dir, spec, say=lambda _: None)
    for pair in mined.rows:
        rows = by_language[pair.language]
        assert pair.label == 0 and pair.first != pair.second
        assert not any(row.label == 1 and (row.first, row.second) == (pair.first, pair.second) for row in rows)
        assert pair.second in {row.second for row in rows}  # the corpus: the language's sentence2s
        source = next(row for row in rows if row.first == pair.first)  # the first row of the query
        assert (pair.path, pair.line) == (source.path, source.line)


def train_with_negatives(
    model_dir: Path, tmp_path: Path, data: Path, languages: list[str], negatives: dict[str, object], search: str
) -> dict[str, Any]:
    """One epoch of a tiny cross-encoder on ``languages`` with ``negatives``; its summary.json, once
    the run succeeded and said it mined ``search`` (e.g. "(en-de)")."""
    data_section = {"kind": "pawsx", "languages": languages}
    config = write_config(tmp_path / "ce.yaml", model_dir, data_section, epochs=1, retrieval_negatives=negatives)
    result = runner.invoke(app, ["train", str(config), "--data-dir", str(data)])
    assert result.exit_code == 0, result.stderr
    assert f"mining retrieval negatives {search}" in result.stderr
    summary: dict[str, Any] = json.loads((tmp_path / "run" / "summary.json").read_text())
    return summary


def test_a_run_with_retrieval_negatives_trains_on_them_and_records_them(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    # the tiny model ranks its few allowed candidates low: the whole corpus, no margin
    negatives = {"miner": str(tiny_model_dir), "per_query": 1, "range_max": 64, "relative_margin": 0.0}
    summary = train_with_negatives(tiny_model_dir, tmp_path, data, ["en"], negatives, "(en)")
    mined = summary["data"]["retrieval_negatives"]["en"]
    assert mined > 0 and summary["data"]["pairs_total"] == summary["data"]["pairs"]["en"] + mined
    settings = summary["settings"]["retrieval_negatives"]
    assert settings["per_query"] == 1 and len(settings["miner_fingerprint"]) == 64


def test_another_miner_setting_is_another_run_to_resume() -> None:
    def settings(**negatives: object) -> dict[str, object]:
        raw = {"model": {"kind": "cross_encoder"}, "data": {"kind": "pawsx"}, "output_dir": "x"}
        config = CrossEncoderTrainConfig.model_validate(raw | {"retrieval_negatives": {"miner": "m", **negatives}})
        return resume_settings(config, "fp32", "f" * 64)

    assert settings() == settings(batch_size=8)  # the batch size changes no mined pair
    assert settings() == settings(cross_lingual_queries=[])  # the settings of the runs before the option
    assert settings() != settings(cross_lingual_queries=["en"])
    assert settings() != settings(per_query=2)
    assert settings() != settings(relative_margin=0.1)


@pytest.mark.parametrize("field, value", [("per_query", 0), ("relative_margin", 1.0), ("colour", 1)])
def test_bad_retrieval_negatives_settings_are_refused(field: str, value: object) -> None:
    raw = {"model": {"kind": "cross_encoder"}, "data": {"kind": "pawsx"}, "output_dir": "x"}
    with pytest.raises(ValueError, match=field):
        CrossEncoderTrainConfig.model_validate(raw | {"retrieval_negatives": {"miner": "m", field: value}})


def test_a_run_with_cross_lingual_queries_mines_each_search_and_counts_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = translated_pawsx(tmp_path)
    negatives = {"miner": str(tiny_model_dir), "range_max": 64, "relative_margin": 0.0, "cross_lingual_queries": ["en"]}
    summary = train_with_negatives(tiny_model_dir, tmp_path, data, ["en", "de"], negatives, "(en-de)")
    mined = summary["data"]["retrieval_negatives"]
    assert set(mined) == {"en", "de", "en-de"} and mined["en-de"] > 0
    assert summary["data"]["pairs_total"] == sum(summary["data"]["pairs"].values()) + sum(mined.values())
    assert summary["settings"]["retrieval_negatives"]["cross_lingual_queries"] == ["en"]


def test_cross_lingual_searches_refuse_what_they_cannot_align(tmp_path: Path) -> None:
    by_language = pawsx_rows(tmp_path)
    with pytest.raises(InputError, match="no usable 'fr' pairs"):
        cross_lingual_searches(by_language, "fr")
    keyless = {**by_language, "en": [replace(by_language["en"][0], key=None), *by_language["en"][1:]]}
    with pytest.raises(InputError, match="need an id on every pair") as error:
        cross_lingual_searches(keyless, "en")
    assert error.value.line == by_language["en"][0].line  # where the row without an id is
    searches = cross_lingual_searches(by_language, "en")
    with pytest.raises(InputError, match="the same search twice"):
        mine_negatives([*searches, *searches], tmp_path / "never-loaded", RetrievalNegatives(miner="m"))


@pytest.mark.parametrize(
    "data, queries, message",
    [
        ({"kind": "pawsx", "languages": ["en", "de"]}, ["fr"], r"\['fr'\] are not among"),
        ({"kind": "pawsx", "languages": ["en"]}, ["en"], "at least two data languages"),
        ({"kind": "pawsx", "languages": ["en", "de"]}, ["en", "en"], "names a language twice"),
        ({"kind": "pairs", "paths": ["a.tsv", "b.tsv"]}, ["en"], "name one language per file"),
        ({"kind": "pairs", "paths": ["a.tsv", "b.tsv"], "languages": ["en", "de"]}, ["de", "fr"], "'fr'"),
    ],
)
def test_cross_lingual_queries_outside_the_data_languages_are_refused(
    data: dict[str, object], queries: list[str], message: str
) -> None:
    raw = {"model": {"kind": "cross_encoder"}, "data": data, "output_dir": "x"}
    negatives = {"miner": "m", "cross_lingual_queries": queries}
    with pytest.raises(ValueError, match=message):
        CrossEncoderTrainConfig.model_validate(raw | {"retrieval_negatives": negatives})
