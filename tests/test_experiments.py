"""Experiment tables (paraxl.experiments) on the tiny model and tiny fake PAWS-X data.

Tables load strictly; the sentence-transformers baseline sees the trainer's batches (oracle:
the trainer's own batch stream and layout) and, without dropout, ends at the trainer's
weights; the runner trains, evaluates, resumes and cleans up; the report aggregates over seeds.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from paraxl.data.readers import PAWSX_LANGUAGES
from paraxl.data.records import TextUnit, TrainingData
from paraxl.data.sampler import GroupBatchSampler
from paraxl.errors import InputError
from paraxl.evaluation.loaders.tatoeba import TATOEBA_XTREME36
from paraxl.evaluation.results import ResultDocument
from paraxl.evaluation.runner import parse_task_list
from paraxl.experiments import runner
from paraxl.experiments.records import summarize_task, tatoeba_groups
from paraxl.experiments.report import aggregate, markdown, write_report
from paraxl.experiments.st_baseline import baseline_rows, train_st_mnrl
from paraxl.experiments.tables import Table, load_table
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.training.checkpoint import TaskProgress
from paraxl.training.config import TrainConfig
from paraxl.training.layout import pair_layout
from paraxl.training.tasks import TrainingTask
from paraxl.training.trainer import train

from .eval_fixtures import write_pawsx
from .scripts import load_benchmark_script
from .training_helpers import tiny_config, write_pairs

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """The tiny model's ops are too small to share out: on a busy 2-core machine 2 threads run ~30x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


BASE_CONFIG = """\
model: {name: MODEL, max_seq_length: 32}
data: {kind: pawsx, split: train}
loss: {kind: info_nce, explicit_negatives: 1}
optim: {lr: 1.0e-3, warmup_ratio: 0.0}
batch_size: 8
max_steps: 50
checkpoint_every: 100
log_every: 1
device: cpu
seed: 1
output_dir: runs/unused
"""


def write_table(root: Path, table: str, model: str = "unused-model") -> Path:
    """``root/configs/base.yaml`` and ``root/experiments/table.yaml`` (base is relative to ``root``)."""
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "experiments").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "base.yaml").write_text(BASE_CONFIG.replace("MODEL", model), encoding="utf-8")
    path = root / "experiments" / "table.yaml"
    path.write_text(table, encoding="utf-8")
    return path


VALID_TABLE = """\
name: tiny
title: A tiny table
base: configs/base.yaml
overrides: [batch_size=4, max_steps=5, "optim.lr=2.0e-3"]
seeds: [42, 43]
eval: {tasks: pawsx, batch_size: 16}
variants:
  - {name: off-the-shelf, trainer: none}
  - {name: infonce, overrides: [loss.explicit_negatives=0]}
  - {name: am, overrides: [loss.kind=additive_margin, loss.margin=0.2, max_steps=7, seed=1, output_dir=elsewhere]}
  - {name: once, seeds: [7]}
"""


# ---------------------------------------------------------------- tables


@pytest.mark.parametrize("path", sorted((REPO / "experiments").glob("*.yaml")), ids=lambda path: path.name)
def test_shipped_tables_load_and_every_run_config_validates(path: Path) -> None:
    # a typo in an override or a task name would otherwise surface hours into a table's run
    table = load_table(path)
    assert parse_task_list(table.spec.eval.tasks)
    for variant in table.spec.variants:
        for seed in table.seeds(variant):
            config = table.config(variant, seed, Path("unused"))
            assert config.seed == seed


def variant_named(table: Table, name: str) -> Any:
    return next(variant for variant in table.spec.variants if variant.name == name)


def flat_config(config: TrainConfig) -> dict[str, Any]:
    """``{"mining.top_k": 1, ...}``: every leaf of a config, by dotted path."""
    flat: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk(config.model_dump(mode="json"), "")
    return flat


@pytest.mark.parametrize(
    ("ablation", "changed"),
    [
        ("mega-K4-reference", set()),  # the recipe itself, rerun beside the sweep
        ("mega-K2", {"batch_size", "mini_batches_per_step"}),
        ("mega-K8", {"batch_size", "mini_batches_per_step"}),
        ("mega-K4-top3", {"mining.top_k"}),
        ("mega-K4-no-ceiling", {"mining.relative_ceiling"}),
        ("mega-K4-ceiling-0.1", {"mining.relative_ceiling"}),
    ],
)
def test_mega_batch_ablations_change_one_thing_from_the_reference(ablation: str, changed: set[str]) -> None:
    # a sweep row that silently differs elsewhere (an inherited default) compares two things at once
    ablations, main = (
        load_table(REPO / "experiments/pawsx-ablations.yaml"),
        load_table(REPO / "experiments/pawsx-main.yaml"),
    )
    reference = flat_config(main.config(variant_named(main, "paraxl-am-megabatch"), 42, Path("x")))
    row = flat_config(ablations.config(variant_named(ablations, ablation), 42, Path("x")))
    assert {key for key in reference.keys() | row.keys() if reference.get(key) != row.get(key)} == changed
    if changed == {"batch_size", "mini_batches_per_step"}:  # the same 32 groups per step, split differently
        assert (
            row["batch_size"] * row["mini_batches_per_step"]
            == reference["batch_size"] * reference["mini_batches_per_step"]
        )


