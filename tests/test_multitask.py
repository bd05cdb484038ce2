"""Multi-task training: config shapes and refusals, the task schedule, a tiny two-task run checked
step by step against a naive replay, and resume == uninterrupted."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from paraxl.data.sampler import GroupBatchSampler
from paraxl.errors import InputError, ModelFormatError
from paraxl.losses.additive_margin import AdditiveMarginConfig, InfoNCEConfig
from paraxl.losses.multi_positive import MultiPositiveConfig
from paraxl.losses.registry import step_needs
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.training.checkpoint import TaskProgress, TrainerState, load_trainer_state
from paraxl.training.config import TrainConfig, load_config, upgrade_record
from paraxl.training.data_loading import load_training_data
from paraxl.training.distributed import DistContext
from paraxl.training.layout import step_layout
from paraxl.training.objective import step_loss
from paraxl.training.step import accumulate_step_gradient
from paraxl.training.tasks import TaskSchedule, fresh_state, load_tasks, task_progress
from paraxl.training.trainer import EMBED_CHUNK, train

from .training_helpers import write_pairs, write_parallel

MULTI = """\
output_dir: runs/x
max_steps: 10
tasks:
  - name: pawsx
    data: {kind: pawsx}
    loss: {kind: additive_margin, margin: 0.2}
    mining: {enabled: true}
    mini_batches_per_step: 2
    batch_size: 8
  - name: xnli
    weight: 2
    data: {kind: xnli}
    loss:
      kind: multi_positive
      members_per_group: 2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str, overrides: tuple[str, ...] = ()) -> InputError:
    with pytest.raises(InputError) as caught:
        load_config(write(tmp_path, text), list(overrides))
    return caught.value


# ---------------------------------------------------------------- config: both shapes


def test_a_one_task_config_is_one_task_and_records_as_before(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "data: {kind: pawsx}\noutput_dir: x\nmax_steps: 3\nbatch_size: 8\n"))
    assert not config.is_multi_task
    (task,) = config.task_list()
    assert (task.name, task.weight, task.data, task.batch_size) == ("main", 1.0, config.data, 8)
    assert task.loss == config.loss and task.mining == config.mining and task.uses_grad_cache == config.uses_grad_cache
    recorded = config.model_dump(mode="json")
    assert "tasks" not in recorded and "task_sampling" not in recorded  # config.json as before tasks existed
    assert list(recorded)[:3] == ["model", "data", "validation"]
    assert TrainConfig.model_validate(recorded) == config


def test_a_multi_task_config_has_its_blocks_and_no_top_level_task_keys(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MULTI))
    assert config.is_multi_task and config.task_sampling == "proportional"
    assert [task.name for task in config.task_list()] == ["pawsx", "xnli"]
    pawsx, xnli = config.task_list()
    assert pawsx.loss == AdditiveMarginConfig(margin=0.2) and pawsx.mining.enabled and pawsx.uses_grad_cache
    assert xnli.weight == 2.0 and xnli.batch_size == 32 and not xnli.uses_grad_cache  # defaults per task
    recorded = config.model_dump(mode="json")
    assert {"data", "loss", "mining", "distill", "batch_size", "mini_batches_per_step", "grad_cache"}.isdisjoint(
        recorded
    )
    assert TrainConfig.model_validate(recorded) == config
    with pytest.raises(InputError, match="trains one task; this config has `tasks:`"):
        config.only_task("the baseline")


def test_the_shipped_multitask_config_has_both_papers_tasks_and_sts() -> None:
    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "multitask.yaml")
    kinds = {task.name: (task.data.kind, task.loss.kind) for task in config.task_list()}
    assert kinds == {
        "pawsx": ("pawsx", "additive_margin"),
        "xnli": ("xnli", "multi_positive"),
        "sts": ("sts", "cosent"),
    }
    pawsx, xnli, _ = config.task_list()
    assert pawsx.mining.enabled and pawsx.mini_batches_per_step == 4 and pawsx.batch_size == 8
    assert isinstance(xnli.loss, MultiPositiveConfig) and xnli.loss.members_per_group == 2


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        ("loss: {kind: info_nce}\n", 16, r"loss: belongs in each block of `tasks`"),
        ("batch_size: 4\n", 16, r"batch_size: belongs in each block of `tasks`"),
        ("data: {kind: pawsx}\n", 16, r"data: belongs in each block of `tasks`"),
        ("mining: {enabled: false}\n", 16, r"mining: belongs in each block of `tasks`"),
        ("distill: {scores: s.tsv}\n", 16, r"distill: belongs in each block of `tasks`"),
        ("mini_batches_per_step: 2\n", 16, r"mini_batches_per_step: belongs in each block of `tasks`"),
    ],
)
def test_top_level_task_keys_beside_tasks_are_refused_at_their_line(
    tmp_path: Path, extra: str, line: int, message: str
) -> None:
    error = refused(tmp_path, MULTI + extra)
    assert error.line == line
    assert re.search(message, str(error)), str(error)


