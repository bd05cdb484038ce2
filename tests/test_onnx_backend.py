"""ONNX Runtime backend: export, int8 quantization, OnnxEncoder vs the PyTorch BiEncoder (the oracle)."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from transformers import XLMRobertaConfig, XLMRobertaModel
from typer.testing import CliRunner

from paraxl.cli.main import app
from paraxl.errors import InputError, ModelFormatError
from paraxl.evaluation.embeddings import cache_folder
from paraxl.evaluation.results import read_document
from paraxl.evaluation.session import EvalRequest, load_eval_encoder
from paraxl.inference import onnx_export
from paraxl.inference.onnx_encoder import OnnxEncoder, pool_hidden_states
from paraxl.inference.onnx_export import export_onnx
from paraxl.inference.onnx_files import BACKEND_FILES, manifest_path
from paraxl.loading.backends import load_encoder
from paraxl.modeling.batching import pad_batch
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.modeling.pooling import pool
from paraxl.modeling.st_layout import EncoderSettings

from .eval_fixtures import write_benchmark_data
from .tiny import build_tiny_encoder

# very different token counts (1 .. ~60 with the prompt), so batches pad a lot
TEXTS = [
    "the cat sat on the mat",
    "x",
    "",
    "le chat der hund " * 12,
    "the dog ran",
    "猫は犬",
    "a b c d e f g h i j k l m n o p",
    "ABC xyz 123 !?",
]
runner = CliRunner()


@pytest.fixture(scope="module")
def exported_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model folder with fp32 and int8 exports (read only for the tests using it)."""
    folder = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(tiny_model_dir, folder)
    export_onnx(folder)
    return folder


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ---------------------------------------------------------------- numeric oracles
@pytest.mark.parametrize("mode", ["mean", "cls"])
@pytest.mark.parametrize("normalize", [True, False])
def test_numpy_pooling_matches_torch_pooling(mode: str, normalize: bool) -> None:
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(4, 7, 5)).astype(np.float32)
    mask = np.array([[1] * 7, [1, 1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0], [1] * 5 + [0, 0]], dtype=np.int64)
    ours = pool_hidden_states(hidden, mask, mode, normalize)  # type: ignore[arg-type]
    expected = pool(torch.from_numpy(hidden), torch.from_numpy(mask), mode)  # type: ignore[arg-type]
    if normalize:
        expected = F.normalize(expected, p=2, dim=-1)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected.numpy(), atol=1e-6)


def test_pad_batch_right_pads_with_mask() -> None:
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=1)
    np.testing.assert_array_equal(ids, [[5, 6, 7], [8, 1, 1]])
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0]])
    assert ids.dtype == mask.dtype == np.int64


@pytest.mark.parametrize("batch_size", [1, 3, len(TEXTS)])
@pytest.mark.parametrize("prompt_name", [None, "passage", ""])
def test_fp32_equals_torch(exported_dir: Path, batch_size: int, prompt_name: str | None) -> None:
    expected = BiEncoder.load(exported_dir).encode(TEXTS, batch_size=batch_size, prompt_name=prompt_name)
    got = load_encoder(str(exported_dir), "onnx").encode(TEXTS, batch_size=batch_size, prompt_name=prompt_name)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_int8_is_quantized_and_close_to_torch(exported_dir: Path) -> None:
    expected = BiEncoder.load(exported_dir).encode(TEXTS)
    int8 = load_encoder(str(exported_dir), "onnx-int8").encode(TEXTS, batch_size=3)
    fp32 = load_encoder(str(exported_dir), "onnx").encode(TEXTS, batch_size=3)
    # measured on the tiny model: min cosine 0.99997; the bound leaves room for other CPUs' int8 kernels
    assert _cosines(int8, expected).min() > 0.999
    assert np.abs(int8 - fp32).max() > 1e-5  # it really is another (quantized) graph
    sizes = {backend: (exported_dir / name).stat().st_size for backend, name in BACKEND_FILES.items()}
    assert sizes["onnx-int8"] < sizes["onnx"]


def test_order_restored_and_batch_invariant(exported_dir: Path) -> None:
    encoder = load_encoder(str(exported_dir), "onnx")
    one_by_one = np.stack([encoder.encode([text])[0] for text in TEXTS])
    np.testing.assert_allclose(encoder.encode(TEXTS, batch_size=3), one_by_one, atol=1e-5)
    permutation = np.random.default_rng(1).permutation(len(TEXTS))
    shuffled = encoder.encode([TEXTS[i] for i in permutation], batch_size=2)
    np.testing.assert_allclose(shuffled, one_by_one[permutation], atol=1e-5)