def test_table_config_layers_base_table_variant_seed(tmp_path: Path) -> None:
    table = load_table(write_table(tmp_path, VALID_TABLE))
    assert table.base_config == (tmp_path / "configs" / "base.yaml").resolve()
    variants = {variant.name: variant for variant in table.spec.variants}
    assert list(variants) == ["off-the-shelf", "infonce", "am", "once"]

    infonce = table.config(variants["infonce"], 43, tmp_path / "out-infonce")
    assert infonce.batch_size == 4  # table over base (8)
    assert infonce.max_steps == 5  # table over base (50)
    assert infonce.optim.lr == pytest.approx(2e-3)  # table over base
    assert infonce.loss.kind == "info_nce" and infonce.loss.explicit_negatives == 0  # variant over base
    assert infonce.seed == 43 and infonce.output_dir == str(tmp_path / "out-infonce")

    am = table.config(variants["am"], 42, tmp_path / "out-am")
    assert am.max_steps == 7  # variant over table (5)
    assert am.loss.kind == "additive_margin" and am.loss.margin == pytest.approx(0.2)
    assert am.loss.explicit_negatives == 1  # from the base: not named by the table or the variant
    assert am.batch_size == 4  # the table's, untouched by the variant
    assert am.seed == 42  # the run's seed beats the variant's `seed=1`
    assert am.output_dir == str(tmp_path / "out-am")  # and the run's folder its `output_dir=`

    assert table.seeds(variants["off-the-shelf"]) == [42]  # trainer: none runs once
    assert table.seeds(variants["infonce"]) == [42, 43]
    assert table.seeds(variants["once"]) == [7]  # a variant's own seeds win


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t + "colour: blue\n", "colour"),
        (lambda t: t.replace("trainer: none}", "trainer: none, lr: 3}"), r"variants\.0\.lr"),
        (lambda t: t.replace("trainer: none", "trainer: keras"), r"variants\.0\.trainer"),
        (lambda t: t.replace("name: once", "name: am"), "unique; repeated: am"),
        (lambda t: t.replace("configs/base.yaml", "configs/missing.yaml"), r"base config 'configs/missing\.yaml'"),
        (lambda t: t.replace("seeds: [42, 43]", "seeds: [42, 43"), "not valid YAML"),
        (lambda t: t.split("variants:")[0] + "variants: []\n", "variants: List should have at least 1 item"),
        (lambda t: "", "must be a mapping of keys .* this one is empty"),
        (lambda t: "- a\n- b\n", "must be a mapping of keys .* this one is a list"),
        (lambda t: t.replace("seeds: [7]}", "trainer: soup, soup_seeds: [1, 2]}"), "a soup needs soup_of"),
        (lambda t: t.replace("seeds: [7]}", "trainer: soup, soup_of: am, soup_seeds: [1, 1]}"), "2 or more distinct"),
        (lambda t: t.replace("seeds: [7]}", "trainer: soup, soup_of: nope, soup_seeds: [1, 2]}"), "'nope' is not a"),
        (
            lambda t: t.replace("seeds: [7]}", "trainer: soup, soup_of: off-the-shelf, soup_seeds: [1, 2]}"),
            "not a trained",
        ),
        (lambda t: t.replace("seeds: [7]}", "seeds: [7], soup_of: am}"), "belong to variants with trainer: soup"),
    ],
    ids=[
        "unknown-key",
        "unknown-variant-key",
        "unknown-trainer",
        "duplicate",
        "missing-base",
        "yaml",
        "no-variants",
        "empty",
        "list",
        "soup-without-source",
        "soup-one-seed",
        "soup-of-unknown",
        "soup-of-untrained",
        "soup-fields-elsewhere",
    ],
)
def test_bad_tables_name_the_problem_and_the_file(tmp_path: Path, edit: Any, message: str) -> None:
    path = write_table(tmp_path, edit(VALID_TABLE))
    with pytest.raises(InputError, match=message) as caught:
        load_table(path)
    assert caught.value.path == str(path) and str(path) in str(caught.value)
    assert "Value error" not in str(caught.value) and "\n" not in str(caught.value)  # one clean line


def test_missing_table_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such experiment table"):
        load_table(tmp_path / "nope.yaml")


# ---------------------------------------------------------------- baseline rows (oracle: the trainer)


def hand_groups(count: int = 10) -> list[TextUnit]:
    """Units of distinct groups; every third has no label-0 partner, one has two."""
    groups = []
    for i in range(count):
        negatives: tuple[str, ...] = () if i % 3 == 0 else (f"not {i}",)
        if i == 1:
            negatives = ("not 1", "never 1")
        groups.append(TextUnit(100 + i, (f"a {i}", f"b {i}", f"c {i}"), ("", "", ""), negatives))
    return groups


def trainer_task(config: TrainConfig, groups: list[TextUnit]) -> TrainingTask:
    """The trainer's one task of ``config`` over ``groups``, as training.tasks.load_tasks builds it."""
    sampler = GroupBatchSampler([g.group_id for g in groups], config.batch_size, seed=config.seed)
    return TrainingTask(0, config.only_task("test"), TrainingData(groups, 0, 0), sampler, None, None, ())


