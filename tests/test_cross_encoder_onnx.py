"""Cross-encoders on ONNX Runtime (issue 28): the fp32 and int8 export of a sentence-transformers
CrossEncoder folder, its scorer against ``CrossEncoder.predict``, ``--backend onnx|onnx-int8|auto`` in
``pi``, ``calibrate`` and ``eval``, and the benchmark script, on tiny cross-encoders (seeded heads)."""

from __future__ import annotations

import csv
import json
import shutil
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.data.readers import PAWSX_LANGUAGES
from paraxl.decision.model_scorers import cross_encoder_scorer
from paraxl.errors import InputError, ModelFormatError
from paraxl.inference import cross_encoder_export
from paraxl.inference.cross_encoder_check import SCORE_TOLERANCE, refusal
from paraxl.inference.cross_encoder_export import export_cross_encoder
from paraxl.inference.cross_encoder_onnx import OnnxCrossEncoderScorer
from paraxl.inference.onnx_encoder import OnnxEncoder
from paraxl.inference.onnx_export import export_onnx
from paraxl.inference.onnx_files import BACKEND_FILES, read_manifest
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.loading.model import resolve_model
from paraxl.modeling.cross_encoder import load_cross_encoder, open_cross_encoder_scorer

from .scripts import load_benchmark_script

runner = CliRunner()
WORDS = ["the", "cat", "dog", "sat", "on", "mat", "ran", "le", "chat", "der", "hund"]
# int8 against torch on the tiny cross-encoder (scores spread over ~(0.1, 0.95)): measured max 0.042 on the
# test's 82 pairs (fp32: 5.7e-7), every decision at the median equal; the bound leaves about 2x room
INT8_SCORE_TOLERANCE = 0.08


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def sentence(rng: np.random.Generator, low: int = 1, high: int = 9) -> str:
    return " ".join(rng.choice(WORDS, int(rng.integers(low, high))))


def real_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """Word pairs of 1-8 words each, plus a pair far longer than the models' 64 tokens (truncated)."""
    rng = np.random.default_rng(seed)
    pairs = [(sentence(rng), sentence(rng)) for _ in range(n)]
    return [*pairs, (sentence(rng, 40, 41), sentence(rng, 30, 31)), ("", "x")]


def spread_head(classifier: Any, tokenizer: Any) -> None:
    """Make a random BERT classifier's logits spread over about N(0, 1.5) on word pairs.

    A random tiny BERT (weights of std 0.02) keeps its [CLS] state nearly independent of the pair
    (std ~0.002 per dimension), so every pair gets nearly the same score and a wrong token or truncation
    would move a score by less than the 1e-5 bound. Encoder weights 10x larger mix the tokens (std ~0.2);
    the pooler then passes the state through (identity, then tanh) and the classifier reads its direction
    of largest variation over other pairs, scaled and centred.
    """
    pairs = real_pairs(40, 9)
    features = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation=True,
                         max_length=64, return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        classifier.eval()
        for name, parameter in classifier.bert.encoder.named_parameters():
            if name.endswith("weight") and "LayerNorm" not in name:
                parameter.mul_(10.0)
        pooler, head = classifier.bert.pooler.dense, classifier.classifier
        pooler.weight.copy_(torch.eye(pooler.weight.shape[0]))
        pooler.bias.zero_()
        pooled = classifier.bert(**features).pooler_output  # (n, hidden)
        centred = pooled - pooled.mean(dim=0)
        direction = torch.linalg.svd(centred, full_matrices=False).Vh[0]  # (hidden,)
        weight = direction * 1.5 / (centred @ direction).std()
        head.weight.copy_(weight[None])  # (1, hidden)
        head.bias.copy_(-(pooled.mean(dim=0) @ weight)[None])


def save_cross_encoder(tiny_model_dir: Path, folder: Path) -> Path:
    torch.manual_seed(0)
    model = load_cross_encoder(tiny_model_dir, 64)
    spread_head(model.model, model.tokenizer)
    model.save(str(folder))
    return folder


