"""A miniature benchmark data folder in the real layouts, and a deterministic mock encoder.

The mock embeds a sentence as the sum of per-word random vectors (seeded by the word's
sha256), so sentences sharing words are close: a "translation" here is the same words plus a
language tag, a paraphrase the same words reordered (bag of words: cosine 1), a
non-paraphrase shares some words. That gives every task non-trivial, predictable scores.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from paraxl.data.readers import PAWSX_LANGUAGES
from paraxl.data.sts_pairs import STSB_LANGUAGES
from paraxl.evaluation.loaders.tatoeba import TATOEBA_LANGUAGES

DIMENSION = 24
WORDS = [
    "river",
    "bank",
    "money",
    "city",
    "king",
    "queen",
    "music",
    "paper",
    "stone",
    "light",
    "garden",
    "table",
    "window",
    "story",
    "winter",
    "summer",
    "forest",
    "school",
    "market",
    "train",
    "church",
    "bridge",
    "island",
    "mountain",
    "village",
    "doctor",
    "teacher",
    "museum",
    "harbour",
    "castle",
]


class BagOfWordsEmbedder:
    """Sum of seeded word vectors; records how many texts it embedded."""

    def __init__(self) -> None:
        self.calls = 0
        self.texts_seen = 0

    @staticmethod
    def word_vector(word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        return np.random.default_rng(seed).standard_normal(DIMENSION)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_seen += len(texts)
        rows = [sum((self.word_vector(w) for w in text.lower().split()), np.full(DIMENSION, 1e-3)) for text in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), DIMENSION)


def _sentence(rng: np.random.Generator, length: int = 6) -> list[str]:
    return list(rng.choice(WORDS, size=length, replace=False))


def _translate(words: list[str], language: str) -> str:
    return " ".join(words) if language in ("en", "eng") else " ".join([*words, f"<{language}>"])


def write_pawsx(root: Path, rng: np.random.Generator) -> None:
    """7 languages x (validation, test): 12 / 16 pairs, ids shared across languages.

    Paraphrases reorder the words (and change one in odd ids); non-paraphrases swap 3 words.
    de test: one untranslated ``NS`` pair; ko test: one label flipped (cross-lingual pairs with
    it are dropped).
    """
    for split, count in (("validation", 12), ("test", 16)):
        base = []
        for index in range(count):
            words = _sentence(rng)
            label = index % 2
            if label == 1:
                other = list(rng.permutation(words))
                if index % 4 == 1:
                    other[0] = str(rng.choice([w for w in WORDS if w not in words]))
            else:
                other = list(words)
                replacements = [w for w in WORDS if w not in words]
                for position, replacement in zip(
                    rng.choice(6, 3, replace=False), rng.choice(replacements, 3), strict=True
                ):
                    other[position] = str(replacement)
            base.append((f"{split[0]}{index}", words, other, label))
        for language in PAWSX_LANGUAGES:
            folder = root / "pawsx" / "resplit" / language
            folder.mkdir(parents=True, exist_ok=True)
            lines = ["id\tsentence1\tsentence2\tlabel"]
            for number, (key, first, second, label) in enumerate(base):
                one, two = _translate(first, language), _translate(second, language)
                if language == "de" and split == "test" and number == 3:
                    two = "NS"
                if language == "ko" and split == "test" and number == 5:
                    label = 1 - label
                lines.append(f"{key}\t{one}\t{two}\t{label}")
            (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_bucc(root: Path, rng: np.random.Generator) -> None:
    """zh-en sample: 10 gold translations among 16 zh and 20 en sentences."""
    folder = root / "bucc2018" / "zh-en"
    folder.mkdir(parents=True)
    zh, en, gold = [], [], []
    for index in range(20):
        words = _sentence(rng, 7)
        en.append(f"en-{index:09d}\t{' '.join(words)}")
        if index < 10:
            zh.append(f"zh-{index:09d}\t{_translate(words, 'zh')}")
            gold.append(f"zh-{index:09d}\ten-{index:09d}")
    for index in range(10, 16):
        zh.append(f"zh-{index:09d}\t{_translate(_sentence(rng, 7), 'zh')}")
    for name, lines in (("zh", zh), ("en", en), ("gold", gold)):
        (folder / f"zh-en.sample.{name}").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_tatoeba(root: Path, rng: np.random.Generator) -> None:
    """All 112 languages with 4 lines; in ``afr`` lines 0 and 1 of the English side are swapped."""
    folder = root / "tatoeba" / "v1"
    folder.mkdir(parents=True)
    for language in TATOEBA_LANGUAGES:
        sentences = [_sentence(rng, 5) for _ in range(4)]
        source = [_translate(words, language) for words in sentences]
        target = [" ".join(words) for words in sentences]
        if language == "afr":
            target[0], target[1] = target[1], target[0]
        (folder / f"tatoeba.{language}-eng.{language}").write_text("\n".join(source) + "\n", encoding="utf-8")
        (folder / f"tatoeba.{language}-eng.eng").write_text("\n".join(target) + "\n", encoding="utf-8")


def _scored_pairs(rng: np.random.Generator, count: int) -> list[tuple[list[str], list[str], float]]:
    """Pairs sharing ``shared`` of 6 words, gold = shared (0-5): the mock's cosine tracks it."""
    rows = []
    for index in range(count):
        words = _sentence(rng)
        shared = index % 6
        other = words[:shared] + [w for w in rng.permutation(WORDS) if w not in words][: 6 - shared]
        rows.append((words, list(other), float(min(shared, 5))))
    return rows


