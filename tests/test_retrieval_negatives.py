"""A reranker's negatives (``retrieval_negatives`` of a cross-encoder config), on the tiny model:
mined pairs against a brute-force cosine ranking, never a gold paraphrase, counted in the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import read_pawsx_pairs
from paraxl.io.rows import RowPolicy
from paraxl.training.cross_encoder_config import CrossEncoderTrainConfig, RetrievalNegatives, resume_settings
from paraxl.training.retrieval_negatives import mine_negatives

from .test_cross_encoder_train import write_config
from .training_helpers import fake_pawsx

runner = CliRunner()


def pawsx_rows(tmp_path: Path, languages: tuple[str, ...] = ("en", "de")) -> dict[str, list[LabeledPair]]:
    data = fake_pawsx(tmp_path / "data")
    found = read_pawsx_pairs(data, "train", list(languages), "resplit", RowPolicy(on_error="raise"))
    return {
        language: [pair for pair in rows if "NS" not in (pair.first, pair.second)] for language, rows in found.items()
    }


def brute_force(rows: list[LabeledPair], model_dir: Path, per_query: int, margin: float) -> dict[str, list[str]]:
    """The oracle: for each sentence1 with a paraphrase, cosines to every sentence2 of the language,
    the query and its paraphrases left out, candidates above (weakest paraphrase's cosine) x (1 - margin)
    left out, the best ``per_query`` of the rest in order."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir))
    corpus = list(dict.fromkeys(pair.second for pair in rows))
    paraphrases: dict[str, set[str]] = {}
    for pair in rows:
        if pair.label == 1:
            paraphrases.setdefault(pair.first, set()).add(pair.second)
    queries = list(paraphrases)
    corpus_vectors = model.encode(corpus, normalize_embeddings=True)
    query_vectors = model.encode(queries, normalize_embeddings=True)
    expected: dict[str, list[str]] = {}
    for query, vector in zip(queries, query_vectors, strict=True):
        cosines = {text: float(np.dot(vector, other)) for text, other in zip(corpus, corpus_vectors, strict=True)}
        weakest = min(cosines[text] for text in paraphrases[query])
        ceiling = weakest - abs(weakest) * margin
        allowed = [t for t in corpus if t != query and t not in paraphrases[query] and cosines[t] <= ceiling]
        expected[query] = sorted(allowed, key=lambda text: -cosines[text])[:per_query]
    return expected


def test_mined_negatives_are_the_top_cosines_outside_the_paraphrases_and_the_margin(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    by_language = pawsx_rows(tmp_path)
    # range_max past the corpus (48 sentences a language): every sentence2 is a candidate, as in the oracle
    spec = RetrievalNegatives(miner=str(tiny_model_dir), per_query=2, range_max=64, relative_margin=0.05)
    mined = mine_negatives(by_language, tiny_model_dir, spec, say=lambda _: None)

    assert sum(mined.per_language.values()) == len(mined.rows) > 0
    for language, rows in by_language.items():
        expected = brute_force(rows, tiny_model_dir, per_query=2, margin=0.05)
        got: dict[str, list[str]] = {}
        for pair in mined.rows:
            if pair.language == language:
                got.setdefault(pair.first, []).append(pair.second)
        assert got == {query: texts for query, texts in expected.items() if texts}
        assert mined.per_language[language] == sum(len(texts) for texts in expected.values())


def test_a_mined_negative_is_never_a_gold_paraphrase_and_names_its_querys_row(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    by_language = pawsx_rows(tmp_path)
    spec = RetrievalNegatives(miner=str(tiny_model_dir), per_query=5, relative_margin=0.0)
    mined = mine_negatives(by_language, tiny_model_dir, spec, say=lambda _: None)
    for pair in mined.rows:
        rows = by_language[pair.language]
        assert pair.label == 0 and pair.first != pair.second
        assert not any(row.label == 1 and (row.first, row.second) == (pair.first, pair.second) for row in rows)
        assert pair.second in {row.second for row in rows}  # the corpus: the language's sentence2s
        source = next(row for row in rows if row.first == pair.first)  # the first row of the query
        assert (pair.path, pair.line) == (source.path, source.line)


def test_a_run_with_retrieval_negatives_trains_on_them_and_records_them(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    # the tiny model ranks its few allowed candidates low: the whole corpus, no margin
    negatives = {"miner": str(tiny_model_dir), "per_query": 1, "range_max": 64, "relative_margin": 0.0}
    config = write_config(
        tmp_path / "ce.yaml",
        tiny_model_dir,
        {"kind": "pawsx", "languages": ["en"]},
        epochs=1,
        retrieval_negatives=negatives,
    )
    result = runner.invoke(app, ["train", str(config), "--data-dir", str(data)])
    assert result.exit_code == 0, result.stderr
    assert "mining retrieval negatives (en)" in result.stderr

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
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
    assert settings() != settings(per_query=2)
    assert settings() != settings(relative_margin=0.1)


@pytest.mark.parametrize("field, value", [("per_query", 0), ("relative_margin", 1.0), ("colour", 1)])
def test_bad_retrieval_negatives_settings_are_refused(field: str, value: object) -> None:
    raw = {"model": {"kind": "cross_encoder"}, "data": {"kind": "pawsx"}, "output_dir": "x"}
    with pytest.raises(ValueError, match=field):
        CrossEncoderTrainConfig.model_validate(raw | {"retrieval_negatives": {"miner": "m", field: value}})
