"""Inference benchmark: sentence-transformers vs paraxl torch vs ONNX fp32 vs ONNX int8 on the same texts,
each against this CPU's measured matmul peak; and all-pairs scoring with a bi-encoder vs a cross-encoder.

The full run (run it alone on the machine; about 30-45 minutes on 2 cores, most of it torch and
sentence-transformers):
    python benchmarks/bench_inference.py --data-dir ../shared/data --model bundled:multilingual-e5-small \
        --n 2000 --batch-size 32 --repeats 2

A quick check that everything runs (under a minute):
    python benchmarks/bench_inference.py --model bundled:multilingual-e5-small-enpt --max-texts 64 \
        --repeats 1 --peak-repeats 2 --pairs-n 32 --cross-sample 16 --out-name inference_smoke

Writes ``benchmarks/results/<out-name>.json`` and ``.md`` (default ``inference``).

1. Encoding throughput, side by side in one process: ``SentenceTransformer(folder).encode`` and paraxl's
   ``encode`` on torch, ONNX fp32 and ONNX int8, on N mixed-language PAWS-X sentences (sentence1 of the
   resplit validation + test files, interleaved across the 7 languages) and N Tatoeba sentences (the
   non-English sides of 12 language pairs, interleaved); same batch size, same prompt (``query: ``).
   Systems alternate within each repeat after a warm-up and the best repeat counts, so drift on a
   shared machine hits all of them alike. Each row: sentences/s, ratio to sentence-transformers, the
   max-abs difference of its embeddings to sentence-transformers', and its padded tokens.
2. Utilisation: the FLOPs of one encode pass, from each system's real padded batch shapes (paraxl: its
   batch plan, ``paraxl.modeling.batching.plan_batches``; sentence-transformers: 32-row batches sorted
   by characters), per padded token 2 x non-embedding parameters plus, per layer, 4·seq·hidden for the
   attention scores and their weighted sum; divided by the system's time and by this CPU's matmul peak
   measured here: fp32 ``torch.matmul`` on a model-shaped GEMM ((tokens of a PAWS-X batch x hidden) @
   (hidden x intermediate)) and on a 2048² one; int8 ``torch._int_mm`` and ONNX Runtime ``MatMulInteger``
   on the same shapes. The peak is the best of them (fp32 for torch, ST and ONNX fp32; int8 for int8).
3. All-pairs scoring of M sentences (default 1,000, 999,000 ordered pairs): a bi-encoder (encode M once
   + an M x M cosine matrix) vs ``sentence_transformers.CrossEncoder`` on the same backbone
   (``num_labels=1``, untrained head: only speed is measured), timed on a random sample of pairs and
   extrapolated linearly to all pairs.

The JSON records the CPU model and flags (avx2, avx512f, avx512_bf16, avx512_vnni, amx), torch's
thread settings and ONNX Runtime's session options (``paraxl.modeling.threads``,
``paraxl.inference.onnx_files.session_settings``).
"""

from __future__ import annotations

import argparse
import json
import os
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
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")
ST = "sentence-transformers"
BACKENDS = {"paraxl torch": "torch", "paraxl onnx": "onnx", "paraxl onnx-int8": "onnx-int8"}


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


# ---------------------------------------------------------------- the machine
def cpu_info() -> dict[str, Any]:
    """CPU model and the instruction-set flags that decide the matmul kernels (Linux /proc/cpuinfo)."""
    from paraxl.evaluation.bench_report import cpu_info as machine_cpu

    return machine_cpu(CPU_FLAGS)


PEAK_REPEATS = [10]  # timed runs per matmul measurement (--peak-repeats)


