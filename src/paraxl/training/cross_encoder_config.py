"""The training config of a cross-encoder (``model: {kind: cross_encoder}``): a small strict schema.

A cross-encoder reads both sentences of a pair at once and is trained on labelled pairs with
binary cross-entropy (:mod:`paraxl.training.cross_encoder`), so its config has none of the
bi-encoder's group, loss, mining or step keys: the model, the pairs (the bi-encoder's ``pawsx`` and
``pairs`` data kinds, read as labelled pairs; PAWS-X resplit train may add cross-lingual pairs of
the same ids, ``data.cross_lingual``), the batch size, learning rate, whole epochs, seed,
the output folder, an optional PAWS-X validation after every epoch and optional retrieval
negatives (pairs a retriever ranks high that are not paraphrases: a reranker's training data). The warm-up (10 % of the
steps, then linear decay) is fixed: it is the benchmark script's, whose checkpoint folders such a
run continues (see :func:`resume_settings`).

The schema is as strict as the bi-encoder's (unknown keys refused with a close match, numbers
finite) and its errors name the YAML line; :mod:`paraxl.training.config_kinds` picks the schema
from ``model.kind``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from paraxl.data.readers import PAWSX_LANGUAGES, check_languages
from paraxl.errors import InputError
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


class CrossLingual(_Strict):
    """Add cross-lingual pairs of the same ids (:mod:`paraxl.data.cross_lingual_pairs`) to the train pairs."""

    pairs_per_unit: int = Field(default=2, ge=1)  # per id: ordered language pairs drawn from the run's seed
    languages: list[str] | None = None  # either side's language; None: the data section's languages

    @field_validator("languages")
    @classmethod
    def _known(cls, languages: list[str] | None) -> list[str] | None:
        try:
            if languages is not None:
                check_languages(languages, PAWSX_LANGUAGES, "PAWS-X")
        except InputError as exc:
            raise ValueError(exc.reason) from None
        if languages is not None and len(languages) < 2:
            raise ValueError("cross-lingual pairs need at least two languages")
        return languages


class CrossEncoderPawsxData(PawsxData):
    """PAWS-X pairs; with ``cross_lingual``, also sentence1 of one language with sentence2 of another."""

    cross_lingual: CrossLingual | None = None

    @model_validator(mode="after")
    def _train_split_only(self) -> CrossEncoderPawsxData:
        if self.cross_lingual is None:
            return self
        # the resplit assigns whole ids to train / validation / test in every language at once, so its
        # train ids give cross-lingual pairs that share no id with the held-out splits (shared/data
        # README); pairs of a held-out split, or of the official files (whose test overlaps this
        # train), would leak into evaluation
        if (self.protocol, self.split) != ("resplit", "train"):
            raise ValueError(
                "cross_lingual pairs come from the resplit train split only: protocol resplit, split train"
            )
        outside = sorted(set(self.cross_languages) - set(self.languages or PAWSX_LANGUAGES))
        if outside:
            raise ValueError(f"cross_lingual languages {outside} are not among the data section's languages")
        if len(self.cross_languages) < 2:
            raise ValueError("cross-lingual pairs need at least two languages")
        return self

    @property
    def cross_languages(self) -> list[str]:
        """The languages cross-lingual pairs come from (the data section's where the option names none)."""
        chosen = self.cross_lingual.languages if self.cross_lingual is not None else None
        return list(chosen or self.languages or PAWSX_LANGUAGES)


class RetrievalNegatives(_Strict):
    """Label-0 pairs of each sentence1 with the sentences a bi-encoder retrieves for it among the
    language's sentence2s (with ``cross_lingual_queries``, other languages' too), its gold paraphrases
    left out (:mod:`paraxl.training.retrieval_negatives`).

    PAWS-X's label-0 pairs are word swaps of their sentence1, so a cross-encoder trained on them
    alone never sees a sentence about something else, and scores such pairs higher than word swaps
    (RESULTS.md, issue 28): the very candidates a retriever hands a reranker. These are they.
    """

    # the retriever whose candidates the cross-encoder will rerank: a sentence embedder (folder or spec)
    miner: str
    per_query: int = Field(default=1, ge=1, le=100)  # negatives per distinct sentence1 with a paraphrase
    # candidates: the miner's top range_max (None: sentence-transformers' default, 10 x per_query + the
    # most paraphrases of one sentence1)
    range_max: int | None = Field(default=None, ge=1)
    # a candidate within this share of the query's lowest paraphrase cosine is left out as a likely
    # unlabelled paraphrase (NV-Retriever's TopK-PercPos, 0.05)
    relative_margin: float = Field(default=0.05, ge=0.0, lt=1.0)
    batch_size: int = Field(default=64, ge=1)  # sentences per forward pass of the miner
    # languages whose sentence1s also search every other language's sentence2s (PAWS-X ids give the
    # gold paraphrases there): the candidates of a cross-lingual search, e.g. [en] for English queries
    # against a German corpus; [] mines within each language only
    cross_lingual_queries: list[str] = Field(default_factory=list)


# the labelled pairs it trains on: the bi-encoder's data kinds that hold pairs with 0/1 labels
CrossEncoderData = Annotated[CrossEncoderPawsxData | PairsData, Field(discriminator="kind")]


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
    # batches of pairs of similar token length (training.cross_encoder.LengthGroupedBatches): on
    # PAWS-X 1.02x the real tokens are run instead of 1.69x; other batches than the reference's
    length_grouped: bool = False
    # bf16 autocast in the trainer's forward passes; auto: bf16 where the hardware has it natively
    # (AVX-512-BF16 / AMX, a bf16 GPU), fp32 elsewhere, as the bi-encoder's `precision`
    precision: Literal["auto", "fp32", "bf16"] = "fp32"
    # with a miner: label-0 pairs of each sentence1 with what that retriever finds for it (a reranker's negatives)
    retrieval_negatives: RetrievalNegatives | None = None

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

    @model_validator(mode="after")
    def _queries_among_the_languages(self) -> CrossEncoderTrainConfig:
        queries = [] if self.retrieval_negatives is None else self.retrieval_negatives.cross_lingual_queries
        if not queries:
            return self
        # a query's gold paraphrases in another language come from the rows of the same id: PAWS-X's
        # languages, or pair files named with their languages (aligned by their id column)
        default = list(PAWSX_LANGUAGES) if isinstance(self.data, PawsxData) else []
        languages = self.data.languages or default
        if len(set(queries)) < len(queries):
            raise ValueError(f"retrieval_negatives.cross_lingual_queries names a language twice: {queries}")
        if len(set(languages)) < 2:
            raise ValueError(
                "retrieval_negatives.cross_lingual_queries needs at least two data languages "
                "(pair files: name one language per file in `languages`)"
            )
        outside = sorted(set(queries) - set(languages))
        if outside:
            raise ValueError(f"retrieval_negatives.cross_lingual_queries {outside} are not among the data's languages")
        return self

    @property
    def reads_data_dir(self) -> bool:
        return isinstance(self.data, PawsxData) or self.validation is not None


def resume_settings(
    config: CrossEncoderTrainConfig, precision: str = "fp32", miner_fingerprint: str | None = None
) -> dict[str, Any]:
    """What a resumed run must share with the sittings before it (``resume.json``'s ``settings``).

    ``precision``: what the config's ``precision`` resolved to on this machine (an ``auto`` run
    resumed where it resolves otherwise is refused, not continued at another precision).
    ``miner_fingerprint``: the weights of ``retrieval_negatives.miner`` (another miner, other pairs).

    PAWS-X resplit train pairs read strictly give the dict ``benchmarks/cross_encoder_pawsx.py``
    writes (no train limit, the languages), so a run of this config continues that script's
    ``--checkpoint-dir`` folder; other data is named by its whole section.
    """
    model, data = config.model, config.data
    section = data.model_dump(mode="json")
    if section.get("cross_lingual") is None:
        section.pop("cross_lingual", None)  # absent: the settings of the runs from before the option
    rows: dict[str, Any] = {"data": section}
    if isinstance(data, PawsxData) and (data.split, data.protocol, data.on_error) == ("train", "resplit", "raise"):
        rows = {"limit_train": None, "languages": list(data.languages or PAWSX_LANGUAGES)}
        if isinstance(data, CrossEncoderPawsxData) and data.cross_lingual is not None:
            # the effective languages: naming the data section's languages or leaving them out is one run
            xling = {"pairs_per_unit": data.cross_lingual.pairs_per_unit, "languages": data.cross_languages}
            rows["cross_lingual"] = xling
    if config.length_grouped:  # absent when off: the settings of the runs from before the option
        rows["length_grouped"] = True
    if precision != "fp32":  # likewise
        rows["precision"] = precision
    if config.retrieval_negatives is not None:  # likewise
        negatives = config.retrieval_negatives.model_dump(mode="json", exclude={"batch_size"})
        if not negatives["cross_lingual_queries"]:
            del negatives["cross_lingual_queries"]  # absent: the settings of the runs from before the option
        rows["retrieval_negatives"] = {**negatives, "miner_fingerprint": miner_fingerprint}
    return run_settings(
        model.name, config.epochs, config.batch_size, config.lr, model.max_seq_length, config.seed, rows
    )
