"""The training config: typed, strict, located errors, overrides, shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from paraxl.errors import InputError
from paraxl.losses.additive_margin import AdditiveMarginConfig, InfoNCEConfig
from paraxl.training.config import TrainConfig, load_config, upgrade_record

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

MINIMAL = """\
data:
  kind: pawsx
output_dir: runs/x
max_steps: 10
loss:
  kind: additive_margin
  margin: 0.2
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert config.loss.margin == 0.2
    assert config.model.name == "bundled:multilingual-e5-small"
    assert config.model.freeze_word_embeddings
    assert not config.uses_grad_cache


def test_unknown_key_names_line_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "  margn: 0.3\n")
    with pytest.raises(InputError) as caught:
        load_config(path)
    assert caught.value.line == 8
    assert "unknown key 'loss.margn'" in str(caught.value)
    assert "did you mean 'margin'" in str(caught.value)


def test_wrong_type_names_line(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_config(write(tmp_path, MINIMAL.replace("margin: 0.2", "margin: wide")))
    assert caught.value.line == 7
    assert "loss.margin" in str(caught.value)


def test_overrides_apply_and_are_checked(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    config = load_config(path, ["loss.margin=0.5", "mining.enabled=true", "mini_batches_per_step=4"])
    assert config.loss.margin == 0.5
    assert config.mining.enabled and config.uses_grad_cache
    with pytest.raises(InputError, match=r"override .loss\.scal=3.*did you mean .scale."):
        load_config(path, ["loss.scal=3"])
    with pytest.raises(InputError, match=r"expected key\.path=value"):
        load_config(path, ["loss.margin"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("epochs: 1\n", "exactly one of `max_steps` and `epochs`"),
        ("mining:\n  enabled: true\n", "mini_batches_per_step"),
        ("mining:\n  enabled: true\nmini_batches_per_step: 2\nvalidation: {every_steps: 0}\n", "greater than or equal"),
    ],
)
def test_cross_field_rules(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config(write(tmp_path, MINIMAL + extra))


def test_mining_rejects_multi_positive(tmp_path: Path) -> None:
    # (without `margin`, which multi_positive does not have)
    text = MINIMAL.replace("additive_margin\n  margin: 0.2", "multi_positive")
    text += "mining: {enabled: true}\nmini_batches_per_step: 2\n"
    with pytest.raises(InputError, match="mining works with the pair losses"):
        load_config(write(tmp_path, text))


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not valid YAML") as caught:
        load_config(write(tmp_path, "data: [unclosed\n"))
    assert caught.value.line is not None
    with pytest.raises(InputError, match="no such config file"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(InputError, match="missing required key 'data'"):
        load_config(write(tmp_path, "output_dir: x\nmax_steps: 1\n"))


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    from paraxl.training.config_kinds import load_train_config

    config = load_train_config(path)  # a bi-encoder's, or a cross-encoder's (model.kind)
    assert config.output_dir


# ---------------------------------------------------------------- kinds: only their own keys

LOSS_KEYS = {
    "additive_margin": {"margin": "0.2", "scale": "10.0", "direction": "forward", "explicit_negatives": "1"},
    "info_nce": {"temperature": "0.1", "explicit_negatives": "1"},
    "multi_positive": {"temperature": "0.1", "variant": "log_sum_prob", "members_per_group": "3"},
    "cosent": {"scale": "10.0", "similarity": "angle"},
}
INAPPLICABLE_LOSS_KEYS = [
    (kind, key, sorted(other for other, keys in LOSS_KEYS.items() if key in keys))
    for kind in LOSS_KEYS
    for key in sorted({key for keys in LOSS_KEYS.values() for key in keys} - LOSS_KEYS[kind].keys())
]


@pytest.mark.parametrize(("kind", "key", "applies_to"), INAPPLICABLE_LOSS_KEYS)
def test_a_loss_key_of_another_kind_is_refused_with_its_line(
    tmp_path: Path, kind: str, key: str, applies_to: list[str]
) -> None:
    value = next(keys[key] for keys in LOSS_KEYS.values() if key in keys)
    text = f"data:\n  kind: pawsx\noutput_dir: runs/x\nmax_steps: 10\nloss:\n  kind: {kind}\n  {key}: {value}\n"
    with pytest.raises(InputError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.line == 7
    assert str(caught.value).endswith(
        f"`{key}` does not apply to loss kind {kind}; it applies to {', '.join(applies_to)}"
    )
    assert str(tmp_path / "config.yaml") in str(caught.value)


DATA_KEYS = {
    "pawsx": "split: train\n  protocol: resplit",
    "xnli": "splits: [dev]",
    "parallel": "paths: [a.txt, b.txt]",
    "pairs": "paths: [a.tsv]\n  first: s1\n  second: s2\n  label: y",
}
INAPPLICABLE_DATA_KEYS = [
    ("pawsx", "paths: [a.tsv]", "paths", "pairs, parallel"),
    ("pawsx", "splits: [dev]", "splits", "xnli"),
    ("pawsx", "first: s1", "first", "pairs"),
    ("xnli", "split: train", "split", "pawsx"),
    ("xnli", "protocol: official", "protocol", "pawsx"),
    ("xnli", "paths: [a.tsv]", "paths", "pairs, parallel"),
    ("parallel", "label: y", "label", "pairs"),
    ("parallel", "second: s2", "second", "pairs"),
    ("pairs", "splits: [dev]", "splits", "xnli"),
    ("pairs", "protocol: resplit", "protocol", "pawsx"),
]


@pytest.mark.parametrize(("kind", "line", "key", "applies_to"), INAPPLICABLE_DATA_KEYS)
def test_a_data_key_of_another_kind_is_refused_with_its_line(
    tmp_path: Path, kind: str, line: str, key: str, applies_to: str
) -> None:
    text = f"output_dir: runs/x\nmax_steps: 10\ndata:\n  {DATA_KEYS[kind]}\n  kind: {kind}\n  {line}\n"
    with pytest.raises(InputError) as caught:
        load_config(write(tmp_path, text))
    assert caught.value.line == text.count("\n")  # the last line: the inapplicable key
    assert f"`{key}` does not apply to data kind {kind}; it applies to {applies_to}" in str(caught.value)


@pytest.mark.parametrize("kind", sorted(DATA_KEYS))
def test_each_data_kind_takes_its_own_keys(tmp_path: Path, kind: str) -> None:
    config = load_config(
        write(tmp_path, f"output_dir: runs/x\nmax_steps: 10\ndata:\n  kind: {kind}\n  {DATA_KEYS[kind]}\n")
    )
    assert config.data.kind == kind


def test_an_unknown_kind_and_a_missing_kind_name_their_line(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"loss\.kind: 'info_nse' is not a loss kind; .*did you mean 'info_nce'"
    ) as caught:
        load_config(write(tmp_path, MINIMAL.replace("additive_margin", "info_nse")))
    assert caught.value.line == 6
    with pytest.raises(InputError, match=r"missing required key 'data\.kind'") as caught:
        load_config(write(tmp_path, MINIMAL.replace("kind: pawsx", "split: train")))
    assert caught.value.line == 1
    with pytest.raises(InputError, match=r"data: data kind 'pairs' needs `paths`"):
        load_config(write(tmp_path, MINIMAL.replace("kind: pawsx", "kind: pairs")))


def test_a_loss_section_without_kind_is_additive_margin(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL.replace("  kind: additive_margin\n", "")))
    assert config.loss == AdditiveMarginConfig(margin=0.2)


def test_overriding_a_kind_drops_the_files_keys_of_the_old_kind(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)  # additive_margin with margin 0.2
    config = load_config(path, ["loss.kind=info_nce", "loss.temperature=0.1"])
    assert config.loss == InfoNCEConfig(temperature=0.1)
    # a key that an override sets is the user's: refused, not dropped
    with pytest.raises(
        InputError, match=r"override 'loss\.margin=0\.5': `margin` does not apply to loss kind info_nce"
    ):
        load_config(path, ["loss.margin=0.5", "loss.kind=info_nce"])
    with pytest.raises(
        InputError, match=r"override 'loss\.margin=0\.5': `margin` does not apply to loss kind info_nce"
    ):
        load_config(path, ["loss.kind=info_nce", "loss.margin=0.5"])


# today's defaults of every kind: what the flat sections (one model for every kind) gave
FLAT_LOSS_DEFAULTS = {
    "margin": 0.3,
    "scale": 20.0,
    "direction": "both",
    "temperature": 0.05,
    "variant": "mean_log_prob",
    "members_per_group": None,
    "explicit_negatives": 1,
}
FLAT_DATA_DEFAULTS = {
    "split": "train",
    "protocol": "resplit",
    "splits": ["dev", "test"],
    "languages": None,
    "paths": [],
    "first": "sentence1",
    "second": "sentence2",
    "label": "label",
    "on_error": "raise",
    "translation_positives": 0.0,
    "swap_negatives": False,
}


@pytest.mark.parametrize("kind", sorted(set(LOSS_KEYS) - {"cosent"}))  # cosent came after the flat section
def test_loss_defaults_equal_the_flat_sections(kind: str) -> None:
    dumped = TrainConfig.model_validate(
        {"data": {"kind": "pawsx"}, "output_dir": "x", "max_steps": 1, "loss": {"kind": kind}}
    ).model_dump(mode="json")["loss"]
    assert dumped == {"kind": kind} | {key: FLAT_LOSS_DEFAULTS[key] for key in dumped if key != "kind"}
    assert set(dumped) - {"kind"} == set(LOSS_KEYS[kind])
    assert TrainConfig.model_validate({"data": {"kind": "pawsx"}, "output_dir": "x", "max_steps": 1}).loss == (
        AdditiveMarginConfig()
    )


@pytest.mark.parametrize("kind", sorted(DATA_KEYS))
def test_data_defaults_equal_the_flat_section(kind: str) -> None:
    paths = {"pairs": ["a"], "parallel": ["a", "b"]}.get(kind)
    data = {"kind": kind} | ({"paths": paths} if paths else {})
    dumped = TrainConfig.model_validate({"data": data, "output_dir": "x", "max_steps": 1}).model_dump(mode="json")
    assert (
        dumped["data"]
        == {"kind": kind} | {key: FLAT_DATA_DEFAULTS[key] for key in dumped["data"] if key != "kind"} | data
    )


def test_a_record_of_the_flat_sections_upgrades_to_the_same_config(tmp_path: Path) -> None:
    # config.json / record.json written before the sections had kinds hold every key of every kind
    config = load_config(CONFIGS / "xnli-mpcl.yaml")
    flat = config.model_dump(mode="json")
    flat["loss"] = FLAT_LOSS_DEFAULTS | flat["loss"]
    flat["data"] = FLAT_DATA_DEFAULTS | flat["data"]
    with pytest.raises(ValidationError):
        TrainConfig.model_validate(flat)
    assert TrainConfig.model_validate(upgrade_record(flat)) == config
    assert upgrade_record(["not", "a", "mapping"]) == ["not", "a", "mapping"]