def rows_config(tmp_path: Path, **fields: Any) -> TrainConfig:
    data = {"kind": "pairs", "paths": [str(tmp_path / "unused.tsv")]}
    return tiny_config(tmp_path / "model", tmp_path / "out", data, **{"seed": 5, **fields})


@pytest.mark.parametrize("negatives", [0, 1])
def test_baseline_rows_are_the_trainers_batches(tmp_path: Path, negatives: int) -> None:
    groups = hand_groups()
    config = rows_config(tmp_path, loss={"kind": "info_nce", "explicit_negatives": negatives})
    sampler = GroupBatchSampler([g.group_id for g in groups], config.batch_size, seed=config.seed)
    per_epoch = sampler.batches_per_epoch()
    steps = 2 * per_epoch + 1  # into the third epoch
    rows = baseline_rows(config, groups, steps)
    assert len(rows.anchor) == len(rows.positive) == steps * config.batch_size

    # the oracle: the trainer's own batch stream and step layout
    task = trainer_task(config, groups)
    stream = task.batches(TaskProgress())
    epochs, filled = set(), 0
    for step in range(steps):
        epoch, index, batch = next(stream)
        epochs.add(epoch)
        layout = task.layout(config.seed, [(epoch, index, batch)])
        # and by hand, as the docstrings say: rng seeded by (seed, epoch, batch), pair_layout
        assert batch == sampler.epoch_batches(epoch)[index]
        by_hand = pair_layout([[groups[i] for i in batch]], np.random.default_rng([5, epoch, index]), negatives)
        assert by_hand.texts == layout.texts
        lo, hi = step * config.batch_size, (step + 1) * config.batch_size
        anchors = [layout.texts[i] for i in layout.anchors.tolist()]
        positives = [layout.texts[i] for i in layout.positives.tolist()]
        assert rows.anchor[lo:hi] == anchors, f"step {step}"
        assert rows.positive[lo:hi] == positives, f"step {step}"
        assert len({a.split()[1] for a in anchors}) == config.batch_size  # one text per group
        if negatives == 0:
            continue
        assert rows.negative is not None
        for row, chosen in enumerate(layout.negatives[:, 0].tolist()):
            if chosen >= 0:
                assert rows.negative[lo + row] == layout.texts[chosen]
                assert rows.negative[lo + row] in groups[batch[row]].negatives
            else:  # no label-0 partner: the next row's positive, within the batch
                assert groups[batch[row]].negatives == ()
                assert rows.negative[lo + row] == positives[(row + 1) % config.batch_size]
                filled += 1
    assert epochs == {0, 1, 2}
    if negatives == 0:
        assert rows.negative is None and rows.filled_negatives == 0
        assert set(rows.columns()) == {"anchor", "positive"}
    else:
        assert filled > 0 and rows.filled_negatives == filled
        assert rows.negative is not None and len(rows.negative) == len(rows.anchor)
        assert set(rows.columns()) == {"anchor", "positive", "negative"}


def test_baseline_rows_of_loaded_pairs_start_like_the_trainer(tmp_path: Path) -> None:
    """Same check on real reader output (every unit has its label-0 partner: nothing filled)."""
    from paraxl.training.data_loading import load_training_data

    data = {"kind": "pairs", "paths": [str(write_pairs(tmp_path / "pairs.tsv", groups=10))]}
    config = tiny_config(tmp_path / "model", tmp_path / "out", data, loss={"kind": "info_nce"})
    groups = load_training_data(config.data, None).units
    rows = baseline_rows(config, groups, 4)
    task = trainer_task(config, groups)
    stream = task.batches(TaskProgress())
    for step in range(4):
        layout = task.layout(config.seed, [next(stream)])
        lo = step * config.batch_size
        assert rows.anchor[lo : lo + 4] == [layout.texts[i] for i in layout.anchors.tolist()]
        assert rows.negative is not None
        assert rows.negative[lo : lo + 4] == [layout.texts[i] for i in layout.negatives[:, 0].tolist()]
    assert rows.filled_negatives == 0


def test_baseline_rows_refuse_what_sentence_transformers_cannot_train(tmp_path: Path) -> None:
    groups = hand_groups()
    with pytest.raises(InputError, match="at most one explicit negative"):
        baseline_rows(rows_config(tmp_path, loss={"explicit_negatives": 2}), groups, 2)
    with pytest.raises(InputError, match="one mini-batch per step"):
        baseline_rows(rows_config(tmp_path, mini_batches_per_step=2), groups, 2)
    # a multi-task config: refused as such, before its (unused) top-level loss and batch size are read
    task = {"name": "pairs", "data": {"kind": "pairs", "paths": [str(tmp_path / "unused.tsv")]}}
    multi = TrainConfig.model_validate({"tasks": [task, task | {"name": "again"}], "output_dir": "x", "max_steps": 2})
    for baseline in (partial(baseline_rows, multi, groups[:2], 2), partial(train_st_mnrl, multi, None, tmp_path)):
        with pytest.raises(InputError, match="the sentence-transformers baseline trains one task; this config has"):
            baseline()


# ---------------------------------------------------------------- trainer parity


