"""Cross-lingual gold pairs for cross-encoder training (data.cross_lingual_pairs, ``data.cross_lingual``).

Oracles read the resplit files with a plain loop (no paraxl reader); the poison test puts
validation/test texts under the train ids and checks that none of them reaches the train pairs.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.data.cross_lingual_pairs import cross_lingual_pairs
from paraxl.data.readers import PAWSX_LANGUAGES, read_pawsx_pairs
from paraxl.errors import InputError
from paraxl.training.config_kinds import load_train_config
from paraxl.training.cross_encoder_config import CrossEncoderTrainConfig, resume_settings
from paraxl.training.cross_encoder_data import read_train_pairs

from .scripts import REPO
from .training_helpers import fake_pawsx

Oracle = set[tuple[str, str, str, str, str, int]]  # (id, A, B, sentence1 of A, sentence2 of B, label)


def naive_rows(data_dir: Path, split: str, language: str) -> dict[str, tuple[str, str, int]]:
    """id -> (sentence1, sentence2, label) of one resplit file, by splitting its lines."""
    # split at "\n" only: a ko train text holds a character str.splitlines() would also split at
    text = (data_dir / "pawsx" / "resplit" / language / f"{split}.tsv").read_bytes().decode("utf-8")
    lines = text.removesuffix("\n").split("\n")
    assert lines[0].split("\t") == ["id", "sentence1", "sentence2", "label"]
    rows = {}
    for line in lines[1:]:
        key, first, second, label = line.split("\t")
        rows[key] = (first, second, int(label))
    return rows


def naive_cells(data_dir: Path, languages: tuple[str, ...]) -> tuple[Oracle, dict[str, int]]:
    """Every usable cross-lingual train pair, and the number of usable cells per id."""
    files = {language: naive_rows(data_dir, "train", language) for language in languages}
    oracle: Oracle = set()
    per_id: Counter[str] = Counter()
    for a in languages:
        for b in languages:
            if a == b:
                continue
            for key, (first, _, label) in files[a].items():
                if key not in files[b]:
                    continue
                _, second, label_b = files[b][key]
                if label == label_b and first.strip() != "NS" and second.strip() != "NS":
                    oracle.add((key, a, b, first, second, label))
                    per_id[key] += 1
    return oracle, dict(per_id)


def as_tuples(rows: list[Any]) -> list[tuple[str, str, str, str, str, int]]:
    out = []
    for pair in rows:
        a, b = pair.language.split("-")
        out.append((pair.key, a, b, pair.first, pair.second, pair.label))
    return out


def test_all_cells_are_exactly_the_train_units_of_the_files(data_dir: Path) -> None:
    oracle, _ = naive_cells(data_dir, PAWSX_LANGUAGES)
    train = read_pawsx_pairs(data_dir, "train")
    drawn = cross_lingual_pairs(train, languages=PAWSX_LANGUAGES, pairs_per_unit=42, seed=0)
    got = as_tuples(drawn.rows)
    assert len(got) == len(set(got)) and set(got) == oracle
    assert all(a != b for _, a, b, *_ in got)
    assert sum(drawn.cells.values()) == len(got) and len(drawn.cells) == 42
    assert drawn.units == 2409 and drawn.unusable == 2409 * 42 - len(oracle)
    # the label is both source rows' label (the oracle's second file checked above, the first here)
    files = {language: naive_rows(data_dir, "train", language) for language in PAWSX_LANGUAGES}
    assert all(files[a][key][2] == label == files[b][key][2] for key, a, b, _, _, label in got)


def test_pairs_per_unit_draws_that_many_distinct_usable_cells_per_id_from_the_seed(data_dir: Path) -> None:
    languages = ("en", "de", "zh")
    oracle, per_id = naive_cells(data_dir, languages)
    train = read_pawsx_pairs(data_dir, "train", languages)
    drawn = cross_lingual_pairs(train, languages=languages, pairs_per_unit=2, seed=5)
    got = as_tuples(drawn.rows)
    assert set(got) <= oracle and len(got) == len(set(got))
    assert Counter(key for key, *_ in got) == Counter({key: min(2, n) for key, n in per_id.items()})
    again = cross_lingual_pairs(
        read_pawsx_pairs(data_dir, "train", languages), languages=languages, pairs_per_unit=2, seed=5
    )
    assert as_tuples(again.rows) == got  # same seed, same pairs in the same order
    other = cross_lingual_pairs(train, languages=languages, pairs_per_unit=2, seed=6)
    assert set(as_tuples(other.rows)) != set(got)
    assert set(drawn.cells) == {f"{a}-{b}" for a in languages for b in languages if a != b}
    # the resplit keeps every English validation/test sentence out of train
    held_out = {
        text
        for split in ("validation", "test")
        for row in naive_rows(data_dir, split, "en").values()
        for text in row[:2]
    }
    assert not held_out & {pair.first for pair in drawn.rows if pair.language.startswith("en-")}
    assert not held_out & {pair.second for pair in drawn.rows if pair.language.endswith("-en")}


def _write_split(folder: Path, split: str, rows: list[tuple[str, str, str, int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{key}\t{first}\t{second}\t{label}\n" for key, first, second, label in rows)
    (folder / f"{split}.tsv").write_text("id\tsentence1\tsentence2\tlabel\n" + body)


def poisoned_resplit(root: Path, languages: tuple[str, ...]) -> Path:
    """Train texts per language; validation and test reuse the train ids with POISON texts."""
    for language in languages:
        folder = root / "pawsx" / "resplit" / language
        train = [(f"i{i}", f"{language} first {i}", f"{language} second {i}", i % 2) for i in range(6)]
        if language == "de":
            train[1] = ("i1", "NS", "de second 1", 1)  # untranslated sentence1: no de -> X pair of i1
            train[2] = ("i2", "de first 2", "de second 2", 1)  # label disagrees with the others' 0: no de pair
        _write_split(folder, "train", train)
        for split in ("validation", "test"):
            _write_split(folder, split, [(f"i{i}", f"POISON {split} {i}", f"POISON {split} b{i}", 1) for i in range(6)])
    return root


CONFIG = """\
model:
  kind: cross_encoder
  name: some/model