@pytest.mark.parametrize("max_tokens", [None, 30])
def test_the_shared_batching_policy_torch_and_onnx_agree(exported_dir: Path, max_tokens: int | None) -> None:
    # one Tokenized, both backends: the same token-budget batches (30: long texts alone), the same vectors
    torch_encoder = BiEncoder.load(exported_dir)
    onnx_encoder = load_encoder(str(exported_dir), "onnx")
    assert isinstance(onnx_encoder, OnnxEncoder)
    torch_encoder.max_batch_tokens = onnx_encoder.max_batch_tokens = max_tokens
    tokenized = onnx_encoder.tokenize_texts(TEXTS, "passage")
    assert [list(ids) for ids in tokenized.input_ids] == [
        list(ids) for ids in torch_encoder.tokenize_texts(TEXTS, "passage").input_ids
    ]
    from_onnx = onnx_encoder.encode_tokenized(tokenized, batch_size=3)
    np.testing.assert_allclose(from_onnx, torch_encoder.encode_tokenized(tokenized, batch_size=3), atol=1e-5)
    alone = np.stack([onnx_encoder.encode([text], prompt_name="passage")[0] for text in TEXTS])
    np.testing.assert_allclose(from_onnx, alone, atol=1e-5)
    np.testing.assert_array_equal(onnx_encoder.encode(TEXTS, batch_size=3, prompt_name="passage"), from_onnx)


def test_empty_input_and_bad_calls(exported_dir: Path) -> None:
    encoder = load_encoder(str(exported_dir), "onnx")
    empty = encoder.encode([])
    assert empty.shape == (0, 32) and empty.dtype == np.float32
    with pytest.raises(InputError, match="not a single string"):
        encoder.encode("the cat")
    with pytest.raises(InputError, match="batch_size"):
        encoder.encode(["the cat"], batch_size=0)
    with pytest.raises(InputError, match="unknown prompt name 'nope'"):
        encoder.encode(["the cat"], prompt_name="nope")
    assert encoder.prompt_prefix() == "query: " and encoder.dimension == 32


def test_truncates_like_torch(exported_dir: Path) -> None:
    long_text = ["the cat " * 200]  # far beyond max_seq_length (64 tokens)
    expected = BiEncoder.load(exported_dir).encode(long_text)
    np.testing.assert_allclose(load_encoder(str(exported_dir), "onnx").encode(long_text), expected, atol=1e-5)


def test_concurrent_encode_from_threads(exported_dir: Path) -> None:
    encoder = load_encoder(str(exported_dir), "onnx")
    expected = encoder.encode(TEXTS)
    with ThreadPoolExecutor(4) as pool_:
        results = list(pool_.map(lambda _: encoder.encode(TEXTS, batch_size=2), range(8)))
    for result in results:
        np.testing.assert_allclose(result, expected, atol=1e-5)


def test_xlm_roberta_positions_survive_export(tmp_path: Path) -> None:
    """XLM-R builds padding-aware position ids from input_ids: the graph must too, at any padding."""
    tiny = build_tiny_encoder()
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(tiny.tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=80,
        pad_token_id=tiny.tokenizer.pad_token_id,
        type_vocab_size=1,
    )
    backbone = XLMRobertaModel(config, add_pooling_layer=False).eval()
    BiEncoder(backbone, tiny.tokenizer, EncoderSettings(max_seq_length=64)).save(tmp_path / "xlmr")
    export_onnx(tmp_path / "xlmr", int8=False)
    expected = BiEncoder.load(tmp_path / "xlmr").encode(TEXTS, batch_size=4)
    np.testing.assert_allclose(load_encoder(str(tmp_path / "xlmr"), "onnx").encode(TEXTS), expected, atol=1e-5)


# ---------------------------------------------------------------- export records and errors
def test_export_is_idempotent_and_recorded(exported_dir: Path) -> None:
    record = json.loads(manifest_path(exported_dir).read_text())
    assert record["opset"] == onnx_export.OPSET and record["source_fingerprint"]
    assert record["files"]["onnx-int8"]["quantization"]["per_channel"] is True
    assert record["files"]["onnx"]["checked_max_abs_diff"] < 1e-4
    assert record["files"]["onnx"][onnx_export.EMBEDDING_CHECK_KEY] <= onnx_export.EMBEDDING_TOLERANCE == 1e-5
    assert export_onnx(exported_dir).up_to_date