def test_an_error_inside_a_task_block_names_its_line(tmp_path: Path) -> None:
    error = refused(tmp_path, MULTI.replace("      members_per_group: 2\n", "      margn: 2\n"))
    assert error.line == 15 and "unknown key 'tasks[1].loss.margn'" in str(error)
    error = refused(tmp_path, MULTI.replace("members_per_group: 2", "members_per_group: many"))
    assert error.line == 15 and "tasks[1].loss.members_per_group" in str(error)
    error = refused(tmp_path, MULTI.replace("      kind: multi_positive\n", "      kind: info_nse\n"))
    assert error.line == 14 and "tasks[1].loss.kind: 'info_nse' is not a loss kind" in str(error)
    error = refused(tmp_path, MULTI.replace("  - name: xnli\n", "  - name: xnli\n    temperature: 1\n"))
    assert error.line == 11 and "unknown key 'tasks[1].temperature'" in str(error)
    # a key of another kind: the message that names the kinds it applies to
    error = refused(tmp_path, MULTI.replace("members_per_group: 2", "margin: 0.3"))
    assert error.line == 15 and "`margin` does not apply to loss kind multi_positive" in str(error)


def test_the_cross_field_rules_apply_per_task_with_its_name(tmp_path: Path) -> None:
    mined = MULTI.replace("      members_per_group: 2\n", "      members_per_group: 2\n    mining: {enabled: true}\n")
    error = refused(tmp_path, mined)
    assert error.line == 10  # the task's block
    assert "tasks[1]: task 'xnli': mining works with the pair losses" in str(error)
    error = refused(tmp_path, MULTI.replace("    mini_batches_per_step: 2\n", ""))
    assert error.line == 4 and "task 'pawsx': mining needs a mega-batch" in str(error)
    error = refused(tmp_path, MULTI.replace("data: {kind: xnli}", "data: {kind: xnli, translation_positives: 0.5}"))
    assert "task 'xnli': data.translation_positives works with the pair losses" in str(error)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MULTI.replace("name: xnli", "name: pawsx"), r"task names must be unique: 'pawsx' used twice"),
        (MULTI.replace("max_steps: 10", "epochs: 1"), r"a multi-task run is as long as `max_steps`"),
        (MULTI + "task_sampling: round_robin\n", r"`weight` is for proportional sampling"),
        (MULTI.replace("name: xnli", "name: x y"), r"tasks\[1\]\.name: String should match pattern"),
        (MULTI.replace("weight: 2", "weight: 0"), r"tasks\[1\]\.weight: Input should be greater than 0"),
        (MULTI.replace("    data: {kind: xnli}\n", ""), r"missing required key 'tasks\[1\]\.data'"),
        ("output_dir: x\nmax_steps: 1\ntasks: []\n", r"tasks: List should have at least 1 item"),
        ("data: {kind: pawsx}\noutput_dir: x\nmax_steps: 1\ntask_sampling: round_robin\n", "has no `tasks`"),
    ],
)
def test_multi_task_refusals(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (MULTI.replace("name: xnli", "name: pawsx"), 3),  # tasks:
        (MULTI.replace("max_steps: 10", "epochs: 1"), 2),
        (MULTI + "task_sampling: round_robin\n", MULTI.count("\n") + 1),
    ],
)
def test_multi_task_rules_name_their_line(tmp_path: Path, text: str, line: int) -> None:
    error = refused(tmp_path, text)
    assert (error.path, error.line) == (str(tmp_path / "config.yaml"), line), error


def test_overrides_reach_into_task_blocks(tmp_path: Path) -> None:
    path = write(tmp_path, MULTI)
    config = load_config(path, ["tasks.0.loss.kind=info_nce", "tasks.1.weight=3"])
    assert config.task_list()[0].loss == InfoNCEConfig()  # the file's `margin` went with the kind
    assert config.task_list()[1].weight == 3.0
    with pytest.raises(InputError, match=r"'2' is not a position in a list of 2"):
        load_config(path, ["tasks.2.weight=3"])
    with pytest.raises(InputError, match=r"override 'tasks\.0\.loss\.margn=1'.*unknown key 'tasks\[0\]\.loss\.margn'"):
        load_config(path, ["tasks.0.loss.margn=1"])