def no_dropout_copy(tiny_model_dir: Path, folder: Path) -> Path:
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["hidden_dropout_prob"] = config["attention_probs_dropout_prob"] = 0.0
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_st_mnrl_ends_at_the_trainers_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Same batches, same loss, same optimiser: sentence-transformers' MNRL and paraxl's info_nce agree.

    7 steps of 4 groups cross the epoch boundary (6 batches per epoch); a warm-up step, weight
    decay (1.0, large enough to show; not on 1-D tensors) and gradient clipping (norms ~6,
    clipped at 1) are on. Measured (CPU, fp32, 1 thread): the two updates differ by 1.8e-6 of
    their norm, the largest element gap is 8e-5 of the largest update (float rounding; fused
    vs plain AdamW). Bugs it catches, measured as (norm gap, largest gap): seed 7 on paraxl's
    side (another batch order) 0.57, 1.5; temperature 0.1 instead of 0.05 0.025, 0.61; no
    weight decay on the sentence-transformers side 0.029, 0.087.
    """
    model = no_dropout_copy(tiny_model_dir, tmp_path / "model")
    data = {"kind": "pairs", "paths": [str(write_pairs(tmp_path / "pairs.tsv"))]}

    def config(name: str, **fields: Any) -> TrainConfig:
        loss = {"kind": "info_nce", "explicit_negatives": 0, "temperature": fields.pop("temperature", 0.05)}
        return tiny_config(
            model,
            tmp_path / name,
            data,
            **{
                "max_steps": 7,
                "seed": 42,
                "device": "cpu",
                "loss": loss,
                "optim": {"warmup_ratio": 0.1, "weight_decay": 1.0},
                **fields,
            },
        )

    reference = config("st")
    assert reference.optim.weight_decay > 0 and reference.optim.max_grad_norm == 1.0
    summary = train_st_mnrl(reference, None, tmp_path / "st")
    assert summary["steps"] == 7 and summary["rows"] == 28 and summary["filled_negatives"] == 0
    assert json.loads((tmp_path / "st" / "summary.json").read_text()) == summary
    train(config("px"), show_progress=False)
    train(config("px-seed", seed=7), show_progress=False)
    train(config("px-scale", temperature=0.1), show_progress=False)

    base = load_file(model / "model.safetensors")
    weights = {name: load_file(tmp_path / name / "final" / "model.safetensors") for name in ("st", "px", "px-seed")}
    weights["px-scale"] = load_file(tmp_path / "px-scale" / "final" / "model.safetensors")
    assert set(base) <= set(weights["st"]) and set(base) == set(weights["px"])

    def update_gap(ours: str) -> tuple[float, float]:
        """(|paraxl - st| / |paraxl update| over all tensors, largest element gap / largest element update)."""
        gap = sum(float(((weights[ours][k] - weights["st"][k]) ** 2).sum()) for k in base) ** 0.5
        size = sum(float(((weights[ours][k] - base[k]) ** 2).sum()) for k in base) ** 0.5
        largest_gap = max(float((weights[ours][k] - weights["st"][k]).abs().max()) for k in base)
        largest_update = max(float((weights[ours][k] - base[k]).abs().max()) for k in base)
        return gap / size, largest_gap / largest_update

    update = max(float((weights["px"][k] - base[k]).abs().max()) for k in base)
    assert update > 1e-3  # the runs moved the weights (lr 1e-3, Adam: ~lr per step)
    frozen = "embeddings.word_embeddings.weight"
    assert torch.equal(weights["st"][frozen], base[frozen]) and torch.equal(weights["px"][frozen], base[frozen])
    relative, largest = update_gap("px")
    assert relative < 5e-3 and largest < 0.05, (relative, largest)  # measured 1.8e-6 and 8e-5
    # a different batch order (seed 7; measured 0.57 and 1.5) and a 2x scale (measured 0.025 and 0.61)
    for other, bound in (("px-seed", 0.2), ("px-scale", 0.01)):
        relative, largest = update_gap(other)
        assert relative > bound and largest > 0.3, (other, relative, largest)


# ---------------------------------------------------------------- the runner, end to end


def write_fake_pawsx(root: Path) -> Path:
    """``pawsx/resplit/{lang}/{train,validation,test}.tsv`` for all 7 languages, a few pairs each."""
    write_pawsx(root, np.random.default_rng(0))
    for language in PAWSX_LANGUAGES:
        write_pairs(root / "pawsx" / "resplit" / language / "train.tsv", groups=8)
    return root


RUNNER_TABLE = """\
name: tiny
title: Tiny runs
base: configs/base.yaml
overrides: [batch_size=4, max_steps=2]
seeds: [42, 43]
eval: {tasks: pawsx, batch_size: 32}
variants:
  - {name: off-the-shelf, trainer: none}
  - {name: infonce, overrides: [loss.explicit_negatives=0]}
  - {name: am, overrides: [loss.kind=additive_margin, loss.margin=0.3]}
