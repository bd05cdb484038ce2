"""paraxl's losses as sentence-transformers loss modules, for ``SentenceTransformerTrainer``.

Dataset columns, as sentence-transformers' own losses expect them:

* :class:`AdditiveMarginSoftmaxLoss`: ``(anchor, positive[, negative_1, ...])``; the
  negatives of a row are that anchor's explicit negatives (added to the in-batch ones).
* :class:`MultiPositiveContrastiveLoss`: ``(text_1, ..., text_K)``: one row is one group
  (the same sentence in K languages); every other text of the row is a positive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from paraxl.losses.additive_margin import Direction, additive_margin_loss
from paraxl.losses.multi_positive import Variant, multi_positive_loss

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def _embed_columns(model: SentenceTransformer, features: Iterable[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    return [model(column)["sentence_embedding"] for column in features]  # each (batch, dim)


class AdditiveMarginSoftmaxLoss(nn.Module):
    """Bidirectional additive-margin softmax (paper 1); ``margin=0, direction="forward"`` is MNRL."""

    def __init__(
        self, model: SentenceTransformer, margin: float = 0.3, scale: float = 20.0, direction: Direction = "both"
    ) -> None:
        super().__init__()
        self.model = model
        self.margin, self.scale, self.direction = margin, scale, direction

    def forward(
        self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor | None
    ) -> torch.Tensor:
        anchors, positives, *negatives = _embed_columns(self.model, sentence_features)
        extra = torch.stack(negatives, dim=1) if negatives else None  # (batch, columns - 2, dim)
        return additive_margin_loss(
            anchors, positives, margin=self.margin, scale=self.scale, direction=self.direction, extra_negatives=extra
        )

    def get_config_dict(self) -> dict[str, Any]:
        return {"margin": self.margin, "scale": self.scale, "direction": self.direction}


class MultiPositiveContrastiveLoss(nn.Module):
    """MPCL (paper 2): every text of a row is a positive of every other; other rows are negatives."""

    def __init__(
        self, model: SentenceTransformer, temperature: float = 0.05, variant: Variant = "mean_log_prob"
    ) -> None:
        super().__init__()
        self.model = model
        self.temperature, self.variant = temperature, variant

    def forward(
        self, sentence_features: Iterable[dict[str, torch.Tensor]], labels: torch.Tensor | None
    ) -> torch.Tensor:
        columns = _embed_columns(self.model, sentence_features)
        if len(columns) < 2:
            raise ValueError("MultiPositiveContrastiveLoss needs at least 2 text columns (a group of >= 2)")
        batch = columns[0].shape[0]
        groups = torch.arange(batch, device=columns[0].device).repeat(len(columns))  # row id of each text
        return multi_positive_loss(torch.cat(columns), groups, temperature=self.temperature, variant=self.variant)

    def get_config_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "variant": self.variant}
