"""Distilling teacher pair scores: the scores file, the per-step targets, the loss, the trainer wiring."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from paraxl.data.records import TextUnit
from paraxl.errors import InputError
from paraxl.losses.additive_margin import AdditiveMarginConfig
from paraxl.losses.distillation import cosent_loss, distillation_loss
from paraxl.losses.hard_negatives import HardNegativeConfig
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.training.config import DistillConfig
from paraxl.training.distillation import TeacherScores
from paraxl.training.layout import pair_layout
from paraxl.training.objective import step_loss
from paraxl.training.trainer import train

from .training_helpers import tiny_config, write_pairs


def write_scores(path: Path, rows: list[tuple[str, str, float]], header: str = "sentence1\tsentence2\tscore") -> Path:
    path.write_text(header + "\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in rows), encoding="utf-8")
    return path


def units(count: int = 6) -> list[TextUnit]:
    """Units of distinct groups with two texts; even ones have a label-0 partner."""
    return [TextUnit(i, (f"a {i}", f"b {i}"), ("", ""), (f"not {i}",) if i % 2 == 0 else ()) for i in range(count)]


# ---------------------------------------------------------------- the scores file


def test_scores_are_read_and_looked_up_in_either_order(tmp_path: Path) -> None:
    path = write_scores(tmp_path / "t.tsv", [("a 0", "b 0", 0.9), (" a 1 ", "not 1", -0.25), ("a 0", "b 0", 0.9)])
    teacher = TeacherScores.read(path)
    assert len(teacher) == 2  # a repeated identical row is one pair
    assert teacher.scores[("b 0", "a 0")] == 0.9 and teacher.scores[("a 1", "not 1")] == -0.25  # stripped


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        ("sentence1\tsentence2\n", "header", 1),
        ("s1\ts2\tscore\na\tb\t1\n", "header", 1),
        ("sentence1\tsentence2\tscore\na\tb\n", "expected 3 tab-separated columns, found 2", 2),
        ("sentence1\tsentence2\tscore\na\tb\t0.5\nc\td\thigh\n", "score 'high' is not a number", 3),
        ("sentence1\tsentence2\tscore\na\tb\t1.5\n", "outside [-1, 1]", 2),
        ("sentence1\tsentence2\tscore\na\tb\tnan\n", "outside [-1, 1]", 2),
        ("sentence1\tsentence2\tscore\na\t \t0.5\n", "empty sentence", 2),
        ("sentence1\tsentence2\tscore\na\tb\t0.5\nb\ta\t0.6\n", "scored twice, 0.5 and 0.6", 3),
    ],
)
def test_bad_scores_files_name_file_line_and_problem(tmp_path: Path, content: str, message: str, line: int) -> None:
    path = tmp_path / "t.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")) as caught:
        TeacherScores.read(path)
    assert caught.value.path == str(path) and caught.value.line == line


def test_missing_empty_and_binary_scores_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        TeacherScores.read(tmp_path / "absent.tsv")
    with pytest.raises(InputError, match="no scored pairs"):
        TeacherScores.read(write_scores(tmp_path / "empty.tsv", []))
    (tmp_path / "bin.tsv").write_bytes(b"sentence1\tsentence2\tscore\n\xff\xfe\t\x80\t0.1\n")
    with pytest.raises(InputError, match="not UTF-8"):
        TeacherScores.read(tmp_path / "bin.tsv")


# ---------------------------------------------------------------- targets and loss


def test_targets_follow_the_layout_with_nan_where_unscored() -> None:
    groups = units()
    layout = pair_layout([groups[:3], groups[3:]], np.random.default_rng(0), negatives=2)
    scores = {("a 0", "b 0"): 0.8, ("b 0", "a 0"): 0.8, ("a 2", "not 2"): 0.1, ("not 2", "a 2"): 0.1}
    scores |= {("b 2", "not 2"): 0.2, ("not 2", "b 2"): 0.2, ("a 3", "b 3"): 0.7, ("b 3", "a 3"): 0.7}
    targets = TeacherScores(scores, Path("t.tsv")).targets(layout)
    assert targets.shape == (6, 3)
    # the oracle: a plain loop over anchors and their candidates (positive, then explicit negatives)
    for row in range(6):
        anchor = layout.texts[int(layout.anchors[row])]
        candidates = [int(layout.positives[row]), *layout.negatives[row].tolist()]
        for column, index in enumerate(candidates):
            expected = scores.get((anchor, layout.texts[index]), math.nan) if index >= 0 else math.nan
            value = float(targets[row, column])
            assert value == pytest.approx(expected) if not math.isnan(expected) else math.isnan(value)
    assert int((~torch.isnan(targets)).sum()) == 3  # groups 0, 2 (pair and label-0) and 3


def test_distillation_loss_is_the_mean_squared_cosine_error_over_scored_pairs() -> None:
    generator = torch.Generator().manual_seed(0)
    groups = units()
    layout = pair_layout([groups], np.random.default_rng(1), negatives=1)
    reps = torch.randn(len(layout.texts), 8, generator=generator, requires_grad=True)
    targets = torch.full((6, 2), math.nan)
    targets[0, 0], targets[2, 1], targets[5, 0] = 0.9, -0.2, 0.1
    loss = distillation_loss(reps, layout, targets)

    # the oracle: numpy cosines, one scored pair at a time
    vectors = reps.detach().numpy()
    errors = []
    for row, column in ((0, 0), (2, 1), (5, 0)):
        other = int(layout.positives[row]) if column == 0 else int(layout.negatives[row, 0])
        a, b = vectors[int(layout.anchors[row])], vectors[other]
        cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
        errors.append((cosine - float(targets[row, column])) ** 2)
    assert float(loss.detach()) == pytest.approx(np.mean(errors), rel=1e-5)
    loss.backward()
    assert reps.grad is not None and reps.grad.abs().sum() > 0

    nothing = distillation_loss(reps, layout, torch.full((6, 2), math.nan))
    assert float(nothing.detach()) == 0.0 and nothing.requires_grad


def test_step_loss_adds_the_weighted_distillation_term() -> None:
    groups = units()
    layout = pair_layout([groups], np.random.default_rng(2), negatives=1)
    reps = torch.randn(len(layout.texts), 8, generator=torch.Generator().manual_seed(3))
    targets = torch.full((6, 2), math.nan)
    targets[:, 0] = 0.5
    loss, mining = AdditiveMarginConfig(), HardNegativeConfig()
    plain = step_loss(reps, layout, loss, mining)
    distilled = step_loss(reps, layout, loss, mining, teacher=(targets, DistillConfig(scores="t.tsv", weight=2.5)))
    assert float(distilled) == pytest.approx(float(plain) + 2.5 * float(distillation_loss(reps, layout, targets)))
    targets[::2, 0] = 0.9  # cosent needs scored pairs in some order
    ranked = step_loss(
        reps, layout, loss, mining, teacher=(targets, DistillConfig(scores="t.tsv", weight=2.5, loss="cosent", scale=7))
    )
    cosent = distillation_loss(reps, layout, targets, kind="cosent", scale=7)
    assert float(cosent) > 0 and float(ranked) == pytest.approx(float(plain) + 2.5 * float(cosent))


def test_cosent_loss_matches_a_naive_loop_and_sentence_transformers() -> None:
    generator = torch.Generator().manual_seed(4)
    cosines = torch.rand(9, generator=generator) * 2 - 1
    scores = torch.tensor([0.1, 0.8, 0.8, 0.3, 0.05, 0.9, 0.3, 0.5, 0.7])  # with ties, which are not ordered
    loss = cosent_loss(cosines, scores, scale=20.0)

    # oracle 1: the formula, one ordered pair at a time
    terms = [1.0] + [
        math.exp(20.0 * (float(cosines[i]) - float(cosines[j])))
        for i in range(9)
        for j in range(9)
        if scores[i] < scores[j]
    ]
    assert float(loss) == pytest.approx(math.log(sum(terms)), rel=1e-5)

    # oracle 2: sentence-transformers' CoSENTLoss on embeddings whose pair cosines are ours
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss

    angles = torch.arccos(cosines)
    first = torch.stack([torch.ones(9), torch.zeros(9)], dim=1)
    second = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    reference = CoSENTLoss(model=None, scale=20.0).compute_loss_from_embeddings([first, second], scores)  # type: ignore[arg-type]
    assert float(loss) == pytest.approx(float(reference), rel=1e-5)


def test_cosent_distillation_ignores_the_teachers_scale_and_unscored_pairs() -> None:
    groups = units()
    layout = pair_layout([groups], np.random.default_rng(5), negatives=1)
    reps = torch.randn(len(layout.texts), 8, generator=torch.Generator().manual_seed(6), requires_grad=True)
    targets = torch.full((6, 2), math.nan)
    targets[0, 0], targets[2, 1], targets[4, 0] = 0.9, 0.1, 0.6
    loss = distillation_loss(reps, layout, targets, kind="cosent", scale=10.0)
    squeezed = distillation_loss(reps, layout, 0.2 + 0.1 * targets, kind="cosent", scale=10.0)  # same order
    assert float(loss.detach()) == pytest.approx(float(squeezed.detach()))
    cosine = torch.nn.functional.cosine_similarity
    pairs = [(0, int(layout.positives[0])), (2, int(layout.negatives[2, 0])), (4, int(layout.positives[4]))]
    by_pair = torch.stack([cosine(reps[int(layout.anchors[r])], reps[o], dim=0) for r, o in pairs])
    expected = cosent_loss(by_pair.detach(), torch.tensor([0.9, 0.1, 0.6]), 10.0)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)
    loss.backward()
    assert reps.grad is not None and reps.grad.abs().sum() > 0
    tied = targets.clone()
    tied[~torch.isnan(tied)] = 0.5  # scored pairs, but none in order: nothing to enforce
    assert float(distillation_loss(reps, layout, tied, kind="cosent").detach()) == 0.0


# ---------------------------------------------------------------- config and trainer


def test_distill_needs_a_pair_loss(tmp_path: Path) -> None:
    data = {"kind": "pairs", "paths": ["x.tsv"]}
    with pytest.raises(ValidationError, match="needs a pair loss"):
        tiny_config(tmp_path, tmp_path / "run", data, loss={"kind": "multi_positive"}, distill={"scores": "t.tsv"})
    with pytest.raises(ValidationError, match="greater than 0"):
        tiny_config(tmp_path, tmp_path / "run", data, distill={"scores": "t.tsv", "weight": 0})
    with pytest.raises(ValidationError, match="'mse' or 'cosent'"):
        tiny_config(tmp_path, tmp_path / "run", data, distill={"scores": "t.tsv", "loss": "huber"})
    with pytest.raises(ValidationError, match="greater than 0"):
        tiny_config(tmp_path, tmp_path / "run", data, distill={"scores": "t.tsv", "loss": "cosent", "scale": 0})


def scored_cosines(model_dir: Path, pairs: list[tuple[str, str]]) -> np.ndarray:
    """(len(pairs),) the model's cosine of each pair."""
    model = BiEncoder.load(model_dir)
    first, second = (np.asarray(model.encode(texts)) for texts in ([a for a, _ in pairs], [b for _, b in pairs]))
    first /= np.linalg.norm(first, axis=1, keepdims=True)
    second /= np.linalg.norm(second, axis=1, keepdims=True)
    return np.sum(first * second, axis=1)