def best_seconds(run: Callable[[], object]) -> float:
    run()  # warm-up: thread pools, packed weights
    best = float("inf")
    for _ in range(PEAK_REPEATS[0]):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def fp32_gflops(m: int, k: int, n: int) -> float:
    """Best fp32 ``torch.matmul`` rate of (m x k) @ (k x n) on torch's threads."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    return 2.0 * m * k * n / best_seconds(lambda: torch.matmul(a, b)) / 1e9


def int8_torch_gops(m: int, k: int, n: int) -> float | None:
    """Best ``torch._int_mm`` (int8 x int8 -> int32) rate; None where this torch has no CPU kernel."""
    a = torch.randint(-128, 127, (m, k), dtype=torch.int8)
    b = torch.randint(-128, 127, (k, n), dtype=torch.int8)
    try:
        return 2.0 * m * k * n / best_seconds(lambda: torch._int_mm(a, b)) / 1e9
    except (RuntimeError, AttributeError):
        return None


def int8_onnx_gops(m: int, k: int, n: int) -> float:
    """Best ONNX Runtime ``MatMulInteger`` rate (uint8 activations x int8 weights, as dynamic quantization
    runs them) on paraxl's session options."""
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper

    from paraxl.inference.onnx_files import session_options

    rng = np.random.default_rng(0)
    weights = numpy_helper.from_array(rng.integers(-128, 127, (k, n), dtype=np.int8), "B")
    zero_a = numpy_helper.from_array(np.array(128, dtype=np.uint8), "a_zero")
    zero_b = numpy_helper.from_array(np.array(0, dtype=np.int8), "b_zero")
    node = helper.make_node("MatMulInteger", ["A", "B", "a_zero", "b_zero"], ["Y"])
    graph = helper.make_graph(
        [node],
        "int8_peak",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        initializer=[weights, zero_a, zero_b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 9)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), session_options(), providers=["CPUExecutionProvider"]
    )
    feeds = {"A": rng.integers(0, 255, (m, k), dtype=np.uint8)}
    return 2.0 * m * k * n / best_seconds(lambda: session.run(None, feeds)) / 1e9


def matmul_peaks(tokens: int, hidden: int, intermediate: int) -> dict[str, Any]:
    """fp32 and int8 matmul rates (G(FL)OP/s) on the model's feed-forward shape and a 2048² square."""
    shapes = {"model_shaped": (tokens, hidden, intermediate), "square_2048": (2048, 2048, 2048)}
    fp32 = {name: fp32_gflops(*shape) for name, shape in shapes.items()}
    int8: dict[str, float | None] = {}
    for name, shape in shapes.items():
        int8[f"{name}_torch_int_mm"] = int8_torch_gops(*shape)
        int8[f"{name}_onnx_matmulinteger"] = int8_onnx_gops(*shape)
    measured = [value for value in int8.values() if value is not None]
    return {
        "shapes": {name: list(shape) for name, shape in shapes.items()},
        "fp32_gflops": fp32,
        "int8_gops": int8,
        "fp32_peak": max(fp32.values()),
        "int8_peak": max(measured),
    }


# ---------------------------------------------------------------- FLOPs
def model_shape(backbone: Any) -> dict[str, int]:
    config = backbone.config
    embeddings = sum(p.numel() for p in backbone.embeddings.parameters())
    return {
        "non_embedding_params": sum(p.numel() for p in backbone.parameters()) - embeddings,
        "layers": int(config.num_hidden_layers),
        "hidden": int(config.hidden_size),
        "intermediate": int(config.intermediate_size),
    }


def paraxl_shapes(counts: np.ndarray, batch_size: int, max_tokens: int | None) -> list[tuple[int, int]]:
    """(rows, padded length) of each batch paraxl runs: its own plan."""
    from paraxl.modeling.batching import plan_batches

    return [(len(rows), int(counts[rows].max())) for rows in plan_batches(counts, batch_size, max_tokens)]


def st_shapes(counts: np.ndarray, texts: Sequence[str], prefix: str, batch_size: int) -> list[tuple[int, int]]:
    """(rows, padded length) of sentence-transformers' batches: sorted by characters (prompt included)."""
    order = np.argsort([-len(prefix + text) for text in texts], kind="stable")
    return [
        (len(rows), int(counts[rows].max()))
        for rows in (order[start : start + batch_size] for start in range(0, len(order), batch_size))
    ]


def encode_flops(shapes: Sequence[tuple[int, int]], shape: dict[str, int]) -> float:
    """Per padded token 2 x non-embedding params; per layer and sequence 4·seq²·hidden for attention."""
    tokens = sum(rows * length for rows, length in shapes)
    attention = sum(rows * 4 * length * length * shape["hidden"] for rows, length in shapes) * shape["layers"]
    return 2.0 * shape["non_embedding_params"] * tokens + attention


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


