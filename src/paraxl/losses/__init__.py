"""Contrastive losses as functions of embeddings (never of a model)."""

from paraxl.losses.additive_margin import additive_margin_loss, info_nce_loss
from paraxl.losses.multi_positive import multi_positive_loss

__all__ = ["additive_margin_loss", "info_nce_loss", "multi_positive_loss"]