def mean_scored_cosine(model_dir: Path, pairs: list[tuple[str, str]]) -> float:
    return float(np.mean(scored_cosines(model_dir, pairs)))


def test_training_pulls_the_cosines_towards_the_teacher(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A teacher that calls every paraphrase pair unrelated (score 0): with a heavy distillation
    weight the trained cosines of those pairs fall well below where the contrastive loss alone
    leaves them (the tiny model starts with every cosine near 1)."""
    pairs_file = write_pairs(tmp_path / "pairs.tsv")
    rows = [line.split("\t") for line in pairs_file.read_text().splitlines()[1:]]
    paraphrases = [(row[1], row[2]) for row in rows if row[3] == "1"]
    scores = write_scores(tmp_path / "teacher.tsv", [(a, b, 0.0) for a, b in paraphrases])
    data = {"kind": "pairs", "paths": [str(pairs_file)]}
    common = {"max_steps": 12, "loss": {"explicit_negatives": 0}}
    common |= {"optim": {"lr": 5e-3, "warmup_ratio": 0.0, "schedule": "constant", "max_grad_norm": None}}
    plain = tiny_config(tiny_model_dir, tmp_path / "plain", data, **common)
    distilled = tiny_config(
        tiny_model_dir, tmp_path / "distilled", data, **common, distill={"scores": str(scores), "weight": 50.0}
    )
    train(plain, show_progress=False)
    train(distilled, show_progress=False)
    before = mean_scored_cosine(tiny_model_dir, paraphrases)
    after_plain = mean_scored_cosine(tmp_path / "plain" / "final", paraphrases)
    after_distilled = mean_scored_cosine(tmp_path / "distilled" / "final", paraphrases)
    # measured: 0.999 before, 0.980 contrastive alone, 0.912 with the teacher
    assert after_distilled < before - 0.05 and after_distilled < after_plain - 0.03
    assert json.loads((tmp_path / "distilled" / "config.json").read_text())["distill"]["weight"] == 50.0


def test_cosent_distillation_trains_the_teachers_order_across_anchors(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A teacher that ranks the first half of the paraphrase pairs above the second half: with
    CoSENT distillation most (high, low) pairs of pairs end in the teacher's order, which the
    contrastive loss alone (it only orders each anchor's own candidates) does not give."""
    pairs_file = write_pairs(tmp_path / "pairs.tsv")
    rows = [line.split("\t") for line in pairs_file.read_text().splitlines()[1:]]
    paraphrases = [(row[1], row[2]) for row in rows if row[3] == "1"]
    high, low = paraphrases[: len(paraphrases) // 2], paraphrases[len(paraphrases) // 2 :]
    scores = write_scores(tmp_path / "teacher.tsv", [(a, b, 0.9) for a, b in high] + [(a, b, 0.1) for a, b in low])
    data = {"kind": "pairs", "paths": [str(pairs_file)]}
    common = {"max_steps": 12, "loss": {"explicit_negatives": 0}}
    common |= {"optim": {"lr": 5e-3, "warmup_ratio": 0.0, "schedule": "constant", "max_grad_norm": None}}
    plain = tiny_config(tiny_model_dir, tmp_path / "plain", data, **common)
    distill = {"scores": str(scores), "loss": "cosent", "weight": 10.0}
    ranked = tiny_config(tiny_model_dir, tmp_path / "ranked", data, **common, distill=distill)
    train(plain, show_progress=False)
    train(ranked, show_progress=False)

    def in_teachers_order(model_dir: Path) -> float:
        """The fraction of (high pair, low pair) with the high pair's cosine above the low one's."""
        cosines = scored_cosines(model_dir, high + low)
        return float(np.mean(cosines[: len(high), None] > cosines[None, len(high) :]))

    # measured: 0.31 before training, 0.33 contrastive alone, 0.74 with the teacher
    assert in_teachers_order(tmp_path / "ranked" / "final") > in_teachers_order(tmp_path / "plain" / "final") + 0.2
    assert json.loads((tmp_path / "ranked" / "config.json").read_text())["distill"]["loss"] == "cosent"


def test_sentence_transformers_baseline_refuses_distill(tmp_path: Path) -> None:
    from paraxl.experiments.st_baseline import train_st_mnrl

    data = {"kind": "pairs", "paths": ["x.tsv"]}
    config = tiny_config(tmp_path, tmp_path / "run", data, loss={"kind": "info_nce"}, distill={"scores": "t.tsv"})
    with pytest.raises(InputError, match="distill"):
        train_st_mnrl(config, None, tmp_path / "out")
