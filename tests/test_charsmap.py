from __future__ import annotations

import random
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import normalizers

from paraxl.modeling.charsmap import build_precompiled_charsmap, lookup, with_canonical_compositions


def random_table(seed: int) -> dict[int, str]:
    rng = random.Random(seed)
    codepoints = rng.sample([c for c in range(1, 0x30000) if not 0xD800 <= c <= 0xDFFF], 400)
    table = {}
    for cp in codepoints:
        table[cp] = "".join(chr(rng.choice([0x41, 0x20, 0xE9, 0x4E00, 0x1F600])) for _ in range(rng.randint(0, 3)))
    return table


def test_every_rule_found_and_others_absent() -> None:
    table = random_table(0)
    blob = build_precompiled_charsmap({chr(k): v for k, v in table.items()})
    for cp, target in table.items():
        assert lookup(blob, chr(cp)) == target
    unmapped = [c for c in range(0x20, 0x3000) if c not in table and not 0xD800 <= c <= 0xDFFF]
    assert all(lookup(blob, chr(c)) is None for c in unmapped[:2000])


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Mn", "Me", "Mc", "Cf", "Zl", "Zp", "Cc")), max_size=40)
)
def test_hf_precompiled_normalizer_applies_the_table(text: str) -> None:
    """The blob read by HF tokenizers' own Precompiled normalizer == str.translate with the table."""
    table = TABLE
    expected = text.translate({cp: target for cp, target in table.items()})
    assert PRECOMPILED.normalize_str(text) == expected


TABLE = {ord(c): c.upper() for c in "abcxyz"} | {0xFF21: "A", 0x00A0: " ", 0x2460: "1", ord("q"): ""}
PRECOMPILED = normalizers.Precompiled(build_precompiled_charsmap({chr(k): v for k, v in TABLE.items()}))


def test_canonical_compositions_are_added_and_shadowed_rules_dropped() -> None:
    rules = with_canonical_compositions({0x00C5: "A", 0x2126: "Ω"})
    assert rules["e\u0301"] == "é"  # decomposed é composes
    assert rules[unicodedata.normalize("NFD", "\u00c5")] == "A"  # NFD of a mapped codepoint keeps its mapping
    assert all(not any(key[:end] in rules for end in range(1, len(key))) for key in rules)
