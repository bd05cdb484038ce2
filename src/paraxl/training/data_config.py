"""The training config's ``data:`` section: one model per data kind, each with only its keys.

``kind`` picks the model (a pydantic discriminated union); a key of another kind is refused
with the kinds it applies to (see :mod:`paraxl.training.config_errors`). Readers per kind:
:mod:`paraxl.data.readers`; the mapping from section to reader: :mod:`paraxl.training.data_loading`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, model_validator

from paraxl.losses.step import SECTION_CONFIG


class _DataSection(BaseModel):
    """Keys every data kind has."""

    model_config = SECTION_CONFIG
    reads_data_dir: ClassVar[bool] = False  # read from the data directory (not from `paths`)

    kind: str
    languages: list[str] | None = None  # None: every language the kind has
    on_error: Literal["raise", "skip"] = "raise"
    # pair losses on aligned data: share of pairs whose positive (and explicit negatives) come from
    # a translation of the anchor's unit, i.e. cross-lingual pairs (see training.layout.TranslationPositives)
    translation_positives: float = Field(default=0.0, ge=0.0, le=1.0)
    # pair losses: add a PAWS-style word swap of each unit's source sentence to its explicit
    # negatives (see data.word_swap); give `loss.explicit_negatives` room for it
    swap_negatives: bool = False


class PawsxData(_DataSection):
    """PAWS-X from the data directory: one unit per sentence1 and its label-1 partners."""

    reads_data_dir: ClassVar[bool] = True

    kind: Literal["pawsx"] = "pawsx"
    split: str = "train"  # train/validation/test (resplit) or dev_2k/... (official)
    protocol: Literal["resplit", "official"] = "resplit"


class XnliData(_DataSection):
    """XNLI from the data directory: each premise / hypothesis with its translations."""

    reads_data_dir: ClassVar[bool] = True

    kind: Literal["xnli"] = "xnli"
    splits: list[str] = Field(default_factory=lambda: ["dev", "test"])


class _FileData(_DataSection):
    min_files: ClassVar[int] = 1

    paths: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _paths_fit_kind(self) -> _FileData:
        if not self.paths:
            raise ValueError(f"data kind {self.kind!r} needs `paths`")
        if len(self.paths) < self.min_files:
            raise ValueError(f"data kind {self.kind!r} needs at least {self.min_files} aligned files in `paths`")
        if self.languages is not None and len(self.languages) != len(self.paths):
            raise ValueError("`languages` must name one language per file in `paths`")
        return self


class ParallelData(_FileData):
    """Line-aligned text files, one per language (line i of every file: one group)."""

    min_files: ClassVar[int] = 2

    kind: Literal["parallel"] = "parallel"


class PairsData(_FileData):
    """Labelled pair files (TSV/CSV/JSONL), one per language; files of distinct languages are
    aligned by their ``id`` column."""

    kind: Literal["pairs"] = "pairs"
    first: str = "sentence1"
    second: str = "sentence2"
    label: str | None = "label"


# the training config's `data:` section: one of these, picked by its `kind`
TrainData = Annotated[PawsxData | PairsData | ParallelData | XnliData, Field(discriminator="kind")]
