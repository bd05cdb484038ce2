"""Bi-encoder vs cross-encoder vs cascade vs fusion on the PAWS-X resplit (issue 28), one run, one machine.

Usage (the real run: both models score validation + test of 7 languages and the en -> X cells; the
cross-encoder at ~30 pairs/s on 2 cores takes roughly 10 minutes):
    python benchmarks/bench_cascade.py --bi runs/soup/final --cross runs/cross-encoder/final \\
        --data-dir ../shared/data
Smoke test (tiny models, a few pairs):
    python benchmarks/bench_cascade.py --bi BI --cross CE --data-dir ../shared/data --max-pairs 20 \\
        --timing-pairs 40 --name cascade-smoke

Protocol (the one PAWS-X protocol, :func:`paraxl.evaluation.pawsx_protocol.evaluate_pawsx`, on each
model): every threshold, band and fusion weight is fitted on the *validation* split and scored on
*test*. Monolingual: one rule fitted on the 7 languages' validation pairs pooled, accuracy per
language on test (the bi-encoder's and cross-encoder's rows are the protocol's pooled-threshold
numbers). Cross-lingual en -> X (sentence1 English, sentence2 in X, matched by id): a rule fitted on
the en -> X validation cells pooled, as the protocol's en row does. The cascade at each CE budget
(share of validation pairs sent; the share actually sent on test is reported beside it); fusion =
logistic regression on (cosine, CE logit), P >= 0.5.

The ``cascade@target`` row is the issue's bar: the smallest band whose *validation* accuracy reaches
the cross-encoder's validation accuracy (at its own best validation threshold) minus 0.5 points
(``fit_cascade(target_accuracy=...)``); the section's ``target`` block says whether on *test* it
keeps within 0.5 points of the cross-encoder's test accuracy (its row) sending at most 40 % of pairs.

``--bi-backend`` runs the bi-encoder on torch (default) or an ONNX export (fp32 or int8; its rows,
rules and timings then use it). ``--cross-backend`` runs the cross-encoder on torch (default), its
fp32 ONNX export, its int8 export or ``auto`` (``paraxl export-onnx CROSS`` makes the exports):
every row and timing then uses it, and the JSON's ``models.cross`` records the backend (and, on
ONNX, the export's own fingerprint).

Wall time per 1,000 pairs, on the first ``--timing-pairs`` test pairs (all languages), same process:
bi alone, cross alone, each cascade (bi on every pair + CE on the in-band pairs, through
``CascadeScorer``) and fusion (both on every pair).

Writes ``benchmarks/results/<name>.json`` and ``<name>.md`` (naming the CPU and its instruction-set flags,
:mod:`paraxl.evaluation.bench_report`), and ``<name>.png`` (accuracy vs share of pairs sent to the
cross-encoder, with both models' lines).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from paraxl.data.pairs import LabeledPair
from paraxl.data.readers import PAWSX_LANGUAGES, parse_languages, pawsx_file
from paraxl.decision.cascade import CascadeFit, CascadeScorer, fit_cascade
from paraxl.decision.cascade_ceilings import CascadeCeilings
from paraxl.decision.fusion import FusionScorer, fit_fusion
from paraxl.decision.model_scorers import bi_encoder_scorer, cross_encoder_scorer
from paraxl.decision.scorers import PairScorer
from paraxl.decision.threshold import best_threshold
from paraxl.evaluation.bench_report import CPU_FLAGS, cpu_info, present_flags, write_report
from paraxl.evaluation.cross_encoder_eval import cross_encoder_backend
from paraxl.evaluation.pawsx_cross import score_cells
from paraxl.evaluation.pawsx_protocol import PawsxResult, evaluate_pawsx, read_labelled
from paraxl.evaluation.results import git_commit, library_versions
from paraxl.io.atomic import atomic_path
from paraxl.io.hashing import data_file_records
from paraxl.loading.backends import INFERENCE_BACKENDS
from paraxl.loading.model import ResolvedModel, resolve_model

RESULTS = Path(__file__).resolve().parent / "results"
# the instruction-set flags that decide the fp32 and int8 matmul kernels (the timings hinge on them)
BUDGETS = (0.1, 0.2, 0.3, 0.4, 0.5, 1.0)
TARGET = "cascade@target"
TARGET_MARGIN = 0.005  # the bar: within 0.5 points of the cross-encoder ...
TARGET_MAX_SHARE = 0.40  # ... sending at most 40 % of the pairs to it
BAR = "test accuracy >= cross-encoder test accuracy - 0.5 points, with <= 40 % of test pairs sent"
Scores = tuple[np.ndarray, np.ndarray, np.ndarray]  # (cosines, cross scores, labels), each (n,)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bi", required=True, help="bi-encoder: model folder or bundled:NAME")
    parser.add_argument("--cross", required=True, help="cross-encoder folder")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--languages", default=",".join(PAWSX_LANGUAGES))
    parser.add_argument("--budgets", default=",".join(str(b) for b in BUDGETS), help="CE budgets (shares)")
    parser.add_argument("--max-pairs", type=int, default=None, help="first N pairs per language and split")
    parser.add_argument("--timing-pairs", type=int, default=1000, help="test pairs the wall times are taken on")
    parser.add_argument("--batch-size", type=int, default=64, help="bi-encoder texts per forward pass")
    parser.add_argument("--bi-backend", default="torch", choices=INFERENCE_BACKENDS,
                        help="the bi-encoder's backend (onnx, onnx-int8: `paraxl export-onnx BI`)")  # fmt: skip
    parser.add_argument("--cross-backend", default="torch", choices=[*INFERENCE_BACKENDS, "auto"],
                        help="the cross-encoder's backend, for every row and timing (default torch)")  # fmt: skip
    parser.add_argument("--no-cross-lingual", action="store_true", help="skip the en -> X cells")
    parser.add_argument("--name", default="cascade", help="result file stem under --output-dir")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.budget_list = [float(part) for part in args.budgets.split(",") if part.strip()]
    if not all(0.0 <= b <= 1.0 for b in args.budget_list):
        parser.error("--budgets are shares in [0, 1]")
    return args


def read_split(args: argparse.Namespace, split: str, languages: Sequence[str]) -> dict[str, list[LabeledPair]]:
    pairs = read_labelled(args.data_dir, split, languages, "resplit")
    return {lang: rows[: args.max_pairs] if args.max_pairs else rows for lang, rows in pairs.items()}


def pooled(result: PawsxResult, split: str) -> tuple[np.ndarray, np.ndarray]:
    sets = result.fit if split == "fit" else result.test
    return (
        np.concatenate([sets[lang].scores for lang in result.languages]),
        np.concatenate([sets[lang].labels for lang in result.languages]),
    )


def accuracy(decided: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(decided == labels.astype(bool))) if labels.size else float("nan")


def rules_on(fit: Scores, budgets: Sequence[float]) -> dict[str, Any]:
    """Every rule fitted on the validation scores ``fit``: cascades per budget, the target cascade, fusion."""
    cos, cross, labels = fit
    rules: dict[str, Any] = {f"cascade@{b:g}": fit_cascade(cos, cross, labels, budget=b) for b in budgets}
    # the CE alone at its best validation threshold, as fit_cascade measures it; the full band reaches it,
    # so the target (0.5 points below) is always reachable
    _, cross_accuracy = best_threshold(cross, labels)
    rules[TARGET] = fit_cascade(cos, cross, labels, target_accuracy=cross_accuracy - TARGET_MARGIN)
    rules["fusion"] = fit_fusion(cos, cross, labels)
    return rules


def target_check(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether the target cascade meets the issue's bar on test (:data:`BAR`), with the numbers."""
    target, cross = rows[TARGET], rows["cross"]
    within = target["mean"] >= cross["mean"] - TARGET_MARGIN - 1e-12  # 1e-12: float noise of the means
    share = target["test_share_sent"] <= TARGET_MAX_SHARE + 1e-12
    return {"validation_target": target["validation"]["target_accuracy"],
            "validation_cross_accuracy": target["validation"]["cross_accuracy"],
            "test_accuracy": target["mean"], "cross_test_accuracy": cross["mean"],
            "test_share_sent": target["test_share_sent"], "meets_bar": bool(within and share), "bar": BAR}  # fmt: skip


