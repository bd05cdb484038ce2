"""Why SIB-200 por_Latn scores low under MTEB's classifier: spread of the embeddings and C.

Usage:
    python benchmarks/sib200_regularisation.py --data-dir ../shared/data

For por_Latn, eng_Latn and spa_Latn with the bundled e5-small (embeddings from the on-disk
evaluation cache when ``paraxl eval`` filled it): mean pairwise cosine of the train split,
test accuracy of ``LogisticRegression`` at C = 1 (MTEB's setting, what the sib200 task uses)
and C = 10, the number of topics the C = 1 model predicts, and how well the Portuguese test
sentences retrieve their English originals. Writes ``benchmarks/results/sib200_regularisation.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from paraxl.evaluation.embeddings import CachedEmbedder, cache_folder
from paraxl.evaluation.loaders.classification import read_sib200
from paraxl.io.hashing import model_folder_fingerprint
from paraxl.loading.specs import DEFAULT_MODEL, resolve_model_folder
from paraxl.modeling.bi_encoder import BiEncoder
from paraxl.paths import cache_dir

LANGUAGES = ("por_Latn", "eng_Latn", "spa_Latn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    folder = resolve_model_folder(DEFAULT_MODEL)
    embedder = CachedEmbedder(BiEncoder.load(folder), cache_folder(cache_dir(), model_folder_fingerprint(folder)))
    rows = {}
    embedded = {}
    for language in LANGUAGES:
        train = read_sib200(args.data_dir, language, "train")
        test = read_sib200(args.data_dir, language, "test")
        train_x, test_x = embedder.embed(list(train.texts)), embedder.embed(list(test.texts))
        embedded[language] = test_x
        similarity = train_x @ train_x.T
        row = {"mean_pairwise_cosine_train": float(similarity[~np.eye(len(train_x), dtype=bool)].mean())}
        for c in (1.0, 10.0):
            model = LogisticRegression(C=c, max_iter=1000, random_state=0).fit(train_x, train.labels)
            predicted = model.predict(test_x)
            row[f"accuracy_C{c:g}"] = float(np.mean(predicted == np.asarray(test.labels)))
            row[f"topics_predicted_C{c:g}"] = len(set(predicted.tolist()))
        rows[language] = row
    retrieval = embedded["por_Latn"] @ embedded["eng_Latn"].T  # row i: Portuguese test i vs every English test
    rows["por_Latn"]["paired_cosine_with_english_mean"] = float(np.mean(np.diag(retrieval)))
    rows["por_Latn"]["retrieves_its_english_original"] = int(
        np.sum(retrieval.argmax(axis=1) == np.arange(len(retrieval)))
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sib200_regularisation.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "| language | mean pairwise cosine (train) | acc C=1 | topics predicted C=1 | acc C=10 |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {lang} | {r['mean_pairwise_cosine_train']:.3f} | {100 * r['accuracy_C1']:.1f} | "
        f"{r['topics_predicted_C1']} | {100 * r['accuracy_C10']:.1f} |"
        for lang, r in rows.items()
    ]
    por = rows["por_Latn"]
    lines.append(
        f"\npor_Latn test vs eng_Latn test: mean paired cosine {por['paired_cosine_with_english_mean']:.3f}, "
        f"{por['retrieves_its_english_original']}/{len(retrieval)} retrieve their English original."
    )
    (args.out / "sib200_regularisation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