def test_changed_weights_make_the_export_stale(exported_dir: Path, tmp_path: Path) -> None:
    folder = _copy(exported_dir, tmp_path)
    weights = load_file(folder / "model.safetensors")
    name = next(key for key in weights if key.endswith("attention.self.query.weight"))
    weights[name] = weights[name] + 0.5
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    for backend in ("onnx", "onnx-int8"):
        with pytest.raises(ModelFormatError, match=r"stale.*paraxl export-onnx .* --force"):
            load_encoder(str(folder), backend)
    report = export_onnx(folder)  # a stale export is redone without --force
    assert len(report.written) == 2
    expected = BiEncoder.load(folder).encode(TEXTS)
    np.testing.assert_allclose(load_encoder(str(folder), "onnx").encode(TEXTS), expected, atol=1e-5)


def test_user_folder_without_export_says_what_to_run(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"no ONNX export; run `paraxl export-onnx .*`"):
        load_encoder(str(tiny_model_dir), "onnx")
    assert not (tiny_model_dir / "onnx").exists()  # a user's folder is never written to on load


def test_fp32_only_export_has_no_int8(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path)
    export_onnx(folder, int8=False)
    assert load_encoder(str(folder), "onnx").dimension == 32
    with pytest.raises(ModelFormatError, match="no int8 ONNX export"):
        load_encoder(str(folder), "onnx-int8")
    assert [p.name for p in export_onnx(folder).written] == ["model_qint8.onnx"]  # fp32 reused


def test_tampered_file_is_detected(exported_dir: Path, tmp_path: Path) -> None:
    folder = _copy(exported_dir, tmp_path)
    with (folder / BACKEND_FILES["onnx"]).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelFormatError, match="does not match its record"):
        load_encoder(str(folder), "onnx")


