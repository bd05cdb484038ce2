"""LASER's Tatoeba test set: up to 1000 sentence pairs between each of 112 languages and English.

Layout under ``data_dir``::

    tatoeba/v1/tatoeba.{xxx}-eng.{xxx}    one sentence per line (source)
    tatoeba/v1/tatoeba.{xxx}-eng.eng      its English translation on the same line (target)

Line i of one file translates line i of the other, so both must have as many lines. An empty line
is kept as an empty sentence rather than dropped, so that alignment survives; the published files
contain no empty lines at all (checked on all 224 files), so one would mean a damaged copy and
shows up as an empty text in the result.
"""

from __future__ import annotations

from pathlib import Path

from paraxl.evaluation.loaders._common import check_choice, check_same_length, data_file, read_lines
from paraxl.evaluation.records import ParallelCorpus

__all__ = ["TATOEBA_LANGUAGES", "TATOEBA_XTREME36", "XNLI_TO_TATOEBA", "read_tatoeba"]

# The 112 languages of tatoeba/v1 (LASER's codes, mostly ISO 639-3), in file-name order.
TATOEBA_LANGUAGES: tuple[str, ...] = (
    "afr", "amh", "ang", "ara", "arq", "arz", "ast", "awa", "aze", "bel", "ben", "ber", "bos", "bre",
    "bul", "cat", "cbk", "ceb", "ces", "cha", "cmn", "cor", "csb", "cym", "dan", "deu", "dsb", "dtp",
    "ell", "epo", "est", "eus", "fao", "fin", "fra", "fry", "gla", "gle", "glg", "gsw", "heb", "hin",
    "hrv", "hsb", "hun", "hye", "ido", "ile", "ina", "ind", "isl", "ita", "jav", "jpn", "kab", "kat",
    "kaz", "khm", "kor", "kur", "kzj", "lat", "lfn", "lit", "lvs", "mal", "mar", "max", "mhr", "mkd",
    "mon", "nds", "nld", "nno", "nob", "nov", "oci", "orv", "pam", "pes", "pms", "pol", "por", "ron",
    "rus", "slk", "slv", "spa", "sqi", "srp", "swe", "swg", "swh", "tam", "tat", "tel", "tgl", "tha",
    "tuk", "tur", "tzl", "uig", "ukr", "urd", "uzb", "vie", "war", "wuu", "xho", "yid", "yue", "zsm",
)  # fmt: skip

# The 36 languages XTREME evaluates on Tatoeba, in XTREME's order of ISO 639-1 codes
# (af ar bg bn de el es et eu fa fi fr he hi hu id it ja jv ka kk ko ml mr nl pt ru sw ta te th tl tr ur vi zh).
TATOEBA_XTREME36: tuple[str, ...] = (
    "afr", "ara", "bul", "ben", "deu", "ell", "spa", "est", "eus", "pes", "fin", "fra",
    "heb", "hin", "hun", "ind", "ita", "jpn", "jav", "kat", "kaz", "kor", "mal", "mar",
    "nld", "por", "rus", "swh", "tam", "tel", "tha", "tgl", "tur", "urd", "vie", "cmn",
)  # fmt: skip


# The 14 non-English XNLI languages under their Tatoeba codes, for paper 2's transfer question:
# does training on some XNLI languages help the Tatoeba languages it never saw?
XNLI_TO_TATOEBA: dict[str, str] = {
    "ar": "ara", "bg": "bul", "de": "deu", "el": "ell", "es": "spa", "fr": "fra", "hi": "hin",
    "ru": "rus", "sw": "swh", "th": "tha", "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn",
}  # fmt: skip


def read_tatoeba(data_dir: str | Path, language: str) -> ParallelCorpus:
    """The ``{language}-eng`` test pairs: source = the ``language`` side, target = English."""
    check_choice(language, TATOEBA_LANGUAGES, "Tatoeba language")
    stem = f"tatoeba/v1/tatoeba.{language}-eng"
    source_path = data_file(data_dir, f"{stem}.{language}", f"Tatoeba {language} side")
    target_path = data_file(data_dir, f"{stem}.eng", f"Tatoeba English side of {language}-eng")
    source = read_lines(source_path)
    target = read_lines(target_path)
    check_same_length(source_path, len(source), target_path, len(target), "line")
    return ParallelCorpus(
        name=f"{language}-eng", source=tuple(source), target=tuple(target), files=(source_path, target_path)
    )