def test_a_record_with_flat_sections_in_task_blocks_upgrades(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MULTI))
    flat = config.model_dump(mode="json")
    flat["tasks"][1]["loss"] |= {"margin": 0.3, "scale": 20.0}  # keys of other kinds, as old records held
    flat["tasks"][1]["data"] |= {"paths": [], "split": "train"}
    assert TrainConfig.model_validate(upgrade_record(flat)) == config


# ---------------------------------------------------------------- schedule


def test_proportional_probabilities_are_weight_times_steps_per_epoch() -> None:
    schedule = TaskSchedule.of("proportional", [1.0, 2.0, 0.5], [10.0, 5.0, 2.5], seed=0)
    expected = np.array([10.0, 10.0, 1.25]) / 21.25
    np.testing.assert_allclose(schedule.probabilities, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="positive"):
        TaskSchedule.of("proportional", [1.0, 0.0], [1.0, 1.0], seed=0)


def test_proportional_frequencies_match_the_probabilities() -> None:
    schedule = TaskSchedule.of("proportional", [1.0, 2.0, 0.5], [10.0, 5.0, 2.5], seed=7)
    steps = 20_000
    counts = np.bincount([schedule.task_at(step) for step in range(steps)], minlength=3)
    p = np.asarray(schedule.probabilities)
    sigma = np.sqrt(steps * p * (1 - p))
    assert np.all(np.abs(counts - steps * p) < 4.5 * sigma), (counts, steps * p)