def test_failed_export_leaves_nothing(tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _copy(tiny_model_dir, tmp_path)

    def broken(*args: object) -> float:
        raise ModelFormatError("the ONNX export does not reproduce torch")

    monkeypatch.setattr(onnx_export, "_check_against_torch", broken)
    with pytest.raises(ModelFormatError, match="does not reproduce"):
        export_onnx(folder)
    assert list((folder / "onnx").iterdir()) == []


def test_unknown_backend() -> None:
    with pytest.raises(InputError, match="unknown backend 'tensorrt'"):
        load_encoder("bundled:multilingual-e5-small", "tensorrt")


def test_paraxl_owned_folders_export_on_first_use(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Folders inside paraxl's cache (where bundled models live) are exported automatically."""
    monkeypatch.setenv("PARAXL_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "models" / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    encoder = load_encoder(str(folder), "onnx-int8")
    assert (folder / BACKEND_FILES["onnx"]).is_file() and (folder / BACKEND_FILES["onnx-int8"]).is_file()
    assert _cosines(encoder.encode(TEXTS), BiEncoder.load(folder).encode(TEXTS)).min() > 0.999


def test_fingerprints_differ_per_backend(exported_dir: Path) -> None:
    prints = {
        backend: load_encoder(str(exported_dir), backend).fingerprint for backend in ("torch", "onnx", "onnx-int8")
    }
    assert len(set(prints.values())) == 3 and all(prints.values())
    assert isinstance(load_encoder(str(exported_dir), "onnx"), OnnxEncoder)
    # evaluation keys on the numerics: torch and the checked fp32 export share torch's key, int8 has its own
    records = {
        backend: load_eval_encoder(EvalRequest(model=str(exported_dir), backend=backend))[1]
        for backend in ("torch", "onnx", "onnx-int8")
    }
    assert records["torch"].fingerprint == records["onnx"].fingerprint == prints["torch"]
    assert records["onnx-int8"].fingerprint == prints["onnx-int8"]
    assert [record.backend for record in records.values()] == ["torch", "onnx", "onnx-int8"]
    assert cache_folder(Path("c"), str(prints["torch"])) != cache_folder(Path("c"), str(prints["onnx-int8"]))


# ---------------------------------------------------------------- CLI
def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_export_then_encode_with_onnx(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _copy(tiny_model_dir, tmp_path)
    code, out, err = _run("export-onnx", str(folder), "--no-int8")
    assert code == 0, err
    assert (folder / BACKEND_FILES["onnx"]).is_file() and not (folder / BACKEND_FILES["onnx-int8"]).exists()
    code, out, err = _run("export-onnx", str(folder))
    assert code == 0, err
    assert (folder / BACKEND_FILES["onnx-int8"]).is_file()
    code, out, err = _run("export-onnx", str(folder))
    assert code == 0 and "up to date" in out
    source = tmp_path / "in.txt"
    source.write_text("\n".join(text for text in TEXTS if text) + "\n")
    for backend in ("torch", "onnx"):
        code, _, err = _run(
            "encode", str(source), "-o", str(tmp_path / f"{backend}.npy"), "-m", str(folder), "--backend", backend
        )
        assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "onnx.npy"), np.load(tmp_path / "torch.npy"), atol=1e-5)


def test_cli_errors_are_one_line(tiny_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("the cat\n")
    code, _, err = _run(
        "encode", str(source), "-o", str(tmp_path / "e.npy"), "-m", str(tiny_model_dir), "--backend", "onnx"
    )
    assert code == 2 and "no ONNX export; run `paraxl export-onnx" in err and "Traceback" not in err
    assert not (tmp_path / "e.npy").exists()
    code, _, err = _run("export-onnx", str(tmp_path))
    assert code == 2 and "not a model folder" in err
    code, _, err = _run("eval", str(tiny_model_dir), "--backend", "tensorrt", "--data-dir", str(tmp_path))
    assert code == 2 and "unknown backend 'tensorrt'" in err


def test_cli_eval_backends_share_the_cache_where_vectors_are_identical(
    exported_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch fills the cache; ONNX fp32 (checked to 1e-5) and auto read it; int8 encodes under its own key."""
    monkeypatch.setenv("PARAXL_CACHE_DIR", str(tmp_path / "cache"))
    data = write_benchmark_data(tmp_path / "data")
    documents, messages = {}, {}
    for backend in ("torch", "onnx", "auto", "onnx-int8"):
        out = tmp_path / backend
        args = ["eval", str(exported_dir), "--tasks", "pawsx", "--data-dir", str(data), "-o", str(out), "--no-plots"]
        code, _, err = _run(*args, "--backend", backend)
        assert code == 0, err
        documents[backend], messages[backend] = read_document(out / "pawsx.json"), err
    assert documents["torch"]["embeddings"]["encoded"] > 0
    for backend in ("onnx", "auto"):
        assert documents[backend]["embeddings"]["encoded"] == 0  # every vector came from torch's cache
        assert documents[backend]["model"]["fingerprint"] == documents["torch"]["model"]["fingerprint"]
        assert documents[backend]["main_score"] == documents["torch"]["main_score"]
    assert documents["auto"]["model"]["backend"] == "onnx" and "backend: ONNX fp32" in messages["auto"]
    assert documents["onnx-int8"]["embeddings"]["encoded"] == documents["torch"]["embeddings"]["encoded"]
    assert documents["onnx-int8"]["model"]["fingerprint"] != documents["torch"]["model"]["fingerprint"]
    assert documents["onnx-int8"]["main_score"] == pytest.approx(documents["torch"]["main_score"], abs=0.1)


# ---------------------------------------------------------------- the real bundled model
REAL_SENTENCES = [
    "The weather is lovely today.",
    "O tempo está ótimo hoje.",
    "How much protein should an adult eat per day?",
    "Quanta proteína um adulto deve comer por dia?",
    "A cat is sleeping on the sofa.",
    "Um gato está dormindo no sofá.",
    "The train to Lisbon leaves at nine.",
    "Onde fica a estação de comboios mais próxima?",
]


@pytest.mark.real_model
def test_real_model_onnx_matches_torch(paraxl_cache: Path) -> None:
    spec = "bundled:multilingual-e5-small-enpt"
    expected = load_encoder(spec).encode(REAL_SENTENCES)
    fp32 = load_encoder(spec, "onnx").encode(REAL_SENTENCES, batch_size=3)  # exported on first use
    int8 = load_encoder(spec, "onnx-int8").encode(REAL_SENTENCES, batch_size=3)
    assert _cosines(fp32, expected).min() > 0.9999
    # measured: min cosine 0.991 over 400 PAWS-X sentences (e5-small, AVX2); 0.98 leaves room for other CPUs
    assert _cosines(int8, expected).min() > 0.98
    # int8 keeps the ranking: each English sentence's nearest Portuguese one is its translation
    similarity = int8[0:6:2] @ int8[1:6:2].T
    np.testing.assert_array_equal(similarity.argmax(axis=1), np.arange(3))


def test_the_graph_fingerprint_without_loading_equals_the_loaded_encoders(exported_dir: Path) -> None:
    """``paraxl encode-corpus`` keys its job on the ONNX graph without opening a session or a tokenizer."""
    from paraxl.loading.backends import onnx_encoder_fingerprint

    for backend in ("onnx", "onnx-int8"):
        assert onnx_encoder_fingerprint(exported_dir, backend) == load_encoder(str(exported_dir), backend).fingerprint
    assert onnx_encoder_fingerprint(exported_dir, "onnx") != onnx_encoder_fingerprint(exported_dir, "onnx-int8")
