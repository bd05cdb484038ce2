"""The baseline users would pick: MultipleNegativesRankingLoss trained by sentence-transformers itself.

It sees exactly the batches paraxl's trainer sees: the same :class:`GroupBatchSampler` plan
and the same per-step text draws (``pair_layout`` seeded by ``(seed, epoch, batch)``), fed
to ``SentenceTransformerTrainer`` through a sequential batch sampler. With
``explicit_negatives: 0`` the two trainers then optimise the same loss on the same batches,
so a gap between them is a trainer bug, not data. With ``explicit_negatives: 1``, rows
whose unit has no label-0 partner need *some* negative (sentence-transformers wants every
row to have the column); they get the next row's positive, a text that is already an
in-batch candidate, so no new information enters (it is counted twice in the softmax).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.data.records import TextUnit
from paraxl.data.sampler import GroupBatchSampler
from paraxl.errors import InputError
from paraxl.io.atomic import write_json_atomic
from paraxl.io.hashing import data_file_records
from paraxl.losses.registry import step_needs
from paraxl.losses.step import PairSteps
from paraxl.training.config import TrainConfig
from paraxl.training.data_loading import load_training_data
from paraxl.training.layout import TranslationPositives, pair_layout


@dataclass(frozen=True)
class BaselineRows:
    """Training rows in batch order: ``batch_size`` consecutive rows form one batch."""

    anchor: list[str]
    positive: list[str]
    negative: list[str] | None
    filled_negatives: int  # rows whose negative is the next row's positive (no label-0 partner)

    def columns(self) -> dict[str, list[str]]:
        columns = {"anchor": self.anchor, "positive": self.positive}
        if self.negative is not None:
            columns["negative"] = self.negative
        return columns


def baseline_rows(config: TrainConfig, groups: list[TextUnit], steps: int) -> BaselineRows:
    """The (anchor, positive[, negative]) rows of ``steps`` steps, drawn as paraxl's trainer draws them."""
    data = config.only_task("the sentence-transformers baseline").data  # first: the checks below read its keys
    if config.mini_batches_per_step != 1:
        raise InputError("the sentence-transformers baseline trains one mini-batch per step (no mega-batch)")
    needs = step_needs(config.loss)
    if not isinstance(needs, PairSteps):
        raise InputError(f"the sentence-transformers baseline trains pairs, not {config.loss.kind!r}")
    negatives = needs.explicit_negatives
    if negatives > 1:
        raise InputError("the sentence-transformers baseline takes at most one explicit negative per row")
    sampler = GroupBatchSampler([g.group_id for g in groups], config.batch_size, seed=config.seed)
    translations = TranslationPositives.at_rate(groups, data.translation_positives)  # as the trainer
    anchor: list[str] = []
    positive: list[str] = []
    negative: list[str] = []
    filled = 0
    for (epoch, index, batch), _ in zip(_plan(sampler), range(steps), strict=False):
        rng = np.random.default_rng([config.seed, epoch, index])  # as paraxl.training.tasks.TrainingTask.layout
        layout = pair_layout([[groups[i] for i in batch]], rng, negatives, translations)
        anchors = [layout.texts[i] for i in layout.anchors.tolist()]
        positives = [layout.texts[i] for i in layout.positives.tolist()]
        anchor += anchors
        positive += positives
        if negatives:
            for row, chosen in enumerate(layout.negatives[:, 0].tolist()):
                if chosen >= 0:
                    negative.append(layout.texts[chosen])
                else:
                    negative.append(positives[(row + 1) % len(positives)])
                    filled += 1
    return BaselineRows(anchor, positive, negative if negatives else None, filled)


def _plan(sampler: GroupBatchSampler) -> Iterator[tuple[int, int, list[int]]]:
    epoch = 0
    while True:
        for index, batch in enumerate(sampler.epoch_batches(epoch)):
            yield epoch, index, batch
        epoch += 1


