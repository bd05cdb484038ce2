"""The real bundled e5-small through the evaluation tasks, on slices of the real benchmark files."""

from __future__ import annotations

from pathlib import Path

import pytest

from paraxl.evaluation.embeddings import CachedEmbedder
from paraxl.evaluation.loaders.sts import read_sts17_extended
from paraxl.evaluation.tasks.base import EvalContext
from paraxl.evaluation.tasks.bitext import TatoebaTask
from paraxl.evaluation.tasks.sts import STS17_EXTENDED_SPEC, StsFileTask
from paraxl.loading.backends import load_encoder

pytestmark = pytest.mark.real_model

SLICE = 120  # lines per file: enough for stable scores, small enough for CI


@pytest.fixture(scope="module")
def embedder(paraxl_cache: Path) -> CachedEmbedder:
    return CachedEmbedder(load_encoder("bundled:multilingual-e5-small"), show_progress=False)


def _head(source: Path, target: Path, lines: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open(encoding="utf-8") as handle:
        target.write_text("".join(line for _, line in zip(range(lines), handle, strict=False)), encoding="utf-8")


def test_tatoeba_slice_retrieves_translations(data_dir: Path, tmp_path: Path, embedder: CachedEmbedder) -> None:
    languages = ("deu", "fra", "jpn")
    for language in languages:
        for side in (language, "eng"):
            name = f"tatoeba.{language}-eng.{side}"
            _head(data_dir / "tatoeba" / "v1" / name, tmp_path / "tatoeba" / "v1" / name, SLICE)
    result = TatoebaTask(languages).run(embedder, EvalContext(data_dir=tmp_path))
    for language in languages:
        scores = result.scores["per_language"][language]
        assert scores["n"] == SLICE
        # e5-small retrieves most of 120 translations; a broken tokenizer/prefix/pooling drops far below
        assert scores["accuracy_xx_to_en"] >= 0.85, (language, scores)
        assert scores["accuracy_en_to_xx"] >= 0.85, (language, scores)


def test_sts_slice_correlates_with_gold(data_dir: Path, tmp_path: Path, embedder: CachedEmbedder) -> None:
    """STS17 en-en written in the published jsonl layout, read back by the STS17-extended task."""
    import json

    inputs = (data_dir / "sts17" / "STS2017.eval.v1.1" / "STS.input.track5.en-en.txt").read_text().splitlines()
    gold = (data_dir / "sts17" / "STS2017.gs" / "STS.gs.track5.en-en.txt").read_text().splitlines()
    folder = tmp_path / "sts17-crosslingual"
    folder.mkdir()
    rows = [
        {"sentence1": line.split("\t")[0], "sentence2": line.split("\t")[1], "score": float(score), "lang": "en-en"}
        for line, score in zip(inputs[:SLICE], gold[:SLICE], strict=True)
    ]
    (folder / "test.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    result = StsFileTask(STS17_EXTENDED_SPEC, "sts17-crosslingual", read_sts17_extended).run(
        embedder, EvalContext(data_dir=tmp_path)
    )
    assert result.scores["sets"]["en-en"]["n"] == SLICE
    assert result.main_score > 70  # MTEB reports ~86 for e5-small on the full en-en track
