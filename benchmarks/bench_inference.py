"""Inference benchmark: paraxl torch vs ONNX fp32 vs ONNX int8 vs sentence-transformers, CPU utilisation,
and all-pairs scoring with a bi-encoder vs a cross-encoder.

Usage (the full run; about 30-45 minutes on 2 shared cores, most of it torch and sentence-transformers):
    python benchmarks/bench_inference.py --data-dir ../shared/data --model bundled:multilingual-e5-small \
        --n 2000 --batch-size 32 --repeats 2

A quick check that everything runs:
    python benchmarks/bench_inference.py --model bundled:multilingual-e5-small-enpt --n 200 --repeats 1 \
        --pairs-n 200 --cross-sample 100 --out-name inference_smoke

Writes ``benchmarks/results/<out-name>.json`` and ``.md`` (default ``inference``).

1. Encoding throughput on N mixed-language PAWS-X sentences (sentence1 of the resplit
   validation + test files, interleaved across the 7 languages) and N Tatoeba sentences
   (the non-English sides of 12 language pairs, interleaved), same batch size and prompt
   (``query: ``) for every system. Systems alternate within each repeat, after a warm-up, and
   the best repeat counts, so drift on a shared machine hits all of them alike.
2. Utilisation: FLOPs of one encode pass from the real padded batch shapes of each system
   (2 x matmul parameters x padded tokens + per layer 2·2·seq²·hidden for attention scores
   and weighted sums), divided by its time, against this CPU's fp32 matmul peak measured
   with a 2048x2048 ``torch.matmul``.
3. All-pairs scoring of M sentences (default 1,000, 999,000 ordered pairs): a bi-encoder
   (encode M once + an M x M cosine matrix) vs ``sentence_transformers.CrossEncoder`` on the
   same backbone (``num_labels=1``, untrained head: only speed is measured), timed on a
   random sample of pairs and extrapolated linearly to all pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
PAWSX_LANGUAGES = ("en", "de", "es", "fr", "ja", "ko", "zh")
TATOEBA_LANGUAGES = ("deu", "fra", "spa", "por", "ita", "rus", "jpn", "cmn", "kor", "ara", "hin", "tur")
PROMPT = "query"  # e5's "query: " prefix, for every system


# ---------------------------------------------------------------- data
def interleave(columns: Sequence[Sequence[str]], n: int) -> list[str]:
    """Round-robin over the languages' lists, skipping duplicates and blanks, until ``n`` texts."""
    seen: dict[str, None] = {}
    for row in range(max(len(column) for column in columns)):
        for column in columns:
            if row < len(column) and column[row].strip() and column[row] != "NS":
                seen.setdefault(column[row])
                if len(seen) >= n:
                    return list(seen)
    return list(seen)


def pawsx_sentences(data_dir: Path, n: int) -> list[str]:
    from paraxl.data.readers import read_pawsx_pairs

    columns = []
    for language in PAWSX_LANGUAGES:
        rows = []
        for split in ("validation", "test"):
            rows += [pair.first for pair in read_pawsx_pairs(data_dir, split, [language])[language]]
        columns.append(rows)
    return interleave(columns, n)


def tatoeba_sentences(data_dir: Path, n: int) -> list[str]:
    root = data_dir / "tatoeba" / "v1"
    columns = [
        (root / f"tatoeba.{code}-eng.{code}").read_text(encoding="utf-8").splitlines() for code in TATOEBA_LANGUAGES
    ]
    return interleave(columns, n)


# ---------------------------------------------------------------- FLOPs
def padded_shapes(token_counts: Sequence[int], sort_keys: Sequence[int], batch_size: int) -> list[tuple[int, int]]:
    """(batch, padded length) of each batch when texts are sorted by ``-sort_keys`` (stable)."""
    order = np.argsort([-key for key in sort_keys], kind="stable")
    shapes = []
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        shapes.append((len(rows), max(token_counts[i] for i in rows)))
    return shapes


