"""Benchmark loaders: read the public evaluation data sets into :mod:`paraxl.evaluation.records`.

Every loader reads from a data directory laid out like ``shared/data`` (or from explicit files),
lists every file it read in the record's ``files``, and reports bad input as
:class:`paraxl.errors.InputError` naming the file and, where it makes sense, the line.
"""

from paraxl.evaluation.loaders.bucc import BUCC_PAIRS, BUCC_SPLITS, read_bucc
from paraxl.evaluation.loaders.classification import (
    MTOP_LANGUAGES,
    MTOP_SPLITS,
    SIB200_LABELS,
    SIB200_SPLITS,
    read_mtop,
    read_sib200,
    sib200_languages,
)
from paraxl.evaluation.loaders.sts import (
    STS17_TRACKS,
    STSB_LANGUAGES,
    STSB_SPLITS,
    read_korsts,
    read_sts17,
    read_sts17_extended,
    read_sts22,
    read_sts_pairs_file,
    read_stsb_cross_lingual,
    read_stsb_multi_mt,
)
from paraxl.evaluation.loaders.tatoeba import TATOEBA_LANGUAGES, TATOEBA_XTREME36, XNLI_TO_TATOEBA, read_tatoeba

__all__ = [
    "BUCC_PAIRS",
    "BUCC_SPLITS",
    "MTOP_LANGUAGES",
    "MTOP_SPLITS",
    "SIB200_LABELS",
    "SIB200_SPLITS",
    "STS17_TRACKS",
    "STSB_LANGUAGES",
    "STSB_SPLITS",
    "TATOEBA_LANGUAGES",
    "TATOEBA_XTREME36",
    "XNLI_TO_TATOEBA",
    "read_bucc",
    "read_korsts",
    "read_mtop",
    "read_sib200",
    "read_sts17",
    "read_sts17_extended",
    "read_sts22",
    "read_sts_pairs_file",
    "read_stsb_cross_lingual",
    "read_stsb_multi_mt",
    "read_tatoeba",
    "sib200_languages",
]