def test_round_robin_cycles_through_the_tasks_in_order() -> None:
    schedule = TaskSchedule.of("round_robin", [1.0, 1.0, 1.0], [100.0, 1.0, 3.0], seed=3)
    assert [schedule.task_at(step) for step in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_the_draw_of_a_step_depends_only_on_seed_and_step() -> None:
    schedule = TaskSchedule.of("proportional", [1.0, 1.0], [1.0, 1.0], seed=11)
    forward = [schedule.task_at(step) for step in range(200)]
    backward = [schedule.task_at(step) for step in reversed(range(200))][::-1]
    again = TaskSchedule.of("proportional", [1.0, 1.0], [1.0, 1.0], seed=11)
    assert forward == backward == [again.task_at(step) for step in range(200)]
    other = TaskSchedule.of("proportional", [1.0, 1.0], [1.0, 1.0], seed=12)
    assert forward != [other.task_at(step) for step in range(200)]
    assert {schedule.task_at(step) for step in range(200)} == {0, 1}
    one = TaskSchedule.of("proportional", [1.0], [3.0], seed=11)
    assert {one.task_at(step) for step in range(50)} == {0}


def test_sampler_streams_are_independent_plans() -> None:
    groups = [i // 2 for i in range(40)]
    plain = GroupBatchSampler(groups, 4, seed=5)
    reference = [batch for epoch in range(2) for batch in plain.epoch_batches(epoch)]
    streamed = GroupBatchSampler(groups, 4, seed=5, stream=(0,))
    other = [batch for epoch in range(2) for batch in streamed.epoch_batches(epoch)]
    assert other != reference
    for batch in other:
        assert len({groups[unit] for unit in batch}) == len(batch) == 4
    with pytest.raises(InputError, match="non-negative"):
        GroupBatchSampler(groups, 4, seed=5, stream=(-1,))


def test_trainer_state_records_tasks_only_for_multi_task_runs() -> None:
    single = TrainerState(step=3, epoch=1, batch=2, examples=24)
    assert "tasks" not in single.record()  # state.json of a one-task run: as before
    assert TrainerState.from_record(single.record()) == single
    multi = TrainerState(step=3, tasks={"a": TaskProgress(1, 2, 2, 16), "b": TaskProgress(0, 1, 1, 8)})
    assert TrainerState.from_record(json.loads(json.dumps(multi.record()))) == multi
    old = {"step": 2, "epoch": 0, "batch": 2, "examples": 8, "elapsed_s": 1.0, "best_metric": None, "best_step": None}
    assert TrainerState.from_record(old).tasks is None


def test_a_multi_task_state_resumes_only_its_tasks_in_its_order(tmp_path: Path) -> None:
    config = multi_config(tmp_path, tmp_path, tmp_path / "run")
    tasks = load_tasks(config, None)
    state = fresh_state(config)
    assert state.tasks is not None and task_progress(state, tasks) == list(state.tasks.values())
    # the same names in another order: each task's sampler stream is its position, so this is another run
    swapped = TrainerState(tasks=dict(reversed(list(state.tasks.items()))))
    with pytest.raises(ModelFormatError, match=r"tasks \(parallel, pairs\) are not this config's \(pairs, parallel\)"):
        task_progress(swapped, tasks)
    with pytest.raises(ModelFormatError, match="one-task run"):
        task_progress(TrainerState(), tasks)


# ---------------------------------------------------------------- runs


def multi_config(model_dir: Path, root: Path, output: Path, **fields: Any) -> TrainConfig:
    pairs = root / "pairs.tsv"
    if not pairs.exists():
        write_pairs(pairs, groups=24)
        write_parallel(root, languages=3, lines=20)
    raw: dict[str, Any] = {
        "model": {"name": str(model_dir), "max_seq_length": 32},
        "tasks": [
            {
                "name": "pairs",
                "data": {"kind": "pairs", "paths": [str(pairs)]},
                "loss": {"kind": "additive_margin", "margin": 0.2},
                "mining": {"enabled": True, "top_k": 1},
                "batch_size": 4,
                "mini_batches_per_step": 2,
            },
            {
                "name": "parallel",
                "data": {"kind": "parallel", "paths": [str(root / f"lang{i}.txt") for i in range(3)]},
                "loss": {"kind": "multi_positive", "members_per_group": 2},
                "batch_size": 4,
            },
        ],
        "output_dir": str(output),
        "max_steps": 8,
        "checkpoint_every": 1,
        "keep_checkpoints": 10,
        "log_every": 1,
        "seed": 3,
        "optim": {"lr": 1e-3, "warmup_ratio": 0.0},
    }
    return TrainConfig.model_validate(raw | fields)


def _records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainConfig]:
    root = tmp_path_factory.mktemp("multitask")
    config = multi_config(tiny_model_dir, root, root / "reference")
    train(config, show_progress=False)
    return root, config


def test_a_two_task_run_records_each_task(reference_run: tuple[Path, TrainConfig]) -> None:
    _, config = reference_run
    run = Path(config.output_dir)
    summary = json.loads((run / "summary.json").read_text())
    schedule = TaskSchedule.of("proportional", [1.0, 1.0], [6.0 / 2, 5.0], seed=3)  # 24 pair units / 4 = 6 batches
    picks = [schedule.task_at(step) for step in range(8)]
    assert {0, 1} <= set(picks)  # seed 3 trains both tasks in 8 steps (else the test proves little)
    names = ["pairs", "parallel"]
    records = _records(run)
    assert [r["task"] for r in records] == [names[i] for i in picks]
    assert all(r["tasks"] == {r["task"]: {"loss": r["loss"], "steps": 1}} for r in records)  # log_every 1
    tasks = {task["name"]: task for task in summary["tasks"]}
    for index, name in enumerate(names):
        steps = picks.count(index)
        assert tasks[name]["steps"] == steps
        assert tasks[name]["examples"] == steps * (8 if name == "pairs" else 4)
    assert summary["steps"] == 8 and summary["examples"] == sum(t["examples"] for t in summary["tasks"])
    read = {Path(record["path"]).name for record in summary["data_files"]}
    assert read == {"pairs.tsv", "lang0.txt", "lang1.txt", "lang2.txt"}
    assert [Path(r["path"]).name for r in tasks["pairs"]["data_files"]] == ["pairs.tsv"]
    state = load_trainer_state(run / "checkpoints" / "step-0000008")
    assert state.tasks is not None and {n: p.steps for n, p in state.tasks.items()} == {
        name: picks.count(i) for i, name in enumerate(names)
    }
    recorded = json.loads((run / "config.json").read_text())
    assert [task["name"] for task in recorded["tasks"]] == names and "loss" not in recorded


def test_each_step_is_its_tasks_loss_on_its_tasks_batches(reference_run: tuple[Path, TrainConfig]) -> None:
    """Naive replay: from checkpoint s-1 (model and RNG), the task the schedule picks, that task's own
    sampler stream and position (walked step by step here) and its loss give the logged loss of step s."""
    _, config = reference_run
    run = Path(config.output_dir)
    tasks = config.task_list()
    data = [load_training_data(task.data, None) for task in tasks]
    samplers = [
        GroupBatchSampler(d.group_ids(), t.batch_size, seed=config.seed, stream=(i,))
        for i, (t, d) in enumerate(zip(tasks, data, strict=True))
    ]
    flat = [[(e, b, batch) for e in range(20) for b, batch in enumerate(s.epoch_batches(e))] for s in samplers]
    used = [0, 0]
    schedule = TaskSchedule.of("proportional", [1.0, 1.0], [6.0 / 2, 5.0], seed=3)
    records = _records(run)
    for step in range(8):
        index = schedule.task_at(step)
        task = tasks[index]
        batches = flat[index][used[index] : used[index] + task.mini_batches_per_step]
        used[index] += task.mini_batches_per_step
        if step == 0:
            continue  # no checkpoint before the first step
        checkpoint = run / "checkpoints" / f"step-{step:07d}"
        model = BiEncoder.load(checkpoint / "model").train()
        torch.set_rng_state(torch.load(checkpoint / "rng.pt", weights_only=True)[0]["cpu"])
        epoch, position, _ = batches[0]
        rng = np.random.default_rng([config.seed, index, epoch, position])
        units = data[index].units
        layout = step_layout(step_needs(task.loss), [[units[i] for i in b] for _, _, b in batches], rng)
        loss = accumulate_step_gradient(
            model,
            layout,
            lambda reps, layout=layout, task=task: step_loss(reps, layout, task.loss, task.mining),
            context=DistContext(),
            grad_cache=task.uses_grad_cache,
            chunk_size=EMBED_CHUNK,
        )
        assert loss == pytest.approx(records[step]["loss"], rel=1e-5), step
    saved = load_trainer_state(run / "checkpoints" / "step-0000008").tasks
    assert saved is not None
    for index, task in enumerate(tasks):  # each task's sampler stands after its last batch
        epoch, position, _ = flat[index][used[index] - 1]
        assert (saved[task.name].epoch, saved[task.name].batch) == (epoch, position + 1)


def test_a_resumed_multi_task_run_ends_with_the_uninterrupted_weights(
    reference_run: tuple[Path, TrainConfig], tiny_model_dir: Path, tmp_path: Path
) -> None:
    root, config = reference_run
    reference = Path(config.output_dir)
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    (run / "summary.json").unlink()
    shutil.rmtree(run / "final")
    for step in (6, 7, 8):  # as if killed after logging step 8, before its checkpoint; 6 and 7 lost too
        shutil.rmtree(run / "checkpoints" / f"step-{step:07d}")
    resumed = multi_config(tiny_model_dir, root, run)
    recorded = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(recorded | {"output_dir": str(run)}, indent=2) + "\n")
    summary = train(resumed, show_progress=False)
    assert summary.resumed_from_step == 5
    expected = load_file(reference / "final" / "model.safetensors")
    actual = load_file(run / "final" / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name
    before, after = _records(reference), _records(run)
    assert [r["step"] for r in after] == list(range(1, 9))
    assert [(r["task"], r["loss"]) for r in after] == [(r["task"], r["loss"]) for r in before]
    finished = json.loads((reference / "summary.json").read_text())["tasks"]
    assert [{k: t[k] for k in ("name", "steps", "examples", "epoch", "batch")} for t in summary.tasks or []] == [
        {k: t[k] for k in ("name", "steps", "examples", "epoch", "batch")} for t in finished
    ]


def test_a_scored_task_trains_beside_a_contrastive_one_in_turn(tiny_model_dir: Path, tmp_path: Path) -> None:
    """cosent on sts pairs and additive margin on pairs, round robin: each task its own layout and loss."""
    folder = tmp_path / "data" / "stsb_multi_mt"
    folder.mkdir(parents=True)
    rows = [f'"the cat {i} sat","the dog {i} ran",{i % 6}' for i in range(16)]
    (folder / "stsb-en-train.csv").write_text("\n".join(rows) + "\n")
    pairs = write_pairs(tmp_path / "pairs.tsv", groups=12)
    raw: dict[str, Any] = {
        "model": {"name": str(tiny_model_dir), "max_seq_length": 32},
        "tasks": [
            {"name": "pairs", "data": {"kind": "pairs", "paths": [str(pairs)]}, "batch_size": 4},
            {"name": "sts", "data": {"kind": "sts", "languages": ["en"]}, "loss": {"kind": "cosent"}, "batch_size": 4},
        ],
        "task_sampling": "round_robin",
        "output_dir": str(tmp_path / "run"),
        "max_steps": 4,
        "log_every": 1,
        "optim": {"lr": 1e-3, "warmup_ratio": 0.0},
    }
    summary = train(TrainConfig.model_validate(raw), data_dir=tmp_path / "data", show_progress=False)
    assert summary.tasks is not None
    assert [(t["name"], t["steps"], t["examples"]) for t in summary.tasks] == [("pairs", 2, 8), ("sts", 2, 8)]
    records = _records(tmp_path / "run")
    assert [r["task"] for r in records] == ["pairs", "sts", "pairs", "sts"]
    assert all(np.isfinite(r["loss"]) for r in records)
    assert {Path(f["path"]).name for f in summary.data_files} == {"pairs.tsv", "stsb-en-train.csv"}
