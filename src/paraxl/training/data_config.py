"""The training config's ``data:`` section: one model per data kind, each with only its keys.

``kind`` picks the model (a pydantic discriminated union); a key of another kind is refused
with the kinds it applies to (see :mod:`paraxl.training.config_errors`). Readers per kind:
:mod:`paraxl.data.readers`; the mapping from section to reader: :mod:`paraxl.training.data_loading`.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from paraxl.data.readers import check_languages
from paraxl.data.sts_pairs import STS_LANGUAGES, check_sts_split
from paraxl.errors import InputError
from paraxl.losses.registry import scored_kinds
from paraxl.losses.step import SECTION_CONFIG, ScoredPairSteps, StepNeeds


class _DataSection(BaseModel):
    """Keys every data kind has."""

    model_config = SECTION_CONFIG
    reads_data_dir: ClassVar[bool] = False  # read from the data directory (not from `paths`)
    scored: ClassVar[bool] = False  # units are scored pairs (graded similarity), for the scored loss kinds

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


class StsData(_DataSection):
    """STS-B train pairs with gold scores from the data directory: stsb_multi_mt's 11 languages and
    KorSTS (``ko``), for a graded-similarity loss (``cosent``); see :mod:`paraxl.data.sts_pairs`."""

    reads_data_dir: ClassVar[bool] = True
    scored: ClassVar[bool] = True

    kind: Literal["sts"] = "sts"
    split: str = "train"  # or dev; the test splits are the evaluation's and refused

    @field_validator("split")
    @classmethod
    def _not_test(cls, split: str) -> str:
        try:
            return check_sts_split(split)
        except InputError as exc:
            raise ValueError(exc.reason) from None

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, languages: list[str] | None) -> list[str] | None:
        # at its YAML line, not when the files are read
        try:
            if languages is not None:
                check_languages(languages, STS_LANGUAGES, "STS")
        except InputError as exc:
            raise ValueError(exc.reason) from None
        return languages

    @model_validator(mode="after")
    def _no_pair_options(self) -> StsData:
        if self.translation_positives > 0:
            raise ValueError("data kind sts pairs each sentence1 with its own sentence2: translation_positives is 0")
        if self.swap_negatives:
            raise ValueError("data kind sts has no explicit negatives to add word swaps to: swap_negatives is false")
        return self


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
TrainData = Annotated[PawsxData | PairsData | ParallelData | XnliData | StsData, Field(discriminator="kind")]


def data_loss_mismatch(data: TrainData, needs: StepNeeds, loss_kind: str) -> str | None:
    """Why ``data`` cannot feed a loss of ``loss_kind`` (whose steps need ``needs``); None if it can.

    Scored pairs (graded similarity) and groups of one meaning are different data: a scored loss
    on groups would have no gold scores, a contrastive loss on scored pairs would take every pair,
    score 0 too, for a paraphrase.
    """
    scored_loss = isinstance(needs, ScoredPairSteps)
    if scored_loss and not data.scored:
        return f"loss kind {loss_kind} needs scored pairs (data kind sts), not data kind {data.kind}"
    if data.scored and not scored_loss:
        return (
            f"data kind {data.kind} holds scored pairs for a graded-similarity loss "
            f"({', '.join(scored_kinds())}), not loss kind {loss_kind}, which would take every pair for a paraphrase"
        )
    return None