@pytest.fixture(scope="module")
def ce_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny cross-encoder (XLM-R tokenizer: no token_type_ids) with its fp32 and int8 exports."""
    folder = save_cross_encoder(tiny_model_dir, tmp_path_factory.mktemp("ce-onnx") / "ce")
    export_cross_encoder(folder)
    return folder


@pytest.fixture(scope="module")
def bert_ce_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain Hugging Face BERT classifier folder (WordPiece tokenizer: token_type_ids 0/1), exported fp32."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *string.ascii_lowercase, *string.punctuation]
    tokenizer = BertTokenizer(vocab={piece: index for index, piece in enumerate(vocab)}, model_max_length=64)
    torch.manual_seed(2)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, num_labels=1)  # fmt: skip
    model = BertForSequenceClassification(config).eval()
    spread_head(model, tokenizer)
    folder = tmp_path_factory.mktemp("bert-ce") / "ce"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    export_cross_encoder(folder, int8=False)
    return folder


def st_predict(folder: Path, pairs: list[tuple[str, str]], batch_size: int) -> np.ndarray:
    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(str(folder), activation_fn=torch.nn.Sigmoid())
    return np.asarray(model.predict(pairs, batch_size=batch_size, convert_to_numpy=True), dtype=np.float64)


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_fp32_scores_equal_sentence_transformers_predict(ce_dir: Path, batch_size: int) -> None:
    pairs = real_pairs(24, 0)
    reference = st_predict(ce_dir, pairs, batch_size=1)  # one pair per pass: no padding at all
    scorer = OnnxCrossEncoderScorer.load(ce_dir, "onnx", batch_size=batch_size)  # 64: every pair padded together
    scores = scorer.score(pairs)
    assert scores.dtype == np.float64 and scores.shape == (len(pairs),)
    assert np.ptp(reference) > 0.5  # the scores spread: a wrong token or truncation would show
    np.testing.assert_allclose(scores, reference, rtol=0, atol=SCORE_TOLERANCE)
    assert scorer.score([]).shape == (0,)
    long_pair = scorer.tokenizer(*pairs[-2], truncation="longest_first", max_length=10_000)["input_ids"]
    assert len(long_pair) > scorer.graph.max_length == 64  # the long pair was truncated


def test_int8_scores_are_close_and_decisions_mostly_agree(ce_dir: Path) -> None:
    pairs = real_pairs(80, 1)
    reference = st_predict(ce_dir, pairs, batch_size=16)
    scores = OnnxCrossEncoderScorer.load(ce_dir, "onnx-int8").score(pairs)
    assert np.abs(scores - reference).max() <= INT8_SCORE_TOLERANCE
    assert np.abs(scores - reference).max() > 1e-4  # int8 is not the fp32 graph
    threshold = float(np.median(reference))  # half the pairs on each side: agreement is not automatic
    assert np.mean((scores >= threshold) == (reference >= threshold)) >= 0.9


def test_the_export_record_follows_the_bi_encoder_layout(ce_dir: Path) -> None:
    manifest = read_manifest(ce_dir)
    assert manifest is not None
    assert manifest["kind"] == "cross-encoder" and manifest["output"] == "logits" and manifest["max_length"] == 64
    assert manifest["inputs"] == ["input_ids", "attention_mask"]  # the XLM-R tokenizer makes no token types
    assert manifest["source_fingerprint"] == model_folder_fingerprint(ce_dir)
    assert set(manifest["files"]) == {"onnx", "onnx-int8"}
    assert manifest["files"]["onnx"]["checked_score_max_abs_diff"] <= SCORE_TOLERANCE
    assert manifest["files"]["onnx-int8"]["quantization"]["weight_type"] == "QInt8"
    for backend in ("onnx", "onnx-int8"):
        assert (ce_dir / BACKEND_FILES[backend]).is_file()
        scorer = OnnxCrossEncoderScorer.load(ce_dir, backend)
        assert [node.shape[1] for node in scorer.session.get_outputs()] == [1]  # logits (batch, 1)
    assert export_cross_encoder(ce_dir).up_to_date  # current files are kept
    fingerprints = {OnnxCrossEncoderScorer.load(ce_dir, b).fingerprint for b in ("onnx", "onnx-int8")}
    assert len(fingerprints) == 2


def test_token_type_ids_are_a_graph_input_when_the_tokenizer_makes_them(bert_ce_dir: Path) -> None:
    manifest = read_manifest(bert_ce_dir)
    assert manifest is not None and manifest["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    pairs = real_pairs(12, 2)
    reference = st_predict(bert_ce_dir, pairs, batch_size=1)
    scorer = OnnxCrossEncoderScorer.load(bert_ce_dir, "onnx", batch_size=5)
    np.testing.assert_allclose(scorer.score(pairs), reference, rtol=0, atol=SCORE_TOLERANCE)
    features = scorer.tokenizer([a for a, _ in pairs[:3]], [b for _, b in pairs[:3]], padding=True, return_tensors="np")
    feeds = {name: features[name].astype(np.int64) for name in manifest["inputs"]}
    assert features["token_type_ids"].max() == 1
    with_types = scorer.session.run(["logits"], feeds)[0]
    feeds["token_type_ids"] = np.zeros_like(feeds["token_type_ids"])
    assert not np.allclose(scorer.session.run(["logits"], feeds)[0], with_types)  # the graph reads them


def test_a_planted_truncation_bug_is_refused_and_leaves_no_file(
    ce_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ce"
    shutil.copytree(ce_dir, folder, ignore=shutil.ignore_patterns("onnx"))
    trace = cross_encoder_export._trace

    def short_trace(source: Path, path: Path) -> tuple[tuple[str, ...], int]:
        names, max_length = trace(source, path)
        return names, max_length - 8  # the scorer would truncate 8 tokens too early

    monkeypatch.setattr(cross_encoder_export, "_trace", short_trace)
    with pytest.raises(ModelFormatError, match="does not reproduce torch"):
        export_cross_encoder(folder)
    assert not (folder / BACKEND_FILES["onnx"]).exists() and read_manifest(folder) is None


def test_a_refused_export_states_the_measured_difference_the_tolerance_and_the_likely_cause(tmp_path: Path) -> None:
    """Just above the fp32 tolerance (within 10x on scores and logits) is rounding, not an unsupported
    architecture; farther, NaN, or outside the int8 bound, the graph does not compute the model."""
    near = refusal(tmp_path, "onnx", 2.8e-5, 1.37e-4, 2.56)  # measured on a steep tiny head: 2.8x the bound
    assert "max abs difference 2.8e-05 in the scores, 0.000137 in the logits" in near
    assert "the tolerance is 1e-05 on scores, 0.000256 on logits" in near
    assert "just above the tolerance" in near and "not supported by" not in near
    for scores, logits in ((1.01e-4, 1e-4), (5e-6, 1.1e-3), (float("nan"), float("nan")), (0.3, 2.0)):
        far = refusal(tmp_path, "onnx", scores, logits, 1.0)
        assert far.endswith("this architecture is not supported by the ONNX backend"), far
        assert "just above" not in far and "the tolerance is 1e-05 on scores, 0.0001 on logits" in far
    int8 = refusal(tmp_path, "onnx-int8", 0.3, 2.0, 1.0)
    assert "0.3 in the scores" in int8 and "the int8 bound is 0.25 on scores" in int8 and "just above" not in int8


def test_stale_or_missing_exports_say_what_to_run(ce_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ce"
    shutil.copytree(ce_dir, folder, ignore=shutil.ignore_patterns("onnx"))
    with pytest.raises(ModelFormatError, match="paraxl export-onnx"):
        OnnxCrossEncoderScorer.load(folder)
    export_cross_encoder(folder, int8=False)
    with pytest.raises(ModelFormatError, match="no int8 ONNX export"):
        OnnxCrossEncoderScorer.load(folder, "onnx-int8")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {"layer_norm_eps": 1e-6}))
    with pytest.raises(ModelFormatError, match="stale"):
        OnnxCrossEncoderScorer.load(folder)


def test_a_bi_encoder_folder_passed_as_a_cross_encoder_is_refused_in_one_line(
    tiny_model_dir: Path, ce_dir: Path, tmp_path: Path
) -> None:
    bi = tmp_path / "bi"
    shutil.copytree(tiny_model_dir, bi)
    export_onnx(bi, int8=False)  # a bi-encoder export: present, current, and not a cross-encoder's
    with pytest.raises(InputError, match="is not a cross-encoder") as refused:
        cross_encoder_scorer(resolve_model(str(bi), "onnx"))
    assert "\n" not in str(refused.value)
    for call in (lambda: OnnxCrossEncoderScorer.load(bi), lambda: export_cross_encoder(bi)):
        with pytest.raises(ModelFormatError, match="not a cross-encoder"):
            call()
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("sentence1\tsentence2\tlabel\nthe cat\tle chat\t1\nthe dog\tder hund\t0\n", encoding="utf-8")
    code, _, stderr = run("cascade", "fit", str(bi), str(bi), "--data", str(pairs), "--budget", "0.5",
                          "-o", str(tmp_path / "rule.json"))  # fmt: skip
    assert code == 2 and stderr.count("\n") == 1 and "is not a cross-encoder" in stderr
    # and the other way round: the bi-encoder paths refuse a cross-encoder's folder or graph
    with pytest.raises(ModelFormatError, match="a cross-encoder"):
        export_onnx(ce_dir)
    with pytest.raises(ModelFormatError, match="outputs"):
        OnnxEncoder.load(ce_dir)


def write_pairs(path: Path, pairs: list[tuple[str, str]], labels: list[int]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"p{i}\t{a}\t{b}\t{y}" for i, ((a, b), y) in enumerate(zip(pairs, labels, strict=True))]
    path.write_text("id\tsentence1\tsentence2\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def labelled(n: int, seed: int) -> tuple[list[tuple[str, str]], list[int]]:
    """A sentence and itself plus a stop is 1, two random sentences 0."""
    rng = np.random.default_rng(seed)
    pairs, labels = [], []
    for i in range(n):
        first = sentence(rng, 3, 7)
        pair, label = ((first, first + " ."), 1) if i % 2 == 0 else ((first, sentence(rng, 3, 7)), 0)
        pairs.append(pair)
        labels.append(label)
    return pairs, labels


def test_export_pi_and_calibrate_through_the_cli(ce_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ce"
    shutil.copytree(ce_dir, folder, ignore=shutil.ignore_patterns("onnx"))
    code, stdout, stderr = run("export-onnx", str(folder))
    assert code == 0, stderr
    assert (folder / BACKEND_FILES["onnx-int8"]).is_file() and "onnx-int8" in stdout
    pairs, labels = labelled(16, 3)
    pairs_file = write_pairs(tmp_path / "pairs.tsv", pairs, labels)
    out = tmp_path / "out.tsv"
    code, _, stderr = run("pi", str(folder), "--pairs", str(pairs_file), "--threshold", "0.5",
                          "--backend", "onnx", "-o", str(out))  # fmt: skip
    assert code == 0, stderr
    with out.open(encoding="utf-8") as handle:
        written = [float(row["score"]) for row in csv.DictReader(handle, delimiter="\t")]
    np.testing.assert_allclose(written, open_cross_encoder_scorer(folder).score(pairs), rtol=0, atol=SCORE_TOLERANCE)
    code, _, stderr = run("calibrate", str(folder), "--data", str(pairs_file), "--backend", "onnx-int8", "--folds", "2")
    assert code == 0, stderr
    assert json.loads((folder / "paraxl_calibration.json").read_text())["model"]["backend"] == "onnx-int8"
    code, stdout, stderr = run("pi", str(folder), "the cat sat", "le chat", "--backend", "onnx-int8")
    assert code == 0 and "nan" not in stdout, stderr  # calibrated: a probability


def fake_pawsx(root: Path) -> Path:
    for index, language in enumerate(PAWSX_LANGUAGES):
        for split, seed in (("validation", index), ("test", 50 + index)):
            write_pairs(root / "pawsx" / "resplit" / language / f"{split}.tsv", *labelled(8, seed))
    return root


def test_eval_pawsx_on_each_backend(ce_dir: Path, tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    documents, logs = {}, {}
    for backend in ("torch", "onnx", "onnx-int8", "auto"):
        out = tmp_path / backend
        code, _, stderr = run("eval", str(ce_dir), "--tasks", "pawsx", "--data-dir", str(data), "-o", str(out),
                              "--no-plots", "--backend", backend)  # fmt: skip
        assert code == 0, stderr
        documents[backend], logs[backend] = json.loads((out / "pawsx.json").read_text()), stderr
    weights = model_folder_fingerprint(ce_dir)
    assert [documents[b]["model"]["backend"] for b in documents] == ["torch", "onnx", "onnx-int8", "onnx"]
    assert "ONNX fp32" in logs["auto"]  # auto takes the checked export
    assert {documents[b]["model"]["fingerprint"] for b in ("torch", "onnx", "auto")} == {weights}
    assert documents["onnx-int8"]["model"]["fingerprint"] != weights  # int8 scores differ: their own key
    torch_scores = documents["torch"]["scores"]
    assert documents["onnx"]["scores"]["mean"] == torch_scores["mean"]
    assert documents["onnx"]["scores"]["pooled_threshold"] == pytest.approx(torch_scores["pooled_threshold"], abs=1e-5)


def test_auto_runs_torch_without_an_export(ce_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ce"
    shutil.copytree(ce_dir, folder, ignore=shutil.ignore_patterns("onnx"))
    data = fake_pawsx(tmp_path / "data")
    code, _, stderr = run("eval", str(folder), "--tasks", "pawsx", "--data-dir", str(data), "-o",
                          str(tmp_path / "out"), "--no-plots")  # fmt: skip
    assert code == 0, stderr
    assert json.loads((tmp_path / "out" / "pawsx.json").read_text())["model"]["backend"] == "torch"
    assert "no checked ONNX export" in stderr and not (folder / "onnx").exists()  # nothing written behind our back


def test_the_benchmark_script_runs_on_a_tiny_model(ce_dir: Path, tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    script = load_benchmark_script("bench_cross_encoder_onnx")
    argv = ["--model", str(ce_dir), "--data-dir", str(data), "--limit", "4", "--languages", "en,de",
            "--output-dir", str(tmp_path / "results"), "--name", "smoke"]  # fmt: skip
    assert script.main(argv) == 0
    document = json.loads((tmp_path / "results" / "smoke.json").read_text())
    rows = {row["backend"]: row for row in document["rows"]}
    assert list(rows) == ["torch", "onnx", "onnx-int8"]
    assert all(row["pairs"] == 16 and row["pairs_per_second"] > 0 for row in rows.values())
    assert rows["onnx"]["agreement"]["max_abs_score_difference"] <= SCORE_TOLERANCE
    assert set(rows["torch"]["accuracy"]) == {"en", "de"} and document["export"]["written"] == []
    assert "model" in document["machine"]["cpu"] and "avx2" in document["machine"]["cpu"]["flags"]
    table = (tmp_path / "results" / "smoke.md").read_text()
    assert table.count("| onnx") == 2 and document["machine"]["cpu"]["model"] in table
    assert script.main([*argv[:2], "--data-dir", str(tmp_path / "nowhere")]) == 2
