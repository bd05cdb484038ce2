"""Cross-encoders in the pair commands, and ``paraxl cascade fit/fuse`` + ``paraxl pi --cascade``,
end to end on the tiny bi-encoder and a tiny cross-encoder built from it (seeded head)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.decision.cascade import cascade_rule
from paraxl.decision.two_model_file import ModelIdentity, TwoModelRule, load_rule, save_rule
from paraxl.inference.cross_encoder_export import export_cross_encoder
from paraxl.inference.cross_encoder_onnx import OnnxCrossEncoderScorer
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.modeling.cross_encoder import is_cross_encoder, load_cross_encoder, open_cross_encoder_scorer

from .tiny import save_tiny

runner = CliRunner()
WORDS = ["the", "cat", "dog", "sat", "on", "mat", "ran", "le", "chat", "der", "hund"]


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def pair_rows(n: int, seed: int) -> list[tuple[str, str, str, int]]:
    """(id, sentence1, sentence2, label): a sentence and itself (plus a stop) is 1, two random ones 0."""
    rng = np.random.default_rng(seed)

    def sentence() -> str:
        return " ".join(rng.choice(WORDS, int(rng.integers(3, 7))))

    rows = []
    for i in range(n):
        first = sentence()
        second, label = (first + " .", 1) if i % 2 == 0 else (sentence(), 0)
        rows.append((f"p{i}", first, second, label))
    return rows


def write_pairs(path: Path, rows: list[tuple[str, str, str, int]], label: str | None = None) -> Path:
    """A PAWS-X-layout TSV; ``label`` replaces every label (a poisoned file: not 0/1)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["id\tsentence1\tsentence2\tlabel"]
    lines += [f"{key}\t{a}\t{b}\t{label if label is not None else gold}" for key, a, b, gold in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cross_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny cross-encoder: the tiny backbone with a seeded one-output head, saved by sentence-transformers."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("cross") / "ce"
    load_cross_encoder(tiny_model_dir, 64).save(str(folder))
    return folder


@pytest.fixture(scope="module")
def exported_ce(cross_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny cross-encoder with its fp32 and int8 ONNX exports (the same weights fingerprint)."""
    folder = tmp_path_factory.mktemp("ce-export") / "ce"
    shutil.copytree(cross_dir, folder)
    export_cross_encoder(folder)
    return folder


@pytest.fixture()
def bi_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "bi"
    shutil.copytree(tiny_model_dir, folder)
    return folder


@pytest.fixture()
def pawsx_dir(tmp_path: Path) -> Path:
    """Resplit validation for en and de; the test files are poisoned (labels 'x'): reading them would fail."""
    root = tmp_path / "data"
    for index, language in enumerate(("en", "de")):
        folder = root / "pawsx" / "resplit" / language
        write_pairs(folder / "validation.tsv", pair_rows(30, index))
        write_pairs(folder / "test.tsv", pair_rows(10, 10 + index), label="x")
    return root


def test_cross_encoder_folders_are_recognised(tiny_model_dir: Path, cross_dir: Path, tmp_path: Path) -> None:
    assert is_cross_encoder(cross_dir)
    assert not is_cross_encoder(tiny_model_dir)
    plain = tmp_path / "plain"  # a Hugging Face classifier folder without sentence-transformers files
    plain.mkdir()
    config = json.loads((cross_dir / "config.json").read_text())
    (plain / "config.json").write_text(json.dumps(config))
    assert is_cross_encoder(plain)


def test_sentence_transformers_gives_the_same_scores(cross_dir: Path) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    pairs = [(a, b) for _, a, b, _ in pair_rows(12, 3)]
    reference = CrossEncoder(str(cross_dir)).predict(pairs, convert_to_numpy=True)
    ours = open_cross_encoder_scorer(cross_dir).score(pairs)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)


def test_pi_scores_with_a_cross_encoder(cross_dir: Path, tmp_path: Path) -> None:
    rows = pair_rows(8, 4)
    pairs_file = write_pairs(tmp_path / "pairs.tsv", rows)
    out = tmp_path / "out.tsv"
    code, _, stderr = run("pi", str(cross_dir), "--pairs", str(pairs_file), "--threshold", "0.5", "-o", str(out))
    assert code == 0, stderr
    with out.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle, delimiter="\t"))
    expected = open_cross_encoder_scorer(cross_dir).score([(a, b) for _, a, b, _ in rows])
    np.testing.assert_allclose([float(row["score"]) for row in written], expected, atol=1e-6)
    assert [row["label"] for row in written] == ["1" if s >= 0.5 else "0" for s in expected]


def test_cascade_fit_then_pi(bi_dir: Path, cross_dir: Path, pawsx_dir: Path, tmp_path: Path) -> None:
    rule_file = tmp_path / "cascade.json"
    code, stdout, stderr = run(
        "cascade", "fit", str(bi_dir), str(cross_dir), "--data-dir", str(pawsx_dir), "--languages", "en,de",
        "--budget", "0.5", "-o", str(rule_file),
    )  # fmt: skip
    assert code == 0, stderr
    assert "cascade" in stdout and rule_file.is_file()
    stored = load_rule(rule_file)
    assert stored.kind == "cascade" and stored.target == {"budget": 0.5}
    assert stored.bi.fingerprint == model_folder_fingerprint(bi_dir)
    assert stored.cross.fingerprint == model_folder_fingerprint(cross_dir)
    assert stored.validation["n_pairs"] == 60 and stored.validation["budget"] <= 0.5
    assert [record["path"] for record in stored.data] == [
        "pawsx/resplit/de/validation.tsv", "pawsx/resplit/en/validation.tsv",
    ]  # fmt: skip
    rule = cascade_rule(stored)

    rows = pair_rows(20, 7)
    out = tmp_path / "decisions.tsv"
    code, _, stderr = run("pi", str(bi_dir), "--cascade", str(rule_file), "--pairs",
                          str(write_pairs(tmp_path / "p.tsv", rows)), "-o", str(out))  # fmt: skip
    assert code == 0, stderr
    with out.open(encoding="utf-8") as handle:
        written = list(csv.DictReader(handle, delimiter="\t"))
    assert {row["decided_by"] for row in written} <= {"bi", "cross"}
    assert [row["input_label"] for row in written] == [str(label) for *_, label in rows]
    code, stdout, stderr = run("pi", str(bi_dir), "--cascade", str(rule_file), "the cat", "le chat")
    assert code == 0, stderr
    assert "nan (a cascade gives none)" in stdout and ("decided by   bi" in stdout or "decided by   cross" in stdout)
    for row in written:  # the deciding model's score at its own threshold gives the label
        cut = rule.cross_threshold if row["decided_by"] == "cross" else rule.bi_threshold
        assert row["label"] == ("1" if float(row["score"]) >= cut else "0") or abs(float(row["score"]) - cut) < 1e-6


def test_pi_refuses_a_rule_fitted_on_other_models(
    bi_dir: Path, cross_dir: Path, pawsx_dir: Path, tmp_path: Path
) -> None:
    rule_file = tmp_path / "fusion.json"
    code, _, stderr = run(
        "cascade", "fuse", str(bi_dir), str(cross_dir), "--data-dir", str(pawsx_dir), "--languages", "en,de",
        "-o", str(rule_file),
    )  # fmt: skip
    assert code == 0, stderr
    other = save_tiny(tmp_path / "other", seed=1)
    code, _, stderr = run("pi", str(other), "--cascade", str(rule_file), "the cat", "le chat")
    assert code == 2
    assert "fitted with the bi-encoder" in stderr and "other weights" in stderr
    code, stdout, stderr = run("pi", str(bi_dir), "--cascade", str(rule_file), "the cat", "le chat")
    assert code == 0, stderr
    assert "decided by   fusion" in stdout


def test_cascade_fit_needs_one_target_and_a_cross_encoder(bi_dir: Path, pawsx_dir: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "r.json")
    code, _, stderr = run("cascade", "fit", str(bi_dir), str(bi_dir), "--data-dir", str(pawsx_dir), "-o", out)
    assert code == 2 and "--budget" in stderr
    code, _, stderr = run(
        "cascade", "fit", str(bi_dir), str(bi_dir), "--data-dir", str(pawsx_dir), "--languages", "en",
        "--budget", "0.3", "-o", out,
    )  # fmt: skip
    assert code == 2 and "is not a cross-encoder" in stderr


def test_the_cascade_benchmark_runs_on_tiny_models(bi_dir: Path, cross_dir: Path, tmp_path: Path) -> None:
    """benchmarks/bench_cascade.py end to end (2 languages, 12 pairs each): every row, the en -> X cell,
    the timings, and the three files."""
    from .scripts import load_benchmark_script

    root = tmp_path / "data"
    for index, language in enumerate(("en", "de")):
        for split in ("validation", "test"):
            write_pairs(root / "pawsx" / "resplit" / language / f"{split}.tsv", pair_rows(12, 20 + index))
    script = load_benchmark_script("bench_cascade")
    script.main([
        "--bi", str(bi_dir), "--cross", str(cross_dir), "--data-dir", str(root), "--languages", "en,de",
        "--max-pairs", "10", "--timing-pairs", "12", "--name", "smoke", "--output-dir", str(tmp_path),
    ])  # fmt: skip
    document = json.loads((tmp_path / "smoke.json").read_text())
    assert "task" not in document  # tests/test_eval_scores.py reads every results JSON with one as an eval result
    assert document["models"]["cross"]["backend"] == "torch"
    rows = document["monolingual"]["rows"]
    budgets = (0.1, 0.2, 0.3, 0.4, 0.5, 1.0)
    assert set(rows) == {"bi", "cross", "fusion", "cascade@target"} | {f"cascade@{b:g}" for b in budgets}
    assert document["monolingual"]["n_fit"] == 20 and document["monolingual"]["n_test"] == 20
    assert list(document["en_to_xx"]["rows"]["bi"]["accuracy"]) == ["en-de"]
    assert all(rows[name]["test_share_sent"] <= 1.0 for name in rows)
    assert set(document["timings"]) >= {"bi", "cross", "fusion", "cascade@0.3", "cascade@target"}
    for section in ("monolingual", "en_to_xx"):  # the target row: CE validation accuracy - 0.5 points, then the bar
        block = document[section]
        validation, check = block["rows"]["cascade@target"]["validation"], block["target"]
        assert validation["target_accuracy"] == pytest.approx(validation["cross_accuracy"] - 0.005)
        assert validation["accuracy"] >= validation["target_accuracy"] - 1e-12
        target, cross = block["rows"]["cascade@target"], block["rows"]["cross"]
        meets = target["mean"] >= cross["mean"] - 0.005 - 1e-12 and target["test_share_sent"] <= 0.4
        assert check["meets_bar"] is meets and check["test_share_sent"] == target["test_share_sent"]
        ceilings = block["ceilings"]  # on the test pairs: no rule at the same thresholds beats them
        assert list(ceilings) == [f"{b:g}" for b in budgets]  # the bar's 0.4 among them
        bounded = 0
        for budget in budgets:
            bound, row = ceilings[f"{budget:g}"], block["rows"][f"cascade@{budget:g}"]
            assert bound["band"] <= bound["router"] + 1e-12 and bound["band_share"] <= budget + 1e-12
            if row["test_share_sent"] <= budget:  # a rule bounded by the ceiling: it sends no more than it
                assert row["mean"] <= bound["band"] + 1e-12
                bounded += 1
        assert bounded >= 1  # the full band (budget 1) at least
        assert ceilings["1"]["band"] >= max(block["rows"]["bi"]["mean"], block["rows"]["cross"]["mean"]) - 1e-12
    markdown = (tmp_path / "smoke.md").read_text()
    assert markdown.count("| cascade@") == 14 and markdown.count("cascade@target: fitted for validation") == 2
    assert markdown.count("Ceilings on the test pairs themselves") == 2 and "At 40 % sent, the best band" in markdown
    cpu = document["machine"]["cpu"]  # the shared report writer's CPU record (evaluation/bench_report.py)
    assert cpu["model"] in markdown and set(cpu["flags"]) == set(script.CPU_FLAGS) and cpu["available_cpus"] >= 1
    assert (tmp_path / "smoke.png").stat().st_size > 1000


def test_the_cascade_benchmark_scores_the_cross_encoder_on_int8(
    bi_dir: Path, exported_ce: Path, tmp_path: Path
) -> None:
    """--cross-backend onnx-int8: the cross-encoder row is the int8 scorer's (oracle: its pooled validation
    threshold, by best_threshold, applied on test), and the JSON names the backend and the export's fingerprint."""
    from paraxl.decision.threshold import best_threshold

    from .scripts import load_benchmark_script

    root = tmp_path / "data"
    written = {}
    for index, language in enumerate(("en", "de")):
        for split in ("validation", "test"):
            written[language, split] = pair_rows(12, 30 + index + (2 if split == "test" else 0))
            write_pairs(root / "pawsx" / "resplit" / language / f"{split}.tsv", written[language, split])
    load_benchmark_script("bench_cascade").main([
        "--bi", str(bi_dir), "--cross", str(exported_ce), "--data-dir", str(root), "--languages", "en,de",
        "--timing-pairs", "8", "--no-cross-lingual", "--cross-backend", "onnx-int8", "--name", "int8",
        "--output-dir", str(tmp_path),
    ])  # fmt: skip
    document = json.loads((tmp_path / "int8.json").read_text())
    int8 = OnnxCrossEncoderScorer.load(exported_ce, "onnx-int8")
    assert document["models"]["cross"]["backend"] == "onnx-int8"
    assert document["models"]["cross"]["export_fingerprint"] == int8.fingerprint
    assert document["models"]["cross"]["fingerprint"] == model_folder_fingerprint(exported_ce) != int8.fingerprint
    # scored as the protocol's by_split grouping calls the scorer (int8 rounds with its batch neighbours):
    # all validation pairs in one call, then all test pairs
    scored = {}
    for split in ("validation", "test"):
        rows = [row for language in ("en", "de") for row in written[language, split]]
        scored[split] = (int8.score([(a, b) for _, a, b, _ in rows]), np.array([y for *_, y in rows], dtype=bool))
    cut, _ = best_threshold(*scored["validation"])
    test_scores, test_labels = scored["test"]
    for index, language in enumerate(("en", "de")):
        part = slice(12 * index, 12 * (index + 1))
        expected = float(np.mean((test_scores[part] >= cut) == test_labels[part]))
        assert document["monolingual"]["rows"]["cross"]["accuracy"][language] == pytest.approx(expected)
    assert "cross-encoder on onnx-int8" in (tmp_path / "int8.md").read_text()


def test_the_cascade_benchmark_runs_the_bi_encoder_on_its_int8_export(
    bi_dir: Path, cross_dir: Path, tmp_path: Path
) -> None:
    """--bi-backend onnx-int8: the bi-encoder's rows come from its int8 export (the JSON and the table say
    so), and a folder without an export is refused before anything is scored."""
    from paraxl.errors import ParaxlError
    from paraxl.inference.onnx_export import export_onnx

    from .scripts import load_benchmark_script

    root = tmp_path / "data"
    for index, language in enumerate(("en", "de")):
        for split in ("validation", "test"):
            write_pairs(root / "pawsx" / "resplit" / language / f"{split}.tsv", pair_rows(12, 40 + index))
    script = load_benchmark_script("bench_cascade")
    argv = ["--bi", str(bi_dir), "--cross", str(cross_dir), "--data-dir", str(root), "--languages", "en,de",
            "--timing-pairs", "8", "--no-cross-lingual", "--bi-backend", "onnx-int8", "--name", "bi-int8",
            "--output-dir", str(tmp_path)]  # fmt: skip
    with pytest.raises(ParaxlError):  # no export yet
        script.main(argv)
    assert not (tmp_path / "bi-int8.json").exists()
    export_onnx(bi_dir)
    script.main(argv)
    document = json.loads((tmp_path / "bi-int8.json").read_text())
    assert document["models"]["bi"]["backend"] == "onnx-int8"
    assert document["models"]["bi"]["fingerprint"] == model_folder_fingerprint(bi_dir)
    assert set(document["monolingual"]["rows"]["bi"]["accuracy"]) == {"en", "de"}
    assert "bi-encoder on onnx-int8, cross-encoder on torch" in (tmp_path / "bi-int8.md").read_text()


def test_eval_runs_pawsx_on_a_cross_encoder_and_refuses_embedding_tasks(cross_dir: Path, tmp_path: Path) -> None:
    from paraxl.data.readers import PAWSX_LANGUAGES
    from paraxl.decision.threshold import best_threshold

    root = tmp_path / "data"
    for index, language in enumerate(PAWSX_LANGUAGES):
        for split, seed in (("validation", index), ("test", 50 + index)):
            write_pairs(root / "pawsx" / "resplit" / language / f"{split}.tsv", pair_rows(8, seed))
    out = tmp_path / "eval"
    code, _, stderr = run("eval", str(cross_dir), "--tasks", "tatoeba,pawsx", "--data-dir", str(root),
                          "-o", str(out), "--no-plots")  # fmt: skip
    assert code == 2
    assert stderr.count("\n") == 1 and "is a cross-encoder" in stderr and "tatoeba" in stderr
    code, _, stderr = run("eval", str(cross_dir), "--tasks", "pawsx", "--data-dir", str(root),
                          "-o", str(out), "--no-plots")  # fmt: skip
    assert code == 0, stderr
    document = json.loads((out / "pawsx.json").read_text())
    scorer = open_cross_encoder_scorer(cross_dir)
    fit = [(a, b, y) for i in range(7) for _, a, b, y in pair_rows(8, i)]
    threshold, _ = best_threshold(scorer.score([(a, b) for a, b, _ in fit]), [y for *_, y in fit])
    assert document["scores"]["pooled_threshold"] == pytest.approx(threshold, abs=1e-6)
    assert document["model"]["fingerprint"] == model_folder_fingerprint(cross_dir)
    assert set(document["scores"]["en_to_xx"]["accuracy"]) == set(PAWSX_LANGUAGES) - {"en"}
    assert (out / "summary.md").is_file()


def _full_band_rule(path: Path, bi: Path, cross: Path, cross_threshold: float, cross_backend: str | None) -> Path:
    """A cascade sending every pair to the cross-encoder, fitted (as recorded) on ``cross_backend`` scores."""
    stored = TwoModelRule(
        kind="cascade",
        bi=ModelIdentity(str(bi), str(bi), model_folder_fingerprint(bi), "", "torch"),
        cross=ModelIdentity(str(cross), str(cross), model_folder_fingerprint(cross), None, cross_backend),
        rule={"lo": -2.0, "hi": 2.0, "bi_threshold": 0.5, "cross_threshold": cross_threshold},
    )
    return save_rule(path, stored)


def _written(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_pi_cascade_runs_the_cross_encoder_on_its_int8_export_with_one_note(
    bi_dir: Path, exported_ce: Path, tmp_path: Path
) -> None:
    """The rule stores the weights fingerprint; the int8 export (its own fingerprint, the same weights) is
    accepted with exactly one note line, and its scores (oracle: the int8 scorer itself) decide; fp32 ONNX
    scores as torch does and says nothing; other weights stay refused on any backend."""
    rows = pair_rows(16, 8)
    pairs = [(a, b) for _, a, b, _ in rows]
    torch_scores = open_cross_encoder_scorer(exported_ce).score(pairs)
    int8 = OnnxCrossEncoderScorer.load(exported_ce, "onnx-int8")
    int8_scores = int8.score(pairs)
    assert int8.fingerprint != model_folder_fingerprint(exported_ce)
    assert np.abs(int8_scores - torch_scores).max() > 1e-6  # int8 is told apart from torch below
    cut = float(np.median(torch_scores))
    rule_file = _full_band_rule(tmp_path / "cascade.json", bi_dir, exported_ce, cut, "torch")
    pairs_file = write_pairs(tmp_path / "pairs.tsv", rows)
    expected = {"onnx-int8": int8_scores, "onnx": torch_scores, "torch": torch_scores}
    for backend, scores in expected.items():
        out = tmp_path / f"{backend}.tsv"
        code, _, stderr = run("pi", str(bi_dir), "--cascade", str(rule_file), "--cross-backend", backend,
                              "--pairs", str(pairs_file), "-o", str(out))  # fmt: skip
        assert code == 0, stderr
        notes = [line for line in stderr.splitlines() if line.startswith("note:")]
        if backend == "onnx-int8":
            assert len(notes) == 1 and "scores on onnx-int8 but the rule was fitted on its torch scores" in notes[0]
        else:
            assert notes == []
        written = _written(out)
        assert {row["decided_by"] for row in written} == {"cross"}
        np.testing.assert_allclose(
            [float(row["score"]) for row in written], scores, atol=2e-6 if backend == "onnx-int8" else 2e-5
        )
        assert [row["label"] for row in written] == ["1" if s >= cut else "0" for s in scores]
    other = _full_band_rule(tmp_path / "other.json", bi_dir, bi_dir, cut, "torch")  # fitted on other "CE" weights
    code, _, stderr = run("pi", str(bi_dir), "--cascade", str(other), "--cross-encoder", str(exported_ce),
                          "--cross-backend", "onnx-int8", "the cat", "le chat")  # fmt: skip
    assert code == 2 and "other weights" in stderr


def test_cascade_fit_on_int8_records_the_backend_and_bad_backends_are_refused(
    bi_dir: Path, exported_ce: Path, pawsx_dir: Path, tmp_path: Path
) -> None:
    """fit --cross-backend onnx-int8 fits on the int8 scores (oracle: best_threshold on them) and records it;
    pi then notes torch scores against it; an unknown backend or one without --cascade is one clear line."""
    from paraxl.decision.threshold import best_threshold

    rule_file = tmp_path / "int8.json"
    code, _, stderr = run(
        "cascade", "fit", str(bi_dir), str(exported_ce), "--data-dir", str(pawsx_dir), "--languages", "en,de",
        "--budget", "0.5", "--cross-backend", "onnx-int8", "-o", str(rule_file),
    )  # fmt: skip
    assert code == 0, stderr
    stored = load_rule(rule_file)
    assert (stored.bi.backend, stored.cross.backend) == ("torch", "onnx-int8")
    assert stored.cross.fingerprint == model_folder_fingerprint(exported_ce)
    validation = [row for index in range(2) for row in pair_rows(30, index)]
    scores = OnnxCrossEncoderScorer.load(exported_ce, "onnx-int8").score([(a, b) for _, a, b, _ in validation])
    threshold, accuracy = best_threshold(scores, [y for *_, y in validation])
    assert stored.validation["cross_accuracy"] == pytest.approx(accuracy)
    assert cascade_rule(stored).cross_threshold == pytest.approx(threshold)
    code, _, stderr = run("pi", str(bi_dir), "--cascade", str(rule_file), "the cat", "le chat")
    assert code == 0, stderr
    assert stderr.count("note:") == 1 and "fitted on its onnx-int8 scores" in stderr
    code, _, stderr = run("pi", str(bi_dir), "--cascade", str(rule_file), "--cross-backend", "int4", "a", "b")
    assert code == 2 and stderr.count("\n") == 1 and "unknown --cross-backend 'int4'" in stderr
    code, _, stderr = run("pi", str(bi_dir), "--cross-backend", "onnx", "a", "b")
    assert code == 2 and "--cross-backend goes with --cascade" in stderr