def encode_flops(shapes: Sequence[tuple[int, int]], matmul_params: int, layers: int, hidden: int) -> float:
    """Linear layers: 2 x params x padded tokens; attention: per layer 2·2·seq²·hidden per sequence."""
    tokens = sum(b * length for b, length in shapes)
    attention = sum(b * 4 * length * length * hidden for b, length in shapes) * layers
    return 2.0 * matmul_params * tokens + attention


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """Best fp32 ``torch.matmul`` rate on this CPU (all of torch's threads)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


# ---------------------------------------------------------------- timing
def best_times(
    systems: dict[str, Callable[[list[Any]], Any]], items: list[Any], repeats: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """Warm every system up on a few items, then run them in turn ``repeats`` times on all of
    ``items``; best seconds and the last output of each."""
    for run in systems.values():
        run(items[:64])
    best = {name: float("inf") for name in systems}
    outputs: dict[str, Any] = {}
    for _ in range(repeats):
        for name, run in systems.items():
            start = time.perf_counter()
            outputs[name] = run(items)
            best[name] = min(best[name], time.perf_counter() - start)
    return best, outputs


def throughput_section(
    name: str, texts: list[str], encoders: dict[str, Any], st_model: Any, args: argparse.Namespace, model_shape: dict
) -> dict[str, Any]:
    systems: dict[str, Callable[[list[Any]], Any]] = {
        label: (lambda items, e=encoder: e.encode(items, batch_size=args.batch_size, show_progress=False))
        for label, encoder in encoders.items()
    }
    systems["sentence-transformers"] = lambda items: st_model.encode(
        items, batch_size=args.batch_size, prompt_name=PROMPT, convert_to_numpy=True, show_progress_bar=False
    )
    seconds, outputs = best_times(systems, texts, args.repeats)
    reference = outputs["paraxl torch"]
    tokenizer = encoders["paraxl torch"].tokenizer
    prefix = encoders["paraxl torch"].prompt_prefix(PROMPT)
    counts = [len(ids) for ids in tokenizer([prefix + t for t in texts], truncation=True, max_length=512)["input_ids"]]
    by_chars = [len(t) for t in texts]  # paraxl torch and sentence-transformers sort by characters
    shapes = {
        "paraxl torch": padded_shapes(counts, by_chars, args.batch_size),
        "sentence-transformers": padded_shapes(counts, by_chars, args.batch_size),
        "paraxl onnx": padded_shapes(counts, counts, args.batch_size),  # OnnxEncoder sorts by tokens
        "paraxl onnx-int8": padded_shapes(counts, counts, args.batch_size),
    }
    rows = {}
    for label, secs in seconds.items():
        flops = encode_flops(shapes[label], **model_shape)
        cosine = np.sum(outputs[label] * reference, axis=1)
        rows[label] = {
            "seconds": secs,
            "sentences_per_second": len(texts) / secs,
            "ratio_vs_sentence_transformers": seconds["sentence-transformers"] / secs,
            "gflop": flops / 1e9,
            "gflops_per_second": flops / secs / 1e9,
            "padded_tokens": sum(b * length for b, length in shapes[label]),
            "cosine_vs_paraxl_torch": {"min": float(cosine.min()), "mean": float(cosine.mean())},
        }
    return {"texts": len(texts), "real_tokens": int(sum(counts)), "systems": rows, "name": name}


def all_pairs_section(texts: list[str], encoder: Any, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from sentence_transformers import CrossEncoder

    from paraxl.retrieval import cosine_matrix

    def bi_encoder(items: list[str]) -> np.ndarray:
        embeddings = encoder.encode(items, batch_size=args.batch_size, show_progress=False)
        return np.asarray(cosine_matrix(embeddings, embeddings))

    bi_seconds, outputs = best_times({"bi": bi_encoder}, texts, args.repeats)
    assert outputs["bi"].shape == (len(texts), len(texts))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cross = CrossEncoder(str(folder), num_labels=1, device="cpu")
    rng = random.Random(0)
    total_pairs = len(texts) * (len(texts) - 1)
    sample = []
    while len(sample) < min(args.cross_sample, total_pairs):
        i, j = rng.randrange(len(texts)), rng.randrange(len(texts))
        if i != j:
            sample.append((texts[i], texts[j]))
    cross_seconds, _ = best_times(
        {"cross": lambda items: cross.predict(items, batch_size=args.batch_size, show_progress_bar=False)},
        sample,
        args.repeats,
    )
    per_pair = cross_seconds["cross"] / len(sample)
    return {
        "sentences": len(texts),
        "ordered_pairs": total_pairs,
        "bi_encoder_seconds": bi_seconds["bi"],
        "bi_encoder_system": f"paraxl {args.pairs_backend}",
        "cross_encoder_sampled_pairs": len(sample),
        "cross_encoder_sample_seconds": cross_seconds["cross"],
        "cross_encoder_seconds_extrapolated": per_pair * total_pairs,
        "speedup": per_pair * total_pairs / bi_seconds["bi"],
    }


# ---------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PARAXL_DATA_DIR", "../shared/data")))
    parser.add_argument("--model", default="bundled:multilingual-e5-small")
    parser.add_argument("--n", type=int, default=2000, help="sentences per data set")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per system (after one warm-up)")
    parser.add_argument("--pairs-n", type=int, default=1000, help="sentences for all-pairs scoring")
    parser.add_argument("--cross-sample", type=int, default=2000, help="cross-encoder pairs timed")
    parser.add_argument("--pairs-backend", default="torch", help="bi-encoder backend for all-pairs scoring")
    parser.add_argument("--out-name", default="inference")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import onnxruntime
    import sentence_transformers
    import transformers
    from sentence_transformers import SentenceTransformer

    from paraxl.inference.onnx_files import available_cores
    from paraxl.loading.backends import load_encoder
    from paraxl.loading.specs import resolve_model_folder

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    folder = resolve_model_folder(args.model)
    start = time.perf_counter()
    backends = {"paraxl torch": "torch", "paraxl onnx": "onnx", "paraxl onnx-int8": "onnx-int8"}
    encoders = {label: load_encoder(args.model, backend) for label, backend in backends.items()}
    load_seconds = time.perf_counter() - start  # includes the first-use ONNX export of a bundled model
    st_model = SentenceTransformer(str(folder), device="cpu")
    backbone = encoders["paraxl torch"].backbone
    model_shape = {
        "matmul_params": sum(m.weight.numel() for m in backbone.encoder.modules() if isinstance(m, torch.nn.Linear)),
        "layers": int(backbone.config.num_hidden_layers),
        "hidden": int(backbone.config.hidden_size),
    }
    peak = matmul_peak_gflops()
    sections = [
        throughput_section("PAWS-X", pawsx_sentences(args.data_dir, args.n), encoders, st_model, args, model_shape),
        throughput_section("Tatoeba", tatoeba_sentences(args.data_dir, args.n), encoders, st_model, args, model_shape),
    ]
    for section in sections:
        for label in ("paraxl torch", "paraxl onnx"):
            row = section["systems"][label]
            row["fraction_of_fp32_peak"] = row["gflops_per_second"] / peak
    pairs = all_pairs_section(
        pawsx_sentences(args.data_dir, args.pairs_n),
        load_encoder(args.model, args.pairs_backend),
        folder,
        args,
    )
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {available_cores()} available cores",
        "versions": {
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "sentence_transformers": sentence_transformers.__version__,
            "transformers": transformers.__version__,
        },
        "torch_threads": torch.get_num_threads(),
        "onnx_threads": available_cores(),
        "model": args.model,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "load_seconds_all_backends": load_seconds,
        "model_shape": model_shape,
        "fp32_matmul_peak_gflops": peak,
        "throughput": sections,
        "all_pairs": pairs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.out_name}.md").write_text(render(result))
    print(render(result))


def render(result: dict[str, Any]) -> str:
    lines = [
        f"Machine: {result['machine']}; torch threads {result['torch_threads']}, ONNX Runtime threads "
        f"{result['onnx_threads']}; {result['versions']}",
        f"Model `{result['model']}`, batch {result['batch_size']}, prompt `query: `, best of {result['repeats']} "
        f"after a warm-up; fp32 matmul peak {result['fp32_matmul_peak_gflops']:.1f} GFLOP/s (2048² torch.matmul).",
        "",
        "| data | system | sentences/s | × sentence-transformers | GFLOP/s | of fp32 peak | cosine vs torch (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for section in result["throughput"]:
        for label, row in section["systems"].items():
            share = f"{row['fraction_of_fp32_peak']:.0%}" if "fraction_of_fp32_peak" in row else "n/a"
            lines.append(
                f"| {section['name']} ({section['texts']}, {section['real_tokens']} tokens) | {label} | "
                f"{row['sentences_per_second']:.1f} | {row['ratio_vs_sentence_transformers']:.2f} | "
                f"{row['gflops_per_second']:.1f} | {share} | {row['cosine_vs_paraxl_torch']['min']:.4f} |"
            )
    pairs = result["all_pairs"]
    lines += [
        "",
        "int8 GFLOP/s count the same (fp32-equivalent) operations; the fp32 peak does not apply to them.",
        "",
        f"All-pairs scoring of {pairs['sentences']} sentences ({pairs['ordered_pairs']:,} ordered pairs):",
        "",
        "| method | seconds |",
        "|---|---|",
        f"| bi-encoder ({pairs['bi_encoder_system']}): encode once + cosine matrix | "
        f"{pairs['bi_encoder_seconds']:.2f} |",
        f"| cross-encoder, measured on {pairs['cross_encoder_sampled_pairs']:,} random pairs | "
        f"{pairs['cross_encoder_sample_seconds']:.2f} |",
        f"| cross-encoder, extrapolated to all pairs | {pairs['cross_encoder_seconds_extrapolated']:,.0f} |",
        f"| speed-up of the bi-encoder | {pairs['speedup']:,.0f}× |",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