def ceilings(parts: dict[str, Scores], rules: dict[str, Any], budgets: Sequence[float]) -> dict[str, Any]:
    """Per budget (and the bar's 40 %), what no band and no router could beat on these *test* pairs,
    each model at its validation threshold (:mod:`paraxl.decision.cascade_ceilings`): bounds, not results."""
    rule = next(fitted.rule for fitted in rules.values() if isinstance(fitted, CascadeFit))
    bounds = CascadeCeilings(parts, rule.bi_threshold, rule.cross_threshold)
    out: dict[str, Any] = {}
    for budget in sorted({*budgets, TARGET_MAX_SHARE}):
        band, router = bounds.band(budget), bounds.router(budget)
        out[f"{budget:g}"] = {"band": band.mean, "band_share": band.share, "router": router.mean,
                              "router_share": router.share}  # fmt: skip
    return out


def score_rules(rules: dict[str, Any], parts: dict[str, Scores]) -> dict[str, dict[str, Any]]:
    """Test accuracy of each rule per part (a language or an en -> X cell), and its test share sent."""
    table: dict[str, dict[str, Any]] = {}
    for name, fitted in rules.items():
        per_part: dict[str, float] = {}
        sent = []
        for part, (cos, cross, labels) in parts.items():
            per_part[part] = accuracy(fitted.rule.decide(cos, cross), labels)
            sent.append(fitted.rule.in_band(cos) if isinstance(fitted, CascadeFit) else np.ones(cos.size, dtype=bool))
        share = float(np.mean(np.concatenate(sent))) if sent else float("nan")
        values = [v for v in per_part.values() if not np.isnan(v)]
        table[name] = {"accuracy": per_part, "mean": float(np.mean(values)) if values else float("nan"),
                       "test_share_sent": share, "validation": validation_of(fitted)}  # fmt: skip
    return table