"""


@pytest.fixture()
def tiny_table(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Table, Path]:
    monkeypatch.setenv("PARAXL_CACHE_DIR", str(tmp_path / "cache"))
    # the evaluation's plots (matplotlib, seconds a run here) are not what these tests check
    monkeypatch.setattr("paraxl.evaluation.session.write_plots", lambda document, folder: [])
    table = load_table(write_table(tmp_path / "repo", RUNNER_TABLE, model=str(tiny_model_dir)))
    return table, write_fake_pawsx(tmp_path / "data")


def test_run_table_trains_evaluates_resumes_and_cleans_up(
    tiny_table: tuple[Table, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, data_dir = tiny_table
    runs = tmp_path / "runs"
    trained: list[tuple[str, int]] = []
    real_train = runner._train

    def counting_train(variant: Any, config: Any, data: Path, output: Path) -> dict[str, Any]:
        trained.append((variant.name, config.seed))
        return real_train(variant, config, data, output)

    monkeypatch.setattr(runner, "_train", counting_train)
    logged: list[str] = []

    # one variant at one seed: only that run happens, only it is reported
    am_first = runner.run_table(table, runs, data_dir, only={"am"}, seeds={42}, log=logged.append)
    assert [(r["variant"], r["seed"]) for r in am_first] == [("am", 42)]
    assert trained == [("am", 42)]

    # seed 42 only: the none variant and infonce at 42 run; am at 42 is read back
    first = runner.run_table(table, runs, data_dir, seeds={42}, log=logged.append)
    assert [(r["variant"], r["seed"]) for r in first] == [("off-the-shelf", 42), ("infonce", 42), ("am", 42)]
    assert trained == [("am", 42), ("infonce", 42)]
    assert first[2] == am_first[0]
    assert not list(runs.glob("tiny/*/seed-43"))

    # every seed: only the seed-43 runs are new
    records = runner.run_table(table, runs, data_dir, log=logged.append)
    assert trained == [("am", 42), ("infonce", 42), ("infonce", 43), ("am", 43)]
    assert [(r["variant"], r["seed"]) for r in records] == [
        ("off-the-shelf", 42),
        ("infonce", 42),
        ("infonce", 43),
        ("am", 42),
        ("am", 43),
    ]
    assert records[:2] == first[:2] and records[3] == first[2]  # read back, not rerun
    assert any("done before" in line for line in logged)

    fingerprints = set()
    for record in records:
        folder = runs / "tiny" / record["variant"] / f"seed-{record['seed']}"
        assert json.loads((folder / "record.json").read_text()) == record
        assert (folder / "eval" / "pawsx.json").is_file()
        pawsx = record["scores"]["pawsx"]
        assert set(pawsx["per_language"]) == set(PAWSX_LANGUAGES)
        assert 0.0 <= pawsx["test_accuracy"] <= 1.0 and 0.0 <= pawsx["validation_accuracy"] <= 1.0
        assert pawsx["test_accuracy"] == pytest.approx(statistics.fmean(pawsx["per_language"].values()))
        assert "cross_lingual_accuracy" in pawsx and "en_to_xx_accuracy" in pawsx
        assert record["config"]["seed"] == record["seed"]
        fingerprints.add(record["model_fingerprint"])
        if record["trainer"] == "none":
            assert record["training"] is None and record["config"]["model"]["name"] == str(table_model(table))
            continue
        training = record["training"]
        assert training["steps"] == 2 and training["examples"] == 8
        assert record["config"]["output_dir"] == str(folder / "train")
        assert {Path(f["path"]).name for f in training["data_files"]} == {"train.tsv"}
        assert all(not Path(f["path"]).is_absolute() for f in training["data_files"])  # relative to the data dir
        assert len(training["data_files"]) == 7
        assert (folder / "train" / "summary.json").is_file()
        assert not (folder / "train" / "final").exists() and not (folder / "train" / "checkpoints").exists()
    assert len(fingerprints) == 5  # every run evaluated its own weights
    # only the untrained model's embeddings are cached: trained weights are seen once
    shelf = records[0]["model_fingerprint"]
    cached = sorted(path.name for path in (tmp_path / "cache" / "embeddings").iterdir())
    assert cached == [shelf[:32]]
    am = {r["seed"]: r for r in records if r["variant"] == "am"}
    assert am[42]["config"]["loss"]["kind"] == "additive_margin" and am[42]["config"]["batch_size"] == 4

    # a finished table runs nothing: neither training nor evaluation
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("ran again")

    monkeypatch.setattr(runner, "_train", refuse)
    monkeypatch.setattr(runner, "run_evaluation", refuse)
    assert runner.run_table(table, runs, data_dir, log=logged.append) == records
    # seeds= and only= pick what runs now; finished runs of other seeds and variants stay in the report
    assert runner.run_table(table, runs, data_dir, seeds={43}, log=logged.append) == records
    assert runner.run_table(table, runs, data_dir, only={"am"}, log=logged.append) == records


SOUP_TABLE = (
    RUNNER_TABLE.split("variants:")[0]
    + """variants:
  - {name: am, overrides: [loss.kind=additive_margin, loss.margin=0.3]}
  - {name: am-soup, trainer: soup, soup_of: am, soup_seeds: [42, 43]}