def train_st_mnrl(config: TrainConfig, data_dir: Path | None, output: Path) -> dict[str, Any]:
    """Train ``config`` with sentence-transformers' MNRL; the model goes to ``output/final``.

    Supported: ``loss.kind: info_nce`` (MNRL, scale = 1 / temperature), ``max_steps``, one
    mini-batch per step, frozen word embeddings, fp32. Returns the summary it also writes to
    ``output/summary.json``.
    """
    # imported here: sentence-transformers' trainer pulls in datasets/accelerate
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    data_spec = config.only_task("the sentence-transformers baseline").data  # first: the checks below read its keys
    if config.loss.kind != "info_nce":
        raise InputError(f"the sentence-transformers baseline trains info_nce (MNRL), not {config.loss.kind!r}")
    if config.max_steps is None:
        raise InputError("the sentence-transformers baseline needs `max_steps`")
    if config.distill is not None:
        raise InputError("the sentence-transformers baseline trains MNRL alone; `distill` is paraxl's trainer's")
    data = load_training_data(data_spec, data_dir)
    rows = baseline_rows(config, data.units, config.max_steps)

    model = _st_model(config)
    prompt_name = config.model.prompt_name or model.default_prompt_name
    prompt = model.prompts.get(prompt_name, "") if prompt_name else ""
    args = _training_arguments(config, output, prompt)
    loss = MultipleNegativesRankingLoss(model, scale=1.0 / config.loss.temperature)
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict(rows.columns()), loss=loss
    )
    began = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - began
    model.save(str(output / "final"))
    examples = config.max_steps * config.batch_size
    summary = {
        "trainer": "sentence-transformers",
        "steps": config.max_steps,
        "examples": examples,
        "train_seconds": seconds,
        "examples_per_second": examples / max(seconds, 1e-9),
        "filled_negatives": rows.filled_negatives,
        "rows": len(rows.anchor),
        "skipped_rows": data.skipped_rows,
        "dropped_units": data.dropped_units,
        "data_files": data_file_records(data.sources, data_dir),
    }
    write_json_atomic(output / "summary.json", summary, indent=2, trailing_newline=False)
    return summary


def _st_model(config: TrainConfig) -> Any:
    """The SentenceTransformer to train, with paraxl's max length and frozen word embeddings."""
    from sentence_transformers import SentenceTransformer

    from paraxl.loading.specs import resolve_model_folder

    model = SentenceTransformer(str(resolve_model_folder(config.model.name)), device="cpu")
    if config.model.max_seq_length is not None:
        model.max_seq_length = config.model.max_seq_length
    if config.model.freeze_word_embeddings:
        backbone: Any = model[0].auto_model
        backbone.get_input_embeddings().weight.requires_grad_(False)
    return model


def _training_arguments(config: TrainConfig, output: Path, prompt: str) -> Any:
    """sentence-transformers' arguments for ``config``: paraxl's schedule, seed and batch order."""
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from torch.utils.data import SequentialSampler

    def sequential(dataset: Any, batch_size: int, drop_last: bool, **_: Any) -> DefaultBatchSampler:
        # rows are already in paraxl's batch order: no shuffling
        return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last)

    optim = config.optim
    max_steps = config.max_steps or 0  # train_st_mnrl refuses a config without max_steps
    return SentenceTransformerTrainingArguments(
        output_dir=str(output / "st-trainer"),
        per_device_train_batch_size=config.batch_size,
        max_steps=max_steps,
        learning_rate=optim.lr,
        warmup_steps=math.ceil(optim.warmup_ratio * max_steps),
        lr_scheduler_type={"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[optim.schedule],
        weight_decay=optim.weight_decay,
        max_grad_norm=optim.max_grad_norm or 0.0,
        seed=config.seed,
        batch_sampler=sequential,
        prompts=prompt or None,
        save_strategy="no",
        report_to="none",
        logging_steps=config.log_every,
        disable_tqdm=True,
        use_cpu=config.device == "cpu" or not _cuda(),
        dataloader_drop_last=False,
    )


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
