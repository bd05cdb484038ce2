"""paraxl's losses inside sentence-transformers: same values, and SentenceTransformerTrainer trains with them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from paraxl.losses import additive_margin_loss, multi_positive_loss
from paraxl.losses.st_modules import AdditiveMarginSoftmaxLoss, MultiPositiveContrastiveLoss

ROWS = {
    "anchor": ["the cat sat", "the dog ran", "le chat", "der hund", "on the mat", "cat 5"],
    "positive": ["a cat sat", "dog ran fast", "chat le", "hund der", "mat the on", "5 cat"],
    "negative": ["the dog sat", "the cat ran", "le hund", "der chat", "on the dog", "dog 5"],
}


@pytest.fixture()
def st_model(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    return SentenceTransformer(str(tiny_model_dir), device="cpu").eval()


def features(model, columns: list[list[str]]) -> list[dict[str, torch.Tensor]]:  # type: ignore[no-untyped-def]
    return [model.tokenize(column) for column in columns]


def embed(model, column: list[str]) -> torch.Tensor:  # type: ignore[no-untyped-def]
    return model(model.tokenize(column))["sentence_embedding"]


def test_additive_margin_module_equals_function(st_model) -> None:  # type: ignore[no-untyped-def]
    loss = AdditiveMarginSoftmaxLoss(st_model, margin=0.25, scale=15.0)
    columns = [ROWS["anchor"], ROWS["positive"], ROWS["negative"]]
    value = loss(features(st_model, columns), None)
    a, p, n = (embed(st_model, column) for column in columns)
    expected = additive_margin_loss(a, p, margin=0.25, scale=15.0, extra_negatives=n[:, None, :])
    torch.testing.assert_close(value, expected)


def test_multi_positive_module_equals_function(st_model) -> None:  # type: ignore[no-untyped-def]
    loss = MultiPositiveContrastiveLoss(st_model, temperature=0.1, variant="log_sum_prob")
    columns = [ROWS["anchor"], ROWS["positive"], ROWS["negative"]]
    value = loss(features(st_model, columns), None)
    stacked = torch.cat([embed(st_model, column) for column in columns])
    groups = torch.arange(6).repeat(3)
    torch.testing.assert_close(value, multi_positive_loss(stacked, groups, temperature=0.1, variant="log_sum_prob"))


@pytest.mark.parametrize("loss_class", [AdditiveMarginSoftmaxLoss, MultiPositiveContrastiveLoss])
def test_sentence_transformer_trainer_trains_with_our_losses(tiny_model_dir: Path, tmp_path: Path, loss_class) -> None:  # type: ignore[no-untyped-def]
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "st"),
        num_train_epochs=2,
        per_device_train_batch_size=3,
        learning_rate=1e-3,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict(ROWS), loss=loss_class(model)
    )
    result = trainer.train()
    assert torch.isfinite(torch.tensor(result.training_loss))
    changed = [name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())]
    assert any("encoder.layer" in name for name in changed)
