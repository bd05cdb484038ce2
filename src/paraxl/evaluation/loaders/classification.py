"""Text classification benchmarks: SIB-200 topics and MTOP domains or intents.

SIB-200 layout under ``data_dir``::

    sib200/{lang_Script}/{train,dev,test}.tsv   header index_id category text (701 / 99 / 204 rows)
    sib200/{lang_Script}/labels.txt             the 7 topics, one per line (also accepted at sib200/labels.txt)

The SIB-200 files were written by pandas with CSV quoting inside the tab-separated layout: a text
that contains ``"`` is wrapped in quotes with its own quotes doubled (674 of the 21084 texts here,
e.g. ``"He said ""no."" twice"``). Those texts are unquoted, so they read as the FLORES-200
sentence (``He said "no." twice``) exactly as pandas and the Hugging Face copy give it; no field spans lines.

MTOP (Li et al., 2021), the published layout under a folder::

    mtop/{en,de,es,fr,hi,th}/{train,eval,test}.txt

tab-separated without header, 8 columns: id, intent (``IN:GET_MESSAGE``), slots, utterance,
domain (``messaging``), locale (``en_XX``), decoupled form, tokens as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from paraxl.errors import InputError
from paraxl.evaluation.loaders._common import check_choice, data_file, data_folder
from paraxl.evaluation.records import LabeledTexts
from paraxl.io.rows import iter_lines, iter_rows

__all__ = [
    "MTOP_LANGUAGES",
    "MTOP_SPLITS",
    "SIB200_LABELS",
    "SIB200_SPLITS",
    "read_mtop",
    "read_sib200",
    "sib200_languages",
]

SIB200_SPLITS = ("train", "dev", "test")
# The seven topics, in the order of SIB-200's labels.txt.
SIB200_LABELS = ("science/technology", "travel", "politics", "sports", "health", "entertainment", "geography")
MTOP_LANGUAGES = ("en", "de", "es", "fr", "hi", "th")
MTOP_SPLITS = ("train", "eval", "test")
_MTOP_COLUMNS = ("id", "intent", "slots", "utterance", "domain", "locale", "decoupled", "tokens")


def sib200_languages(data_dir: str | Path) -> tuple[str, ...]:
    """The ``lang_Script`` folders under ``sib200/`` that hold all three split files, sorted."""
    root = data_folder(data_dir, "sib200", "SIB-200 folder")
    found = tuple(
        sorted(
            folder.name
            for folder in root.iterdir()
            if folder.is_dir() and all((folder / f"{split}.tsv").is_file() for split in SIB200_SPLITS)
        )
    )
    if not found:
        raise InputError(
            f"no SIB-200 language folder (lang_Script/ with {', '.join(s + '.tsv' for s in SIB200_SPLITS)})", root
        )
    return found


def read_sib200(data_dir: str | Path, language: str, split: str) -> LabeledTexts:
    """One SIB-200 language and split; ``name`` is e.g. ``"eng_Latn.train"``.

    Labels are checked against ``labels.txt`` (the language's, else ``sib200/labels.txt``), or
    against :data:`SIB200_LABELS` when there is none; an unknown label is an error naming its line.
    """
    check_choice(split, SIB200_SPLITS, "SIB-200 split")
    if not (Path(data_dir) / "sib200" / language).is_dir():
        check_choice(language, sib200_languages(data_dir), "SIB-200 language")
    path = data_file(data_dir, f"sib200/{language}/{split}.tsv", f"SIB-200 {language} {split} file")
    files = [path]
    labels: tuple[str, ...] = SIB200_LABELS
    for candidate in (Path(data_dir) / "sib200" / language / "labels.txt", Path(data_dir) / "sib200" / "labels.txt"):
        if candidate.is_file():
            labels = _read_labels(candidate)
            files.append(candidate)
            break
    allowed = set(labels)
    texts: list[str] = []
    found: list[str] = []
    for row in iter_rows(path, "tsv", header=True, columns=("index_id", "category", "text")):
        label = row.fields["category"]
        if label not in allowed:
            source = files[1] if len(files) > 1 else "SIB200_LABELS"
            raise InputError(f"unknown category {label!r}; {source} lists {', '.join(labels)}", path, row.line)
        texts.append(_unquote(row.fields["text"], path, row.line))
        found.append(label)
    return LabeledTexts(name=f"{language}.{split}", texts=tuple(texts), labels=tuple(found), files=tuple(files))


def read_mtop(
    path_or_dir: str | Path, language: str, split: str, label: Literal["domain", "intent"] = "domain"
) -> LabeledTexts:
    """MTOP utterances with their domain (11 classes) or top-level intent (``IN:...``) as label.

    ``path_or_dir`` is the split file itself, the ``mtop`` folder (holding ``{language}/``), or a
    data directory holding ``mtop/``. text = the utterance column, kept as it is.
    """
    check_choice(language, MTOP_LANGUAGES, "MTOP language")
    check_choice(split, MTOP_SPLITS, "MTOP split")
    check_choice(label, ("domain", "intent"), "MTOP label kind")
    base = Path(path_or_dir)
    if base.is_file():
        path = base
    elif (base / "mtop").is_dir():
        path = data_file(base, f"mtop/{language}/{split}.txt", f"MTOP {language} {split} file")
    else:
        path = data_file(base, f"{language}/{split}.txt", f"MTOP {language} {split} file")
    texts: list[str] = []
    labels: list[str] = []
    for row in iter_rows(path, "tsv", header=_MTOP_COLUMNS):
        value = row.fields[label]
        if not value.strip():
            raise InputError(f"empty {label} (column {_MTOP_COLUMNS.index(label) + 1} of 8)", path, row.line)
        texts.append(row.fields["utterance"])
        labels.append(value)
    return LabeledTexts(name=f"{language}.{split}.{label}", texts=tuple(texts), labels=tuple(labels), files=(path,))


def _read_labels(path: Path) -> tuple[str, ...]:
    """The label list, one per line; empty lines and repeats are errors."""
    labels: dict[str, int] = {}
    for number, text in iter_lines(path):
        if not text.strip():
            raise InputError("empty line in the label list", path, number)
        if text in labels:
            raise InputError(f"label {text!r} repeats line {labels[text]}", path, number)
        labels[text] = number
    if not labels:
        raise InputError("the label list is empty", path)
    return tuple(labels)


def _unquote(field: str, path: Path, line: int) -> str:
    """A CSV-quoted field (``"...""..."``) as its text; a field not starting with a quote as it is."""
    if not field.startswith('"'):
        return field
    inner = field[1:-1]
    if len(field) < 2 or not field.endswith('"') or inner.replace('""', "").count('"'):
        raise InputError('malformed quoted text (expected "..." with inner quotes doubled)', path, line)
    return inner.replace('""', '"')
