"""Union-find over ``(language, text)`` nodes: which texts are the same meaning.

Readers add a node per text (stripped; identical texts in one language are one node) and link
nodes that are paraphrases or translations. A component is one meaning: every unit built from it
gets the same ``group_id``, which is what keeps duplicates and translations out of one batch and
out of each other's negatives, even when they were never stated as pairs (A~B in one file, B~C in
another).

Evidence has two strengths. :meth:`GroupBuilder.link` (a label-1 pair, a row of aligned files) is
always obeyed. :meth:`GroupBuilder.link_translation` (alignment by id) yields to a
:meth:`GroupBuilder.forbid` (a label-0 pair) and never merges two meanings of its source language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paraxl.data.records import TextUnit


@dataclass(frozen=True)
class BuiltGroups:
    """Units turned into :class:`TextUnit` s, and how many candidate units did not survive."""

    units: list[TextUnit]
    dropped_units: int
    duplicate_units: int


class GroupBuilder:
    """Nodes are dense ints in order of first appearance; a component's root is its earliest node."""

    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._keys: list[tuple[str, str]] = []
        self._parent: list[int] = []
        self._differs: dict[int, set[int]] = {}  # root -> roots it must not be joined with
        self._languages: dict[int, set[str]] = {}  # root -> languages of its texts
        self.refused_links = 0

    def __len__(self) -> int:
        return len(self._keys)

    def node(self, language: str, text: str) -> int:
        """The node of ``text`` (stripped) in ``language``, created on first sight."""
        key = (language, text.strip())
        found = self._ids.get(key)
        if found is None:
            found = self._ids[key] = len(self._keys)
            self._keys.append(key)
            self._parent.append(found)
            self._languages[found] = {language}
        return found

    def language(self, node: int) -> str:
        return self._keys[node][0]

    def text(self, node: int) -> str:
        return self._keys[node][1]

    def find(self, node: int) -> int:
        """The component of ``node``: its earliest node (path halving keeps chains short)."""
        parent = self._parent
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def link(self, a: int, b: int) -> None:
        """Declare ``a`` and ``b`` the same meaning (a label-1 pair, one row of aligned files)."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self._merge(min(root_a, root_b), max(root_a, root_b))

    def link_translation(self, source: int, translation: int) -> bool:
        """Link ``translation`` to ``source`` unless other evidence says no; whether they now are linked.

        Alignment by id is weaker evidence than a label or a sentence's own language, so it is
        refused when it would join components that a :meth:`forbid` keeps apart, or two components
        that each already hold a text in ``source``'s language (a translation cannot make two
        meanings of that language one). Without this, one junk translation (PAWS-X ja has ``NS``
        for several unrelated sentences) or a word-order pair whose translations collapse into one
        text chains hundreds of unrelated sentences into one group.
        """
        root_a, root_b = self.find(source), self.find(translation)
        if root_a == root_b:
            return True
        language = self.language(source)
        both_have = language in self._languages[root_a] and language in self._languages[root_b]
        if both_have or root_b in self._differs.get(root_a, ()):
            self.refused_links += 1
            return False
        self._merge(min(root_a, root_b), max(root_a, root_b))
        return True

    def _merge(self, keep: int, gone: int) -> None:
        """Hang root ``gone`` under root ``keep``; the earlier root stays root (determinism)."""
        self._parent[gone] = keep
        self._languages[keep] |= self._languages.pop(gone)
        moved = self._differs.pop(gone, set())
        for other in moved:
            self._differs[other].discard(gone)
            self._differs[other].add(keep)
        merged = (self._differs.pop(keep, set()) | moved) - {keep, gone}  # a link over a forbid voids it
        if merged:
            self._differs[keep] = merged

    def forbid(self, a: int, b: int) -> bool:
        """Record that ``a`` and ``b`` differ in meaning; False if they are already linked (contradiction)."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return False
        self._differs.setdefault(root_a, set()).add(root_b)
        self._differs.setdefault(root_b, set()).add(root_a)
        return True

    def build(self, units: Sequence[Sequence[int]], negatives: Sequence[Sequence[int]] | None = None) -> BuiltGroups:
        """Candidate units (node lists, with optional negative nodes) -> groups with dense ids.

        Call after every link; a unit's nodes must be one component. Per unit: texts are made
        distinct (first occurrence keeps its language); a unit with the same texts as an earlier
        one is merged into it; fewer than two texts drops it. Negatives in the unit's own
        component, or equal to one of its texts, are removed (contradictory labels, duplicates).
        Group ids are 0..n-1 in order of the first *kept* unit of each component, so they stay
        dense whatever was dropped.
        """
        kept: dict[tuple[int, ...], list[int]] = {}
        dropped = duplicates = 0
        for index, nodes in enumerate(units):
            extra = list(negatives[index]) if negatives is not None else []
            members = tuple(self._distinct(nodes))
            if len(members) < 2:
                dropped += 1
            elif members in kept:
                duplicates += 1
                kept[members].extend(extra)
            else:
                kept[members] = extra
        dense: dict[int, int] = {}
        groups = []
        for nodes, extra in kept.items():
            root = self.find(nodes[0])
            group_id = dense.setdefault(root, len(dense))
            texts = tuple(self.text(node) for node in nodes)
            wrong = set(texts)
            chosen: dict[str, None] = {}
            for node in extra:
                if self.find(node) != root and self.text(node) not in wrong:
                    chosen[self.text(node)] = None
            languages = tuple(self.language(node) for node in nodes)
            groups.append(TextUnit(group_id, texts, languages, tuple(chosen)))
        return BuiltGroups(groups, dropped, duplicates)

    def _distinct(self, nodes: Sequence[int]) -> list[int]:
        seen: set[str] = set()
        distinct = []
        for node in nodes:
            text = self.text(node)
            if text and text not in seen:
                seen.add(text)
                distinct.append(node)
        return distinct