"""
)


def test_a_soup_variant_averages_the_kept_runs_and_evaluates_them(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARAXL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("paraxl.evaluation.session.write_plots", lambda document, folder: [])
    table = load_table(write_table(tmp_path / "repo", SOUP_TABLE, model=str(tiny_model_dir)))
    data_dir, runs = write_fake_pawsx(tmp_path / "data"), tmp_path / "runs"
    soup = table.spec.variants[1]
    assert table.seeds(soup) == [42]  # a soup is one model: it runs once
    assert table.config(soup, 42, Path("x")).loss.kind == "additive_margin"  # its ingredients' config

    # the ingredients were not kept: a clear error that says how to keep them, and no record
    runner.run_table(table, runs, data_dir, only={"am"}, seeds={42}, log=lambda line: None)
    with pytest.raises(InputError, match=r"seed\(s\) 42,43 are not kept.*--keep-models"):
        runner.run_table(table, runs, data_dir, only={"am-soup"}, log=lambda line: None)
    assert not (runs / "tiny" / "am-soup" / "seed-42" / "record.json").exists()

    shutil.rmtree(runs / "tiny" / "am")
    records = runner.run_table(table, runs, data_dir, keep_models=True, log=lambda line: None)
    assert [(r["variant"], r["seed"]) for r in records] == [("am", 42), ("am", 43), ("am-soup", 42)]
    soup_record = records[2]
    assert soup_record["trainer"] == "soup" and soup_record["training"] is None
    assert soup_record["soup"]["of"] == "am" and soup_record["soup"]["seeds"] == [42, 43]
    assert 0.0 <= soup_record["scores"]["pawsx"]["test_accuracy"] <= 1.0
    assert len({r["model_fingerprint"] for r in records}) == 3  # the soup is neither ingredient

    finals = [runs / "tiny" / r["variant"] / f"seed-{r['seed']}" / "train" / "final" for r in records]
    first, second, averaged = (load_file(str(folder / "model.safetensors")) for folder in finals)
    name = "encoder.layer.1.output.dense.weight"
    assert not torch.equal(first[name], second[name])  # the seeds trained to different weights
    torch.testing.assert_close(averaged[name], (first[name].double() / 2 + second[name].double() / 2).float())


def table_model(table: Table) -> Path:
    return Path(table.config(table.spec.variants[0], 0, Path("x")).model.name)


# ---------------------------------------------------------------- the report


def record(variant: str, seed: int, pawsx: tuple[float, float] | None, align: float | None) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    if pawsx is not None:
        validation, test = pawsx
        scores["pawsx"] = {
            "validation_accuracy": validation,
            "test_accuracy": test,
            "per_language": {"en": test + 0.01, "de": test - 0.01},
        }
    if align is not None:
        scores["align"] = {"main_score": align, "scores": {"mean": {"uniformity": -align}}}
    training = {"steps": 60, "train_seconds": 10.0 + seed, "examples_per_second": 100.0 + seed}
    return {
        "variant": variant,
        "trainer": "paraxl",
        "seed": seed,
        "scores": scores,
        "training": training if variant != "base" else None,
    }


RECORDS = [
    record("a", 1, (0.60, 0.55), 0.31),
    record("a", 2, (0.64, 0.58), 0.35),
    record("a", 3, (0.65, 0.62), 0.32),
    record("b", 1, (0.70, 0.66), None),
    record("base", 1, (0.5, 0.5), 0.2),
]


def test_aggregate_gives_mean_and_sample_std() -> None:
    variants = aggregate(RECORDS)
    assert list(variants) == ["a", "b", "base"]
    a = variants["a"]
    assert a["seeds"] == [1, 2, 3] and a["steps"] == 60
    tests = [0.55, 0.58, 0.62]
    assert a["test acc. (7-lang mean)"]["mean"] == pytest.approx(statistics.fmean(tests))
    assert a["test acc. (7-lang mean)"]["std"] == pytest.approx(statistics.stdev(tests))
    assert a["test acc. (7-lang mean)"]["std"] == pytest.approx(float(np.std(tests, ddof=1)))
    assert a["test acc. (7-lang mean)"]["values"] == tests and a["test acc. (7-lang mean)"]["n"] == 3
    assert a["alignment"]["std"] == pytest.approx(statistics.stdev([0.31, 0.35, 0.32]))
    assert a["uniformity"]["mean"] == pytest.approx(-statistics.fmean([0.31, 0.35, 0.32]))
    assert a["per_language"]["de"]["mean"] == pytest.approx(statistics.fmean(t - 0.01 for t in tests))
    assert a["train_seconds"]["mean"] == pytest.approx(12.0)
    assert a["en→xx acc."] is None  # no record has it
    b = variants["b"]
    assert b["test acc. (7-lang mean)"] == {"mean": 0.66, "std": None, "n": 1, "values": [0.66]}
    assert b["alignment"] is None and b["uniformity"] is None
    assert variants["base"]["steps"] == 0 and variants["base"]["train_seconds"] is None


def test_markdown_prints_means_stds_and_dashes() -> None:
    text = markdown("My table", aggregate(RECORDS))
    lines = text.splitlines()
    main_table = text.split("Test accuracy per language")[0].splitlines()
    assert lines[0] == "### My table"
    rows = {
        line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ") for line in main_table if line.startswith("| ")
    }
    header = rows["variant"]
    a, b, base = (dict(zip(header, rows[name], strict=True)) for name in ("a", "b", "base"))
    tests = [0.55, 0.58, 0.62]
    assert a["test acc. (7-lang mean)"] == f"{100 * statistics.fmean(tests):.2f} ± {100 * statistics.stdev(tests):.2f}"
    assert a["alignment"] == f"{statistics.fmean([0.31, 0.35, 0.32]):.3f} ± {statistics.stdev([0.31, 0.35, 0.32]):.3f}"
    assert a["seeds"] == "3" and a["steps"] == "60"
    assert "en→xx acc." not in header and "BUCC zh-en F1" not in header  # no record has them: no column
    assert b["test acc. (7-lang mean)"] == "66.00"  # one seed: no ±
    assert b["alignment"] == "-" and b["uniformity"] == "-"
    assert base["steps"] == "-" and base["train s"] == "-" and base["groups/s"] == "-"
    assert "Test accuracy per language" in text
    per_language = [line for line in lines if line.startswith("| a | ")]
    assert per_language[-1] == f"| a | {100 * statistics.fmean(t + 0.01 for t in tests):.1f} | " + (
        f"{100 * statistics.fmean(t - 0.01 for t in tests):.1f} |"
    )


def test_tatoeba_groups_against_hand_picked_sets() -> None:
    rng = np.random.default_rng(5)
    per_language = {lang: {"accuracy": float(rng.random())} for lang in TATOEBA_XTREME36}
    accuracy = {lang: row["accuracy"] for lang, row in per_language.items()}
    groups = tatoeba_groups(accuracy)
    trained = ["ara", "deu", "spa", "fra", "hin", "rus", "cmn"]  # ar de es fr hi ru zh, typed out
    held_out = ["bul", "ell", "swh", "tha", "tur", "urd", "vie"]
    outside = [lang for lang in TATOEBA_XTREME36 if lang not in trained + held_out]
    assert groups["mean_xnli_trained_in_transfer"] == pytest.approx(np.mean([accuracy[x] for x in trained]))
    assert groups["mean_xnli_held_out_in_transfer"] == pytest.approx(np.mean([accuracy[x] for x in held_out]))
    assert groups["mean_outside_xnli"] == pytest.approx(np.mean([accuracy[x] for x in outside]))
    assert groups["n_outside_xnli"] == 36 - 14 and groups["per_language"] == accuracy
    assert tatoeba_groups({"afr": 0.5})["mean_xnli_trained_in_transfer"] is None


def test_markdown_shows_the_columns_of_the_tasks_evaluated() -> None:
    runs = [
        {"variant": v, "trainer": "paraxl", "seed": 1, "training": None,
         "scores": {"tatoeba36": {"main_score": t, "mean_outside_xnli": t - 0.1}, "bucc": {"main_score": b}}}
        for v, t, b in (("single", 0.8, 0.7), ("mpcl", 0.9, 0.75))
    ]  # fmt: skip
    lines = markdown("t", aggregate(runs)).splitlines()
    header = lines[2].strip("| ").split(" | ")
    assert header[:2] == ["variant", "seeds"] and "test acc. (7-lang mean)" not in header
    rows = {line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ") for line in lines[4:]}
    mpcl = dict(zip(header, rows["mpcl"], strict=True))
    assert (mpcl["Tatoeba-36 acc."], mpcl["T36: outside XNLI"], mpcl["BUCC zh-en F1"]) == ("90.00", "80.00", "75.00")
    assert "uniformity" not in header


def test_sts_and_sib200_columns_come_from_the_real_result_documents() -> None:
    # the issue-4 evaluation of the bundled model, as committed: summarize it the way a run record
    # does, then read the columns back against the documents' own numbers
    folder = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "eval" / "e5-small-resplit"
    documents = {name: json.loads((folder / f"{name}.json").read_text(encoding="utf-8")) for name in ("sts", "sib200")}
    scores = {name: summarize_task(ResultDocument.from_json(document)) for name, document in documents.items()}
    run = {"variant": "e5", "trainer": "none", "seed": 0, "training": None, "scores": scores}
    sts, sib = documents["sts"]["scores"], documents["sib200"]["scores"]["mean"]
    expected = {
        "STS Spearman (all sets)": documents["sts"]["main_score"],
        "STS17": sts["sts17"]["mean_spearman"],
        "stsb_multi_mt": sts["stsb_multi_mt"]["mean_spearman"],
        "stsb en-xx": sts["stsb_cross_lingual"]["mean_spearman"],
        "SIB-200 acc.": sib["in_language_accuracy"],
        "SIB-200 zero-shot from en": sib["zero_shot_accuracy"],
    }
    row = aggregate([run])["e5"]
    assert {title: row[title]["mean"] for title in expected} == pytest.approx(expected)
    lines = markdown("t", aggregate([run])).splitlines()
    cells = dict(zip(lines[2].strip("| ").split(" | "), lines[4].strip("| ").split(" | "), strict=True))
    assert {title: cells[title] for title in expected} == {title: f"{value:.2f}" for title, value in expected.items()}
    assert cells["STS17"] == "63.09" and cells["SIB-200 acc."] == "74.04"  # RESULTS.md's issue-4 table


def test_write_report_writes_json_and_markdown(tmp_path: Path) -> None:
    json_path, md_path = write_report("t", "", RECORDS, tmp_path / "results")
    assert (json_path, md_path) == (tmp_path / "results" / "t.json", tmp_path / "results" / "t.md")
    saved = json.loads(json_path.read_text(encoding="utf-8"))
    assert saved["table"] == "t" and saved["runs"] == RECORDS
    assert saved["variants"] == json.loads(json.dumps(aggregate(RECORDS)))
    assert md_path.read_text(encoding="utf-8") == markdown("t", aggregate(RECORDS))  # no title: the name


# ---------------------------------------------------------------- benchmarks/run_table.py


def run_table_script() -> ModuleType:
    return load_benchmark_script("run_table")


def script_args(table: Path, data_dir: Path, runs: Path, results: Path) -> list[str]:
    return [str(table), "--data-dir", str(data_dir), "--runs-dir", str(runs), "--results-dir", str(results)]


@pytest.fixture()
def tiny_script(tiny_table: tuple[Table, Path], tmp_path: Path) -> tuple[list[str], Path, Path]:
    """run_table.py's arguments for the tiny table, its runs folder and its results folder."""
    table, data_dir = tiny_table
    results, runs = tmp_path / "results", tmp_path / "runs"
    return script_args(table.path, data_dir, runs, results), runs, results