def validation_of(fitted: Any) -> dict[str, float]:
    if isinstance(fitted, CascadeFit):
        fields = {"accuracy": fitted.accuracy, "budget": fitted.budget, "lo": fitted.rule.lo, "hi": fitted.rule.hi}
        if "accuracy" in fitted.target:
            fields |= {"target_accuracy": fitted.target["accuracy"], "cross_accuracy": fitted.cross_accuracy}
        return fields
    return {"held_out_accuracy": fitted.held_out_accuracy, "threshold": fitted.rule.threshold}


def single_models(bi: PawsxResult, cross: PawsxResult) -> dict[str, dict[str, Any]]:
    """Each model alone at the protocol's pooled validation threshold."""
    out = {}
    for name, result in (("bi", bi), ("cross", cross)):
        per = {lang: scores.at_pooled.accuracy for lang, scores in result.monolingual.items()}
        out[name] = {"accuracy": per, "mean": float(np.mean(list(per.values()))), "threshold": result.pooled_threshold,
                     "test_share_sent": 0.0 if name == "bi" else 1.0}  # fmt: skip
    return out


def monolingual(
    args: argparse.Namespace, bi: PairScorer, cross: PairScorer, languages: Sequence[str]
) -> dict[str, Any]:
    fit, test = read_split(args, "validation", languages), read_split(args, "test", languages)
    bi_result = evaluate_pawsx(bi, fit, test)
    cross_result = evaluate_pawsx(cross, fit, test)
    fit_scores = (*pooled(bi_result, "fit")[:1], *pooled(cross_result, "fit"))
    parts = {lang: (bi_result.test[lang].scores, cross_result.test[lang].scores, bi_result.test[lang].labels)
             for lang in languages}  # fmt: skip
    rules = rules_on(fit_scores, args.budget_list)
    rows = single_models(bi_result, cross_result) | score_rules(rules, parts)
    n_test = sum(int(p[2].size) for p in parts.values())
    return {"rows": rows, "target": target_check(rows), "n_fit": int(fit_scores[2].size), "n_test": n_test,
            "ceilings": ceilings(parts, rules, args.budget_list), "fit": fit, "test": test, "rules": rules}  # fmt: skip


def cross_lingual(args: argparse.Namespace, bi: PairScorer, cross: PairScorer, mono: dict[str, Any]) -> dict[str, Any]:
    """The en -> X cells: both models score them (score_cells), rules fitted on the validation cells."""
    languages = list(mono["fit"])
    cells = [("en", x) for x in languages if x != "en"]
    scored = {}
    for split in ("fit", "test"):
        bi_cells, _ = score_cells(bi, mono[split], cells)
        cross_cells, _ = score_cells(cross, mono[split], cells)
        scored[split] = {f"en-{x}": (bi_cells[("en", x)].scores, cross_cells[("en", x)].scores,
                                     bi_cells[("en", x)].labels) for _, x in cells}  # fmt: skip
    fit = tuple(np.concatenate([part[i] for part in scored["fit"].values()]) for i in range(3))
    rules = rules_on(fit, args.budget_list)  # type: ignore[arg-type]
    rows: dict[str, dict[str, Any]] = {}
    for name, column in (("bi", 0), ("cross", 1)):  # each model alone at its en -> X validation threshold
        cut, _ = best_threshold(fit[column], fit[2])
        per = {cell: accuracy(parts[column] >= cut, parts[2]) for cell, parts in scored["test"].items()}
        rows[name] = {"accuracy": per, "mean": float(np.nanmean(list(per.values()))), "threshold": cut,
                      "test_share_sent": 0.0 if name == "bi" else 1.0}  # fmt: skip
    rows |= score_rules(rules, scored["test"])
    bounds = ceilings(scored["test"], rules, args.budget_list)
    return {"rows": rows, "target": target_check(rows), "n_fit": int(fit[2].size), "ceilings": bounds, "rules": rules}