def paraxl_system(encoder: Any, batch_size: int) -> Callable[[list[Any]], Any]:
    def run(items: list[Any]) -> Any:
        return encoder.encode(items, batch_size=batch_size, prompt_name=PROMPT, show_progress=False)

    return run


def throughput_section(
    name: str,
    texts: list[str],
    encoders: dict[str, Any],
    st_model: Any,
    args: argparse.Namespace,
    context: dict[str, Any],
) -> dict[str, Any]:
    systems: dict[str, Callable[[list[Any]], Any]] = {
        ST: lambda items: st_model.encode(
            items, batch_size=args.batch_size, prompt_name=PROMPT, convert_to_numpy=True, show_progress_bar=False
        )
    }
    for label, encoder in encoders.items():
        systems[label] = paraxl_system(encoder, args.batch_size)
    seconds, outputs = best_times(systems, texts, args.repeats)
    torch_encoder = encoders["paraxl torch"]
    counts = torch_encoder.tokenize_texts(texts, PROMPT).lengths  # (n,) tokens each, as every system reads them
    shapes = {ST: st_shapes(counts, texts, torch_encoder.prompt_prefix(PROMPT), args.batch_size)}
    for label, encoder in encoders.items():
        shapes[label] = paraxl_shapes(counts, args.batch_size, encoder.max_batch_tokens)
    rows = {}
    for label, secs in seconds.items():
        flops = encode_flops(shapes[label], context["model_shape"])
        peak_kind = "int8" if label.endswith("int8") else "fp32"
        padded = sum(r * length for r, length in shapes[label])
        rows[label] = {
            "seconds": secs,
            "sentences_per_second": len(texts) / secs,
            "ratio_vs_sentence_transformers": seconds[ST] / secs,
            "max_abs_diff_vs_sentence_transformers": float(np.abs(outputs[label] - outputs[ST]).max()),
            "padded_tokens": padded,
            "padding_fraction": 1.0 - int(counts.sum()) / padded,
            "batches": len(shapes[label]),
            "gflop": flops / 1e9,
            "gflops_per_second": flops / secs / 1e9,
            "peak": peak_kind,
            "fraction_of_peak": flops / secs / 1e9 / context["peaks"][f"{peak_kind}_peak"],
            "fraction_of_fp32_peak": flops / secs / 1e9 / context["peaks"]["fp32_peak"],
        }
    return {"name": name, "texts": len(texts), "real_tokens": int(counts.sum()), "systems": rows}


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
    sample: list[tuple[str, str]] = []
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
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("PARAXL_DATA_DIR", "../shared/data")))
    parser.add_argument("--model", default="bundled:multilingual-e5-small")
    parser.add_argument("--n", type=int, default=2000, help="sentences per data set")
    parser.add_argument("--max-texts", type=int, default=None, help="cap every text count (a smoke run)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per system (after one warm-up)")
    parser.add_argument("--pairs-n", type=int, default=1000, help="sentences for all-pairs scoring (0: skip)")
    parser.add_argument("--cross-sample", type=int, default=2000, help="cross-encoder pairs timed")
    parser.add_argument("--pairs-backend", default="torch", help="bi-encoder backend for all-pairs scoring")
    parser.add_argument("--peak-repeats", type=int, default=10, help="timed runs per matmul peak measurement")
    parser.add_argument("--out-name", default="inference")
    args = parser.parse_args()
    PEAK_REPEATS[0] = args.peak_repeats
    if args.max_texts is not None:
        args.n, args.pairs_n = min(args.n, args.max_texts), min(args.pairs_n, args.max_texts)
    return args


def versions() -> dict[str, str]:
    import onnxruntime
    import sentence_transformers
    import transformers

    return {
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "transformers": transformers.__version__,
    }