def test_script_rejects_unknown_only_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_table(tmp_path, VALID_TABLE)
    runs = tmp_path / "runs"
    args = script_args(path, tmp_path, runs, tmp_path / "r")
    code = run_table_script().main([*args, "--only", "am,nosuch,typo"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--only names unknown variants: nosuch, typo" in err and str(path) in err
    assert not runs.exists() and not (tmp_path / "r").exists()


def test_script_rejects_seeds_the_table_does_not_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_table(tmp_path, VALID_TABLE)
    runs = tmp_path / "runs"
    args = script_args(path, tmp_path, runs, tmp_path / "r")
    code = run_table_script().main([*args, "--only", "infonce", "--seeds", "43,44,7"])  # 7 is variant `once`'s
    assert code == 2
    err = capsys.readouterr().err
    assert "--seeds 7, 44: not among the seeds of the selected variants ([42, 43])" in err and str(path) in err
    assert not runs.exists() and not (tmp_path / "r").exists()


@pytest.mark.parametrize("seeds", ["abc", "42,", "4 2"])
def test_script_rejects_seeds_that_are_not_integers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seeds: str
) -> None:
    path = write_table(tmp_path, VALID_TABLE)
    runs = tmp_path / "runs"
    args = script_args(path, tmp_path, runs, tmp_path / "r")
    assert run_table_script().main([*args, "--seeds", seeds]) == 2
    err = capsys.readouterr().err
    assert f"--seeds {seeds!r}: expected comma-separated integers" in err and str(path) in err
    assert not runs.exists()


def test_script_runs_a_table_keeps_models_and_writes_the_report(
    tiny_script: tuple[list[str], Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args, runs, results = tiny_script
    code = run_table_script().main([*args, "--only", "infonce", "--seeds", "43", "--keep-models"])
    assert code == 0
    saved = json.loads((results / "tiny.json").read_text())
    assert list(saved["variants"]) == ["infonce"] and [r["seed"] for r in saved["runs"]] == [43]
    assert not (runs / "tiny" / "infonce" / "seed-42").exists()
    final = runs / "tiny" / "infonce" / "seed-43" / "train" / "final"
    assert (final / "model.safetensors").is_file() and (final.parent / "checkpoints").is_dir()  # --keep-models
    assert saved["runs"][0]["model_fingerprint"] == model_folder_fingerprint(final)
    out = capsys.readouterr().out
    assert "### Tiny runs" in out and "| infonce | 1 |" in out
    assert (results / "tiny.md").read_text() in out


def test_script_keeps_reported_rows_whose_run_folders_are_gone(
    tiny_script: tuple[list[str], Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # a fresh clone has the committed report but no runs/: adding one run must not drop the others
    args, runs, results = tiny_script
    assert run_table_script().main([*args, "--only", "infonce", "--seeds", "42,43"]) == 0
    reported = json.loads((results / "tiny.json").read_text())["runs"]
    shutil.rmtree(runs)

    # a row whose config the table no longer describes is dropped, not passed off as current
    stale = json.loads(json.dumps(reported))
    stale[1]["config"]["batch_size"] = 99
    # ... but one written before a field with a default existed is still the same run
    del stale[0]["config"]["distill"]
    (results / "tiny.json").write_text(json.dumps({"table": "tiny", "variants": {}, "runs": stale}))
    capsys.readouterr()
    assert run_table_script().main([*args, "--only", "am", "--seeds", "42"]) == 0
    saved = json.loads((results / "tiny.json").read_text())
    assert [(r["variant"], r["seed"]) for r in saved["runs"]] == [("infonce", 42), ("am", 42)]
    assert saved["runs"][0] == stale[0]  # kept as it was reported
    assert list(saved["variants"]) == ["infonce", "am"]
    out = capsys.readouterr().out
    assert "infonce seed 42: no run folder, keeping the earlier report's record" in out
    assert "infonce seed 43: the earlier report's record has another config; dropped" in out


@pytest.mark.parametrize("content", ["{not json", '{"table": "tiny"}', '{"runs": [{"seed": 1}]}'])
def test_script_refuses_a_report_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = write_table(tmp_path, VALID_TABLE)
    results = tmp_path / "r"
    results.mkdir()
    (results / "tiny.json").write_text(content)
    args = script_args(path, tmp_path, tmp_path / "runs", results)
    assert run_table_script().main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(results / "tiny.json") in err
    assert (results / "tiny.json").read_text() == content  # never overwritten
    assert not (tmp_path / "runs").exists()