def write_sts(root: Path, rng: np.random.Generator) -> None:
    tracks = {"1": "ar-ar", "2": "ar-en", "3": "es-es", "4a": "es-en", "4b": "es-en", "5": "en-en"}
    (root / "sts17" / "STS2017.eval.v1.1").mkdir(parents=True)
    (root / "sts17" / "STS2017.gs").mkdir(parents=True)
    for track, pair in tracks.items():
        rows = _scored_pairs(rng, 12)
        first, second = pair.split("-")
        inputs = [f"{_translate(a, first)}\t{_translate(b, second)}" for a, b, _ in rows]
        (root / "sts17" / "STS2017.eval.v1.1" / f"STS.input.track{track}.{pair}.txt").write_text(
            "\n".join(inputs) + "\n", encoding="utf-8"
        )
        (root / "sts17" / "STS2017.gs" / f"STS.gs.track{track}.{pair}.txt").write_text(
            "\n".join(f"{gold:.1f}" for *_, gold in rows) + "\n", encoding="utf-8"
        )
    rows = _scored_pairs(rng, 12)
    (root / "stsb_multi_mt").mkdir()
    for language in STSB_LANGUAGES:
        lines = [f"{_translate(a, language)},{_translate(b, language)},{gold}" for a, b, gold in rows]
        (root / "stsb_multi_mt" / f"stsb-{language}-test.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "korsts").mkdir()
    lines = ["genre\tfilename\tyear\tid\tscore\tsentence1\tsentence2"]
    lines += [
        f"main-captions\tMSRvid\t2012test\t{i:04d}\t{gold:.3f}\t{_translate(a, 'ko')}\t{_translate(b, 'ko')}"
        for i, (a, b, gold) in enumerate(_scored_pairs(rng, 12))
    ]
    (root / "korsts" / "sts-test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


SIB_LANGUAGES = ("eng_Latn", "deu_Latn", "zho_Hans")
SIB_TOPICS = ("science/technology", "travel", "politics")


def write_sib200(root: Path, rng: np.random.Generator) -> None:
    """3 languages, 3 topics; each topic's sentences draw mostly from its own third of the words."""
    vocab = {topic: WORDS[i * 10 : (i + 1) * 10] for i, topic in enumerate(SIB_TOPICS)}
    splits = {"train": 24, "dev": 6, "test": 12}
    data = {
        split: [
            (SIB_TOPICS[i % 3], [*rng.choice(vocab[SIB_TOPICS[i % 3]], 3, replace=False), *rng.choice(WORDS, 2)])
            for i in range(count)
        ]
        for split, count in splits.items()
    }
    for language in SIB_LANGUAGES:
        folder = root / "sib200" / language
        folder.mkdir(parents=True)
        (folder / "labels.txt").write_text("\n".join(SIB_TOPICS) + "\n", encoding="utf-8")
        for split, rows in data.items():
            lines = ["index_id\tcategory\ttext"]
            lines += [f"{i}\t{topic}\t{_translate(list(words), language)}" for i, (topic, words) in enumerate(rows)]
            (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_mtop(root: Path, rng: np.random.Generator) -> None:
    """MTOP en and de in the published 8-column layout; the domain is readable from the words."""
    vocab = {"alarm": WORDS[:10], "music": WORDS[10:20], "weather": WORDS[20:]}
    for language in ("en", "de"):
        folder = root / "mtop" / language
        folder.mkdir(parents=True)
        for split, count in (("train", 18), ("eval", 6), ("test", 9)):
            lines = []
            for index in range(count):
                domain = list(vocab)[index % 3]
                words = [*rng.choice(vocab[domain], 3, replace=False), *rng.choice(WORDS, 1)]
                text = _translate(list(words), language)
                tokens = json.dumps({"tokens": text.split()})
                lines.append(f"{index}\tIN:GET_{domain.upper()}\t\t{text}\t{domain}\t{language}_XX\t[IN:X ]\t{tokens}")
            (folder / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_sts22(root: Path, rng: np.random.Generator) -> None:
    """STS22 as MTEB publishes it: jsonl rows with a ``lang`` field, scores 1-4."""
    folder = root / "sts22"
    folder.mkdir()
    rows = []
    for language in ("de", "de-en"):
        first, second = (language, language) if "-" not in language else language.split("-")
        for a, b, gold in _scored_pairs(rng, 10):
            rows.append(
                {
                    "sentence1": _translate(a, first),
                    "sentence2": _translate(b, second),
                    "score": 1 + 3 * gold / 5,
                    "lang": language,
                }
            )
    (folder / "test.jsonl").write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")


def write_user_data(root: Path, seed: int = 1) -> Path:
    """The files a user downloads for ``mtop`` and ``sts22`` (not in the offline data dir)."""
    rng = np.random.default_rng(seed)
    write_mtop(root, rng)
    write_sts22(root, rng)
    return root


def write_benchmark_data(root: Path, seed: int = 0) -> Path:
    """Every offline task's files under ``root`` (the layout of ``shared/data``)."""
    rng = np.random.default_rng(seed)
    write_pawsx(root, rng)
    write_bucc(root, rng)
    write_tatoeba(root, rng)
    write_sts(root, rng)
    write_sib200(root, rng)
    return root