data:
  kind: pawsx
  languages: [en, de, fr]
  cross_lingual:
    pairs_per_unit: 6
batch_size: 16
output_dir: runs/x
"""


def _load(tmp_path: Path, text: str, *overrides: str) -> CrossEncoderTrainConfig:
    path = tmp_path / "ce.yaml"
    path.write_text(text)
    config = load_train_config(path, overrides)
    assert isinstance(config, CrossEncoderTrainConfig)
    return config


def test_no_validation_or_test_sentence_reaches_the_train_pairs(tmp_path: Path) -> None:
    data = poisoned_resplit(tmp_path / "data", ("en", "de", "fr"))
    config = _load(tmp_path, CONFIG)
    pairs = read_train_pairs(config.data, data, seed=config.seed)
    assert not [pair for pair in pairs.rows if "POISON" in pair.first + pair.second]
    cross = [pair for pair in pairs.rows if "-" in pair.language]
    assert len(pairs.rows) == 6 * 3 - 1 + len(cross) and sum(pairs.cross_lingual.values()) == len(cross)
    oracle, per_id = naive_cells(data, ("en", "de", "fr"))
    assert set(as_tuples(cross)) == oracle and len(cross) == len(oracle)
    assert per_id == {"i0": 6, "i1": 4, "i2": 2, "i3": 6, "i4": 6, "i5": 6}  # NS side / label disagreement
    assert all(pair.first.split()[0] != pair.second.split()[0] for pair in cross)  # the two sides' languages


@pytest.mark.parametrize(
    ("change", "message", "line"),
    [
        (("  languages: [en, de, fr]\n", "  split: validation\n"), "resplit train split only", 4),
        (("  languages: [en, de, fr]\n", "  protocol: official\n  split: dev_2k\n"), "resplit train split only", 4),
        (("    pairs_per_unit: 6\n", "    languages: [en, ja]\n"), r"languages \['ja'\] are not among", 4),
        (("    pairs_per_unit: 6\n", "    languages: [en]\n"), "at least two languages", 8),
        (("    pairs_per_unit: 6\n", "    pairs_per_units: 2\n"), "did you mean 'pairs_per_unit'", 8),
        (("    pairs_per_unit: 6\n", "    pairs_per_unit: 0\n"), "greater than or equal to 1", 8),
        (("  languages: [en, de, fr]\n", "  languages: [en]\n"), "at least two languages", 4),
    ],
)
def test_a_bad_cross_lingual_option_is_an_input_error_at_its_line(
    tmp_path: Path, change: tuple[str, str], message: str, line: int
) -> None:
    with pytest.raises(InputError, match=message) as caught:
        _load(tmp_path, CONFIG.replace(*change))
    assert caught.value.line == line


def test_the_shipped_config_is_the_reference_plus_cross_lingual_pairs() -> None:
    reference = load_train_config(REPO / "configs" / "pawsx-cross-encoder.yaml")
    xling = load_train_config(REPO / "configs" / "pawsx-cross-encoder-xling.yaml")
    assert isinstance(reference, CrossEncoderTrainConfig) and isinstance(xling, CrossEncoderTrainConfig)
    assert reference.data.model_dump().pop("cross_lingual") is None
    dumped, dumped_reference = xling.model_dump(mode="json"), reference.model_dump(mode="json")
    assert dumped["data"].pop("cross_lingual") == {"pairs_per_unit": 2, "languages": None}
    dumped_reference["data"].pop("cross_lingual")
    assert dumped.pop("output_dir") != dumped_reference.pop("output_dir") and dumped == dumped_reference
    settings, reference_settings = resume_settings(xling), resume_settings(reference)
    assert "cross_lingual" not in reference_settings  # the reference's folders still resume
    assert settings.pop("cross_lingual") == {"pairs_per_unit": 2, "languages": list(PAWSX_LANGUAGES)}
    assert settings == reference_settings


def test_without_the_option_a_data_section_is_recorded_as_before(tmp_path: Path) -> None:
    config = _load(tmp_path, CONFIG.replace("  cross_lingual:\n    pairs_per_unit: 6\n", "  split: validation\n"))
    assert resume_settings(config)["data"] == {
        "kind": "pawsx",
        "languages": ["en", "de", "fr"],
        "on_error": "raise",
        "translation_positives": 0.0,
        "swap_negatives": False,
        "split": "validation",
        "protocol": "resplit",
    }


def test_a_duplicate_id_is_an_input_error_at_its_line(tmp_path: Path) -> None:
    data = poisoned_resplit(tmp_path / "data", ("en", "de"))
    train = data / "pawsx" / "resplit" / "de" / "train.tsv"
    train.write_text(train.read_text() + "i3\tde again\tde again 2\t1\n")
    pairs = read_pawsx_pairs(data, "train", ("en", "de"))
    with pytest.raises(InputError, match="id 'i3' appears twice") as caught:
        cross_lingual_pairs(pairs, languages=("en", "de"), pairs_per_unit=1, seed=0)
    assert caught.value.line == 8 and caught.value.path is not None
    assert Path(caught.value.path).resolve() == train.resolve()


def test_paraxl_train_with_cross_lingual_pairs(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = fake_pawsx(tmp_path / "data")
    raw = {
        "model": {"kind": "cross_encoder", "name": str(tiny_model_dir), "max_seq_length": 32},
        "data": {"kind": "pawsx", "languages": ["en", "de"], "cross_lingual": {"pairs_per_unit": 1}},
        "batch_size": 16,
        "lr": 1e-3,
        "epochs": 1,
        "seed": 3,
        "output_dir": str(tmp_path / "run"),
    }
    config = tmp_path / "ce.yaml"
    config.write_text(json.dumps(raw))
    result = CliRunner().invoke(app, ["train", str(config), "--data-dir", str(data)])
    assert result.exit_code == 0, result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    cells = summary["data"]["cross_lingual_pairs"]
    assert set(cells) <= {"en-de", "de-en"} and sum(cells.values()) == 48  # 48 ids, NS row left out
    assert summary["data"]["pairs"] == {"en": 48, "de": 48} and summary["data"]["pairs_total"] == 144
    assert summary["training"]["steps"] == 9  # 144 / 16
    assert summary["settings"]["cross_lingual"] == {"pairs_per_unit": 1, "languages": ["en", "de"]}
    resume = json.loads((tmp_path / "run" / "resume.json").read_text())
    assert resume["settings"] == summary["settings"]
