"""The training config of a cross-encoder (``model: {kind: cross_encoder}``): a small strict schema.

A cross-encoder reads both sentences of a pair at once and is trained on labelled pairs with
binary cross-entropy (:mod:`paraxl.training.cross_encoder`), so its config has none of the
bi-encoder's group, loss, mining or step keys: the model, the pairs (the bi-encoder's ``pawsx`` and
``pairs`` data kinds, read as labelled pairs), the batch size, learning rate, whole epochs, seed,
the output folder and an optional PAWS-X validation after every epoch. The warm-up (10 % of the
steps, then linear decay) is fixed: it is the benchmark script's, whose checkpoint folders such a
run continues (see :func:`resume_settings`).

The schema is as strict as the bi-encoder's (unknown keys refused with a close match, numbers
finite) and its errors name the YAML line; :mod:`paraxl.training.config_kinds` picks the schema
from ``model.kind``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator

from paraxl.data.readers import PAWSX_LANGUAGES
from paraxl.loading.specs import DEFAULT_MODEL
from paraxl.losses.step import SECTION_CONFIG
from paraxl.training.cross_encoder import run_settings
from paraxl.training.data_config import PairsData, PawsxData

CROSS_ENCODER = "cross_encoder"


class _Strict(BaseModel):
    model_config = SECTION_CONFIG  # unknown keys refused, numbers finite


class CrossEncoderModel(_Strict):
    """The backbone: a cross-encoder folder, or a sentence embedder's (a fresh 1-logit head on its encoder)."""

    kind: Literal["cross_encoder"]
    name: str = DEFAULT_MODEL
    max_seq_length: int = Field(default=128, ge=8)  # tokens per pair (both sentences); clamped to the model's


class CrossEncoderValidation(_Strict):
    """PAWS-X accuracy after every epoch at the threshold fitted on these pairs (all languages pooled)."""

    kind: Literal["pawsx"] = "pawsx"
    split: str = "validation"
    protocol: Literal["resplit", "official"] = "resplit"
    languages: list[str] | None = None  # None: all 7
    batch_size: int = Field(default=32, ge=1)  # pairs per forward pass


# the labelled pairs it trains on: the bi-encoder's data kinds that hold pairs with 0/1 labels
CrossEncoderData = Annotated[PawsxData | PairsData, Field(discriminator="kind")]


class CrossEncoderTrainConfig(_Strict):
    model: CrossEncoderModel
    data: CrossEncoderData
    validation: CrossEncoderValidation | None = None
    output_dir: str
    data_dir: str | None = None  # default: --data-dir or $PARAXL_DATA_DIR
    batch_size: int = Field(default=32, ge=1)  # pairs per optimizer step
    lr: float = Field(default=2e-5, gt=0.0)
    epochs: int = Field(default=3, ge=1, le=10_000)
    seed: int = Field(default=0, ge=0, lt=2**32)  # transformers.set_seed seeds numpy too (32 bits)

    @field_validator("data")
    @classmethod
    def _pairs_as_they_are(cls, data: PawsxData | PairsData) -> PawsxData | PairsData:
        # these build the bi-encoder's training groups; a cross-encoder reads each labelled pair once
        if data.translation_positives > 0 or data.swap_negatives:
            raise ValueError(
                "translation_positives and swap_negatives build a bi-encoder's groups; "
                "a cross-encoder trains on the labelled pairs as they are"
            )
        if isinstance(data, PairsData) and data.label is None:
            raise ValueError("a cross-encoder trains on 0/1 labels: `label` must name the label column")
        return data

    @property
    def reads_data_dir(self) -> bool:
        return isinstance(self.data, PawsxData) or self.validation is not None


def resume_settings(config: CrossEncoderTrainConfig) -> dict[str, Any]:
    """What a resumed run must share with the sittings before it (``resume.json``'s ``settings``).

    PAWS-X resplit train pairs read strictly give the dict ``benchmarks/cross_encoder_pawsx.py``
    writes (no train limit, the languages), so a run of this config continues that script's
    ``--checkpoint-dir`` folder; other data is named by its whole section.
    """
    model, data = config.model, config.data
    rows: dict[str, Any] = {"data": data.model_dump(mode="json")}
    if isinstance(data, PawsxData) and (data.split, data.protocol, data.on_error) == ("train", "resplit", "raise"):
        rows = {"limit_train": None, "languages": list(data.languages or PAWSX_LANGUAGES)}
    return run_settings(
        model.name, config.epochs, config.batch_size, config.lr, model.max_seq_length, config.seed, rows
    )
