"""PAWS-style word-swap negatives: what the swap keeps, what it changes, and how training uses it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from paraxl.data.records import TextUnit, TrainingData
from paraxl.data.word_swap import swap_words, with_swap_negatives

from .training_helpers import tiny_config

WORDS = ["river", "Paris", "the", "Anna", "quickly", "of", "Berlin", "garden", "a", "John", "walked", "stone"]
PUNCTUATION = ["", "", "", ",", ".", ")", "("]


def split_core(token: str) -> str:
    return "".join(ch for ch in token if ch.isalnum())


def random_sentence(rng: np.random.Generator) -> str:
    tokens = []
    for _ in range(int(rng.integers(4, 12))):
        word = WORDS[int(rng.integers(len(WORDS)))]
        mark = PUNCTUATION[int(rng.integers(len(PUNCTUATION)))]
        tokens.append(mark + word if mark == "(" else word + mark)
    return " ".join(tokens)


def test_a_swap_exchanges_exactly_two_words_and_keeps_punctuation_in_place() -> None:
    rng = np.random.default_rng(0)
    swapped_any = 0
    for _ in range(300):
        text = random_sentence(rng)
        swapped = swap_words(text)
        if swapped is None:
            continue
        swapped_any += 1
        before, after = text.split(" "), swapped.split(" ")
        assert len(before) == len(after)
        changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
        assert len(changed) == 2, (text, swapped)
        i, j = changed
        # the words trade places; each position keeps its own punctuation
        assert split_core(after[i]) == split_core(before[j]) and split_core(after[j]) == split_core(before[i])
        for k in changed:
            assert after[k].replace(split_core(after[k]), "") == before[k].replace(split_core(before[k]), "")
        assert Counter(map(split_core, before)) == Counter(map(split_core, after))  # same bag of words
        assert swapped == swap_words(text)  # deterministic
    assert swapped_any > 200


def test_names_are_swapped_before_other_words() -> None:
    assert swap_words("Flights from Boston to Denver leave daily") == "Flights from Denver to Boston leave daily"
    # the first word's capital is the sentence's, not a name's: "The" is not a candidate
    assert swap_words("The train from Lisbon to Porto, late again.") == "The train from Porto to Lisbon, late again."


def test_without_two_names_it_swaps_two_longer_words() -> None:
    text = "the black dog chased a small cat"
    swapped = swap_words(text)
    assert swapped is not None
    moved = {a for a, b in zip(text.split(), swapped.split(), strict=True) if a != b}
    assert len(moved) == 2 and moved <= {"black", "chased", "small"}


@pytest.mark.parametrize(
    "text",
    [
        "フォー・リバー地方議会とオーデュボン地方議会の合併により誕生しました。",  # no spaces: needs a segmenter
        "a cat sat",  # too short
        "the dogs and the dogs of it",  # only one distinct longer word
    ],
)
def test_no_swap_when_nothing_is_worth_swapping(text: str) -> None:
    assert swap_words(text) is None


def test_units_get_the_swap_of_their_first_text_as_a_negative() -> None:
    units = [
        TextUnit(
            0,
            ("Flights from Boston to Denver leave daily", "Daily flights leave Boston for Denver"),
            ("en", "en"),
            ("x",),
        ),
        TextUnit(1, ("短い文です。", "短い文。"), ("ja", "ja")),
        # the swap of the first text is the second text: a paraphrase, so it is not made a negative
        TextUnit(2, ("I met Anna and Maria in town", "I met Maria and Anna in town"), ("en", "en")),
    ]
    out = with_swap_negatives(TrainingData(units, skipped_rows=3, dropped_units=1))
    assert out.units[0].negatives == ("x", "Flights from Denver to Boston leave daily")
    assert out.units[0].texts == units[0].texts and out.units[0].group_id == 0
    assert out.units[1] == units[1] and out.units[2] == units[2]
    assert (out.skipped_rows, out.dropped_units) == (3, 1)


def test_config_needs_a_pair_loss_with_room_for_negatives(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = {"kind": "pawsx", "swap_negatives": True}
    with pytest.raises(ValidationError, match="swap_negatives adds explicit negatives"):
        tiny_config(tiny_model_dir, tmp_path / "run", data, loss={"kind": "multi_positive"})
    with pytest.raises(ValidationError, match="swap_negatives adds explicit negatives"):
        tiny_config(tiny_model_dir, tmp_path / "run", data, loss={"kind": "info_nce", "explicit_negatives": 0})


def write_named_pairs(path: Path, count: int = 12) -> Path:
    """PAWS-like pairs with names to swap: a paraphrase per source sentence."""
    names = ["Anna", "Boris", "Clara", "Dmitri", "Elena", "Farid"]
    rows = ["sentence1\tsentence2\tlabel"]
    for i in range(count):
        first, second = names[i % 6], names[(i + 1) % 6]
        rows.append(f"today {first} sent {i} letters to {second}\t{second} got {i} letters from {first} today\t1")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_training_loads_and_uses_swap_negatives(tiny_model_dir: Path, tmp_path: Path) -> None:
    from paraxl.training.data_loading import load_training_data
    from paraxl.training.trainer import train

    spec = {"kind": "pairs", "paths": [str(write_named_pairs(tmp_path / "pairs.tsv"))], "swap_negatives": True}
    config = tiny_config(
        tiny_model_dir,
        tmp_path / "run",
        spec,
        max_steps=2,
        batch_size=2,
        mini_batches_per_step=2,  # the experiment's setting: mined mega-batch, two explicit negatives per anchor
        mining={"enabled": True},
        loss={"kind": "additive_margin", "explicit_negatives": 2},
    )
    data = load_training_data(config.data, None)
    assert [group.negatives for group in data.units[:2]] == [
        ("today Boris sent 0 letters to Anna",),
        ("today Clara sent 1 letters to Boris",),
    ]
    summary = train(config, show_progress=False)
    assert summary.steps == 2