def per_thousand(call: Callable[[], object], pairs: int) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000.0 / max(pairs, 1)


def timings(
    bi: PairScorer, cross: PairScorer, mono: dict[str, Any], rules: dict[str, Any], limit: int
) -> dict[str, Any]:
    """Seconds per 1,000 pairs, each way of deciding run on the same test pairs, one after the other."""
    pairs = [(p.first, p.second) for rows in mono["test"].values() for p in rows][:limit]
    bi.score(pairs[:8]), cross.score(pairs[:8])  # warm-up: first-call allocations stay out of the timings
    out: dict[str, Any] = {"pairs": len(pairs)}
    out["bi"] = per_thousand(lambda: bi.score(pairs), len(pairs))
    out["cross"] = per_thousand(lambda: cross.score(pairs), len(pairs))
    for name, fitted in rules.items():
        kind = CascadeScorer if isinstance(fitted, CascadeFit) else FusionScorer
        out[name] = per_thousand(partial(kind(fitted.rule, bi, cross).decide, pairs), len(pairs))
    return out


def markdown(document: dict[str, Any]) -> str:
    models, cpu = document["models"], document["machine"]["cpu"]
    lines = [f"# Cascade and fusion: {models['bi']['spec']} + {models['cross']['spec']}", ""]
    flags = ", ".join(present_flags(cpu)) or "none listed"
    lines += [f"PAWS-X resplit, rules fitted on validation, scored on test; bi-encoder on "
              f"{models['bi']['backend']}, cross-encoder on {models['cross']['backend']}. "
              f"{document['note']}. Timings: {cpu['model']}, "
              f"{cpu['available_cpus']} CPUs, flags: {flags}.", ""]  # fmt: skip
    for section in ("monolingual", "en_to_xx"):
        block = document.get(section)
        if not block:
            continue
        parts = list(block["rows"]["bi"]["accuracy"])
        lines += [f"## {section} (validation pairs: {block['n_fit']})", ""]
        lines += ["| rule | CE share (test) | mean | " + " | ".join(parts) + " | ms / 1k pairs |"]
        lines += ["|---" * (len(parts) + 4) + "|"]
        for name, row in block["rows"].items():
            timing = document["timings"].get(name) if section == "monolingual" else None
            cells = " | ".join(f"{100 * row['accuracy'][part]:.2f}" for part in parts)
            ms = f"{1000 * timing:.0f}" if isinstance(timing, float) else ""
            lines.append(
                f"| {name} | {100 * row['test_share_sent']:.1f} % | {100 * row['mean']:.2f} | {cells} | {ms} |"
            )
        lines += ["", target_line(block["target"]), "", *ceiling_lines(block), ""]
    return "\n".join(lines) + "\n"


def target_line(check: dict[str, Any]) -> str:
    """The target cascade against the issue's bar, one sentence."""
    verdict = "**meets**" if check["meets_bar"] else "**misses**"
    return (
        f"{TARGET}: fitted for validation accuracy {100 * check['validation_target']:.2f} (the cross-encoder's "
        f"{100 * check['validation_cross_accuracy']:.2f} - 0.5); on test {100 * check['test_accuracy']:.2f} vs "
        f"the cross-encoder's {100 * check['cross_test_accuracy']:.2f}, sending "
        f"{100 * check['test_share_sent']:.1f} % of pairs: {verdict} the bar ({check['bar']})."
    )


def ceiling_lines(block: dict[str, Any]) -> list[str]:
    """The ceilings as a table, and whether any band could meet the bar (older JSONs have none)."""
    bounds = block.get("ceilings")
    if not bounds:
        return []
    lines = [
        "Ceilings on the test pairs themselves (each model at its validation threshold; bounds, not results):",
        "",
        "| CE budget | best band: mean (share sent) | any router: mean (share sent) |",
        "|---|---|---|",
    ]
    for budget, row in bounds.items():
        band = f"{100 * row['band']:.2f} ({100 * row['band_share']:.1f} %)"
        lines.append(
            f"| {100 * float(budget):g} % | {band} | {100 * row['router']:.2f} ({100 * row['router_share']:.1f} %) |"
        )
    bar, needed = bounds[f"{TARGET_MAX_SHARE:g}"], block["rows"]["cross"]["mean"] - TARGET_MARGIN
    if bar["band"] >= needed - 1e-12:
        verdict = "a band that meets it exists on test (whether validation finds it: the target row)"
    else:
        verdict = "no cosine band at these thresholds meets it with these two models"
    reached = f"At {100 * TARGET_MAX_SHARE:g} % sent, the best band on test reaches {100 * bar['band']:.2f}"
    return [*lines, "", f"{reached} against the bar's {100 * needed:.2f}: {verdict}."]


