"""Small training fixtures shared by the trainer tests: PAWS-like pair files and configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paraxl.data.readers import PAWSX_LANGUAGES
from paraxl.training.config import TrainConfig

ANIMALS = ["cat", "dog", "hund", "chat"]
PLACES = ["mat", "sofa", "bed", "roof", "car", "tree"]


def write_pairs(path: Path, groups: int = 24) -> Path:
    """PAWS-X layout: a paraphrase (label 1) and a word-swapped non-paraphrase (label 0) per source."""
    rows = ["id\tsentence1\tsentence2\tlabel"]
    for i in range(groups):
        animal, place = ANIMALS[i % 4], PLACES[i % 6]
        first = f"the {animal} {i} sat on the {place}"
        rows.append(f"p{i}\t{first}\ton the {place} the {animal} {i} sat\t1")
        rows.append(f"n{i}\t{first}\tthe {place} {i} sat on the {animal}\t0")
    path.write_text("\n".join(rows) + "\n")
    return path


def fake_pawsx(root: Path) -> Path:
    """A PAWS-X resplit folder: 7 languages x train/validation/test of PAWS-like pairs, one NS row each."""
    for language in PAWSX_LANGUAGES:
        folder = root / "pawsx" / "resplit" / language
        folder.mkdir(parents=True)
        for split, groups in (("train", 24), ("validation", 12), ("test", 16)):
            path = write_pairs(folder / f"{split}.tsv", groups=groups)
            with path.open("a") as handle:
                handle.write("ns0\tNS\tthe cat sat\t0\n")
    return root


def write_parallel(folder: Path, languages: int = 3, lines: int = 20) -> list[Path]:
    paths = []
    for lang in range(languages):
        path = folder / f"lang{lang}.txt"
        path.write_text("".join(f"{ANIMALS[lang]} {i} {PLACES[i % 6]} {'x' * lang}\n" for i in range(lines)))
        paths.append(path)
    return paths


def tiny_config(model_dir: Path, output_dir: Path, data: dict[str, Any], **fields: Any) -> TrainConfig:
    raw: dict[str, Any] = {
        "model": {"name": str(model_dir), "max_seq_length": 32},
        "data": data,
        "output_dir": str(output_dir),
        "batch_size": 4,
        "max_steps": 3,
        "checkpoint_every": 2,
        "log_every": 1,
        "optim": {"lr": 1e-3, "warmup_ratio": 0.0},
    }
    for key, value in fields.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = raw[key] | value
        else:
            raw[key] = value
    return TrainConfig.model_validate(raw)
