"""Step layouts: translation positives (cross-lingual pairs drawn from aligned units)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from paraxl.data.records import TextUnit
from paraxl.training.layout import StepLayout, TranslationPositives, pair_layout

from .training_helpers import fake_pawsx, tiny_config

LANGUAGES = ("en", "de", "fr")


def aligned_units(meanings: int = 6) -> list[TextUnit]:
    """One unit per (meaning, language): two paraphrases and a label-0 partner, each tagged ``meaning/language``."""
    return [
        TextUnit(
            meaning,
            (f"{meaning}/{language} a", f"{meaning}/{language} b"),
            (language, language),
            (f"{meaning}/{language} neg",),
        )
        for meaning in range(meanings)
        for language in LANGUAGES
    ]


def tag(text: str) -> tuple[int, str]:
    meaning, rest = text.split("/")
    return int(meaning), rest.split()[0]


def rows(layout: StepLayout) -> list[tuple[str, str, str | None]]:
    """(anchor, positive, first explicit negative or None) per pair."""
    out = []
    for anchor, positive, negatives in zip(
        layout.anchors.tolist(), layout.positives.tolist(), layout.negatives.tolist(), strict=True
    ):
        out.append(
            (layout.texts[anchor], layout.texts[positive], layout.texts[negatives[0]] if negatives[0] >= 0 else None)
        )
    return out


def same_layout(a: StepLayout, b: StepLayout) -> bool:
    tensors = ("text_groups", "anchors", "positives", "pair_groups", "negatives")
    return a.texts == b.texts and all(torch.equal(getattr(a, name), getattr(b, name)) for name in tensors)


def test_rate_zero_draws_exactly_as_without_translations() -> None:
    units = aligned_units()
    batches = [units[0:9:3], units[10:18:3]]  # one language per meaning in a batch, as the sampler makes them
    plain = pair_layout(batches, np.random.default_rng(7), 1)
    zero = pair_layout(batches, np.random.default_rng(7), 1, TranslationPositives.of(units, 0.0))
    assert same_layout(plain, zero)


def test_rate_one_makes_every_pair_cross_lingual_with_the_translations_negative() -> None:
    units = aligned_units()
    batch = [units[0], units[4], units[8], units[9]]  # meanings 0..3 in en, de, fr, en
    layout = pair_layout([batch], np.random.default_rng(3), 1, TranslationPositives.of(units, 1.0))
    assert layout.pair_groups.tolist() == [0, 1, 2, 3]
    for unit, (anchor, positive, negative) in zip(batch, rows(layout), strict=True):
        own_language = unit.languages[0]
        assert anchor in unit.texts  # the anchor stays in its unit
        meaning, language = tag(positive)
        assert meaning == unit.group_id and language != own_language  # a translation's text
        assert negative == f"{meaning}/{language} neg"  # its label-0 partner, same language as the positive
    # every text keeps its group id: the positive is not a negative of anything in the step
    positives = layout.positives.tolist()
    assert layout.text_groups[positives].tolist() == [0, 1, 2, 3]


def test_rate_half_is_a_coin_per_pair() -> None:
    units = aligned_units(meanings=40)
    translations = TranslationPositives.of(units, 0.5)
    batch = units[0::3]  # the 40 English units
    crossed = 0
    for draw in range(25):
        for anchor, positive, _ in rows(pair_layout([batch], np.random.default_rng(draw), 1, translations)):
            crossed += tag(positive)[1] != tag(anchor)[1]
    # 1,000 Bernoulli(0.5) draws: 6 standard deviations either side of 500
    assert 405 <= crossed <= 595


def test_a_unit_without_translations_keeps_its_own_pairs() -> None:
    lonely = TextUnit(99, ("only a", "only b"), ("en", "en"), ("only neg",))
    units = [*aligned_units(2), lonely]
    layout = pair_layout([[lonely, units[0]]], np.random.default_rng(0), 1, TranslationPositives.of(units, 1.0))
    anchor, positive, negative = rows(layout)[0]
    assert {anchor, positive} == {"only a", "only b"} and negative == "only neg"


def test_config_refuses_translation_positives_for_multi_positive(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = {"kind": "pawsx", "translation_positives": 0.5}
    with pytest.raises(ValidationError, match="translation_positives works with the pair losses"):
        tiny_config(tiny_model_dir, tmp_path / "run", data, loss={"kind": "multi_positive"})
    with pytest.raises(ValidationError):
        tiny_config(tiny_model_dir, tmp_path / "run", {"kind": "pawsx", "translation_positives": 1.5})


def test_training_with_translation_positives_on_pawsx(tiny_model_dir: Path, tmp_path: Path) -> None:
    from paraxl.training.trainer import train

    data_dir = fake_pawsx(tmp_path / "data")
    data = {"kind": "pawsx", "translation_positives": 0.5}
    config = tiny_config(tiny_model_dir, tmp_path / "run", data, data_dir=str(data_dir), max_steps=2)
    summary = train(config, show_progress=False)
    assert summary.steps == 2 and summary.examples == 2 * 4
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