def plot(document: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for section, style in (("monolingual", "-"), ("en_to_xx", "--")):
        block = document.get(section)
        if not block:
            continue
        rows = block["rows"]
        cascade = sorted(
            (row["test_share_sent"], row["mean"])
            for name, row in rows.items()
            if name.startswith("cascade@") and name != TARGET
        )
        axes.plot(
            [100 * x for x, _ in cascade], [100 * y for _, y in cascade], "o" + style, label=f"cascade ({section})"
        )
        for name, color in (("bi", "tab:blue"), ("cross", "tab:red")):
            axes.axhline(100 * rows[name]["mean"], color=color, linestyle=style, linewidth=1,
                         label=f"{name}-encoder alone ({section})")  # fmt: skip
        axes.plot([100.0], [100 * rows["fusion"]["mean"]], "*", markersize=10, label=f"fusion ({section})")
        target = rows[TARGET]
        axes.plot([100 * target["test_share_sent"]], [100 * target["mean"]], "D", label=f"target cascade ({section})")
    axes.set_xlabel("pairs sent to the cross-encoder (% of test pairs)")
    axes.set_ylabel("mean test accuracy (%)")
    axes.set_title("PAWS-X resplit: bi/cross cascade")
    axes.legend(fontsize=7)
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, format="png", dpi=130)
    plt.close(figure)


def write(document: dict[str, Any], args: argparse.Namespace) -> None:
    stem = args.output_dir / args.name
    write_report(stem, document, markdown(document))  # makes the folder
    plot(document, stem.with_suffix(".png"))
    print(f"wrote {stem}.json, .md and .png", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    languages = parse_languages(args.languages, PAWSX_LANGUAGES, "PAWS-X")
    bi_model, cross_model = resolve_model(args.bi, args.bi_backend), resolve_model(args.cross)
    cross_backend, reason = cross_encoder_backend(cross_model.folder, args.cross_backend)
    cross_model = ResolvedModel(cross_model.spec, cross_model.folder, cross_backend)
    print(f"cross-encoder: {reason}", flush=True)
    start = time.perf_counter()
    bi = bi_encoder_scorer(bi_model, args.batch_size).scorer
    cross = cross_encoder_scorer(cross_model)
    mono = monolingual(args, bi, cross, languages)
    print(f"monolingual done ({time.perf_counter() - start:.0f} s)", flush=True)
    en_row = (
        None
        if args.no_cross_lingual or "en" not in languages or len(languages) < 2
        else cross_lingual(args, bi, cross, mono)
    )
    document = {
        "benchmark": "bench_cascade",
        "note": "budgets are shares of validation pairs; the share actually sent on test is in the CE share column",
        "models": {
            "bi": {"spec": bi_model.spec, "fingerprint": bi_model.weights_fingerprint, "backend": bi_model.backend},
            "cross": cross_identity(cross_model, cross, reason),
        },
        "args": {key: str(value) for key, value in vars(args).items()},
        "data": data_file_records(
            [
                pawsx_file(args.data_dir, "resplit", lang, split)
                for lang in languages
                for split in ("validation", "test")
            ],
            args.data_dir,
        ),
        "monolingual": {key: mono[key] for key in ("rows", "target", "n_fit", "n_test", "ceilings")},
        "en_to_xx": {key: en_row[key] for key in ("rows", "target", "n_fit", "ceilings")} if en_row else None,
        "timings": timings(bi, cross, mono, mono["rules"], args.timing_pairs),
        "seconds": time.perf_counter() - start,
        "machine": {"cpu": cpu_info(CPU_FLAGS)},
        "versions": library_versions(),
        "git": git_commit(),
    }
    assert "task" not in document  # tests/test_eval_scores.py reads every results JSON with a "task" as an eval result
    write(document, args)


def cross_identity(model: ResolvedModel, scorer: PairScorer, reason: str) -> dict[str, Any]:
    """The cross-encoder as the JSON records it: weights fingerprint, backend, and an ONNX export's own fingerprint."""
    record: dict[str, Any] = {"spec": model.spec, "fingerprint": model.weights_fingerprint,
                              "backend": model.backend, "backend_reason": reason}  # fmt: skip
    if model.backend != "torch":
        record["export_fingerprint"] = getattr(scorer, "fingerprint", None)
    return record


if __name__ == "__main__":
    main()