def main() -> None:
    args = parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # the same tokenizer threads for every system
    import transformers
    from sentence_transformers import SentenceTransformer

    from paraxl.inference.onnx_files import session_settings
    from paraxl.loading.backends import load_encoder
    from paraxl.loading.specs import resolve_model_folder
    from paraxl.modeling.threads import torch_thread_settings

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    folder = resolve_model_folder(args.model)
    start = time.perf_counter()
    encoders: dict[str, Any] = {label: load_encoder(args.model, backend) for label, backend in BACKENDS.items()}
    load_seconds = time.perf_counter() - start  # includes the first-use ONNX export of a bundled model
    st_model = SentenceTransformer(str(folder), device="cpu")
    texts = {"PAWS-X": pawsx_sentences(args.data_dir, args.n), "Tatoeba": tatoeba_sentences(args.data_dir, args.n)}
    shape = model_shape(encoders["paraxl torch"].backbone)
    paws_counts = encoders["paraxl torch"].tokenize_texts(texts["PAWS-X"], PROMPT).lengths
    # the model-shaped GEMM: the median PAWS-X batch's tokens x hidden, times hidden x intermediate
    batch_tokens = int(np.median([r * length for r, length in paraxl_shapes(paws_counts, args.batch_size, None)]))
    context = {"model_shape": shape, "peaks": matmul_peaks(batch_tokens, shape["hidden"], shape["intermediate"])}
    sections = [throughput_section(name, items, encoders, st_model, args, context) for name, items in texts.items()]
    pairs = None
    if args.pairs_n > 0:
        pair_texts = pawsx_sentences(args.data_dir, args.pairs_n)
        pairs = all_pairs_section(pair_texts, load_encoder(args.model, args.pairs_backend), folder, args)
    result = {
        "cpu": cpu_info(),
        "versions": versions(),
        "torch_threads": torch_thread_settings(),
        "onnxruntime_session": session_settings(),
        "tokenizers_parallelism": os.environ.get("TOKENIZERS_PARALLELISM"),
        "model": args.model,
        "batch_size": args.batch_size,
        "max_batch_tokens": {label: encoder.max_batch_tokens for label, encoder in encoders.items()},
        "repeats": args.repeats,
        "load_seconds_all_backends": load_seconds,
        "model_shape": shape,
        "matmul_peaks": context["peaks"],
        "throughput": sections,
        "all_pairs": pairs,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out_name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{args.out_name}.md").write_text(render(result))
    print(render(result))


def render(result: dict[str, Any]) -> str:
    cpu, peaks, threads = result["cpu"], result["matmul_peaks"], result["torch_threads"]
    flags = ", ".join(flag for flag, present in cpu["flags"].items() if present) or "none of the listed"
    session = result["onnxruntime_session"]
    lines = [
        f"CPU: {cpu['model']}, {cpu['available_cpus']} CPUs available ({cpu['physical_cores']} physical cores); "
        f"flags: {flags}.",
        f"Threads: torch intra-op {threads['intra_op_threads']}, inter-op {threads['inter_op_threads']}; ONNX Runtime "
        f"intra-op {session['intra_op_num_threads']}, inter-op {session['inter_op_num_threads']}, "
        f"{session['execution_mode']}, {session['graph_optimization_level']}. Versions: {result['versions']}",
        f"Model `{result['model']}`, batch {result['batch_size']} (paraxl token budget "
        f"{result['max_batch_tokens']['paraxl torch']}), prompt `query: `, best of {result['repeats']} after a "
        "warm-up.",
        f"Matmul peaks: fp32 {peaks['fp32_peak']:.1f} GFLOP/s, int8 {peaks['int8_peak']:.1f} GOP/s (best of "
        f"{peaks['shapes']}; every measurement in the JSON).",
        "",
        "| data | system | sentences/s | × sentence-transformers | max-abs diff vs ST | padding | GFLOP/s | of peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for section in result["throughput"]:
        for label, row in section["systems"].items():
            lines.append(
                f"| {section['name']} ({section['texts']}, {section['real_tokens']} tokens) | {label} | "
                f"{row['sentences_per_second']:.1f} | {row['ratio_vs_sentence_transformers']:.2f} | "
                f"{row['max_abs_diff_vs_sentence_transformers']:.1e} | {row['padding_fraction']:.0%} | "
                f"{row['gflops_per_second']:.1f} | {row['fraction_of_peak']:.0%} {row['peak']} |"
            )
    lines += ["", "FLOPs count padded tokens (what each system computes); int8 counts the same operations."]
    pairs = result["all_pairs"]
    if pairs is not None:
        lines += [
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
