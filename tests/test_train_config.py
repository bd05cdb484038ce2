"""The training config: typed, strict, located errors, overrides, shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from paraxl.errors import InputError
from paraxl.training.config import load_config

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
    text = MINIMAL.replace("additive_margin", "multi_positive") + "mining: {enabled: true}\nmini_batches_per_step: 2\n"
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
    config = load_config(path)
    assert config.output_dir
