"""Train the retail-vision example's three model versions and write the artifacts fleet.yaml names.

The "products" are scikit-learn's bundled 8x8 digit images (no download), class i standing for
PRODUCTS[i]. Three versions tell the story the rest of the example needs:

- v1: the baseline, logistic regression on standardized pixels;
- v2: a clearly better RBF support-vector classifier;
- v3: the v2 recipe retrained on badly relabelled data. Its overall accuracy stays within
  2.5 points of v1, so a gate on accuracy alone lets it through, but its recall on "donut"
  and "icecream" is more than 20 points below v1's: only a per-product gate stops it.

It also writes the reference set (held out, looks like production input, for drift profiles)
and the labelled evaluation set (for quality gates). Every file is byte-for-byte reproducible.

    python examples/retail-vision/train.py [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Final, NamedTuple

import joblib
import numpy as np
from numpy.typing import NDArray
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

PRODUCTS: Final[list[str]] = [
    "apple",
    "banana",
    "carrot",
    "donut",
    "egg",
    "fig",
    "grape",
    "honey",
    "icecream",
    "juice",
]

DEFAULT_OUT: Final = Path(__file__).resolve().parent / "artifacts"
VERSIONS: Final = ("v1", "v2", "v3")
DATASETS: Final = ("reference", "evaluation")

# v3's recipe below is calibrated against this split. The room between v1 and v2 differs a
# lot from split to split, and on most splits no v3 can be both within 2.5 points of v1
# overall and 20 points worse on two products: change the seed and v3 must be recalibrated.
SPLIT_SEED: Final = 1

# v3's flaw: before retraining, an annotator relabelled the `count` training images of
# `product` that look most like `as_product` (nearest to its mean image) as `as_product`.
# The counts sit in a window a few evaluation images wide: fewer and the two products lose
# under 20 points of recall, more and v3's overall accuracy falls more than 2.5 points
# below v1's. Each of the three margins is one evaluation image.
MISLABELLED: Final = (
    # (product, as_product, count of the product's training images)
    (3, 9, 29),  # donut -> juice, out of 110
    (8, 1, 38),  # icecream -> banana, out of 104
)

Pixels = NDArray[np.float32]
Labels = NDArray[np.int64]


class Split(NamedTuple):
    pixels: Pixels
    label: Labels


class Scores(NamedTuple):
    accuracy: float
    recall: list[float]  # recall[i] is the recall of PRODUCTS[i]


def load_splits() -> dict[str, Split]:
    """The digits split 60/20/20 into train, reference and evaluation, stratified by class."""
    digits = load_digits()
    pixels = digits.data.astype(np.float32)
    label = digits.target.astype(np.int64)
    x_train, x_rest, y_train, y_rest = train_test_split(
        pixels, label, test_size=0.4, random_state=SPLIT_SEED, stratify=label
    )
    x_ref, x_eval, y_ref, y_eval = train_test_split(
        x_rest, y_rest, test_size=0.5, random_state=SPLIT_SEED, stratify=y_rest
    )
    return {
        "train": Split(x_train, y_train),
        "reference": Split(x_ref, y_ref),
        "evaluation": Split(x_eval, y_eval),
    }


def baseline() -> Pipeline:
    # The lbfgs default of 100 iterations stops short on these pixels (ConvergenceWarning).
    return Pipeline([("scale", StandardScaler()), ("classify", LogisticRegression(max_iter=5000))])


def support_vectors() -> Pipeline:
    # SVC(probability=True) is deprecated since scikit-learn 1.9; this is its replacement,
    # and its 5 folds are unshuffled, so it stays deterministic.
    classifier = CalibratedClassifierCV(SVC(), ensemble=False)
    return Pipeline([("scale", StandardScaler()), ("classify", classifier)])


def mislabel(train: Split) -> Labels:
    """The training labels after the bad relabelling pass that produces v3 (see MISLABELLED)."""
    label = train.label.copy()
    for product, as_product, count in MISLABELLED:
        mean_image = train.pixels[train.label == as_product].mean(axis=0)
        own = np.flatnonzero(train.label == product)
        distance = ((train.pixels[own] - mean_image) ** 2).sum(axis=1)
        label[own[np.argsort(distance, kind="stable")[:count]]] = as_product
    return label


def fit_versions(train: Split) -> dict[str, Pipeline]:
    return {
        "v1": baseline().fit(train.pixels, train.label),
        "v2": support_vectors().fit(train.pixels, train.label),
        "v3": support_vectors().fit(train.pixels, mislabel(train)),
    }


def save_dataset(path: Path, split: Split) -> None:
    # np.savez writes its zip entries with the fixed 1980-01-01 timestamp, so the bytes
    # depend only on the arrays; the uncompressed form keeps that independent of zlib too.
    np.savez(path, pixels=split.pixels, label=split.label)


def train(out: Path = DEFAULT_OUT) -> dict[str, Path]:
    """Train v1-v3 and write them and both data sets into `out`; returns each file by stem."""
    out.mkdir(parents=True, exist_ok=True)
    splits = load_splits()
    paths: dict[str, Path] = {}
    for version, model in fit_versions(splits["train"]).items():
        paths[version] = out / f"{version}.joblib"
        joblib.dump(model, paths[version])
    for name in DATASETS:
        paths[name] = out / f"{name}.npz"
        save_dataset(paths[name], splits[name])
    return paths


def score(model: Pipeline, evaluation: Split) -> Scores:
    predicted = model.predict(evaluation.pixels)
    recall = recall_score(
        evaluation.label, predicted, labels=list(range(len(PRODUCTS))), average=None
    )
    return Scores(float(accuracy_score(evaluation.label, predicted)), [float(r) for r in recall])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report(paths: dict[str, Path]) -> str:
    """Per-version accuracy and per-product recall on the evaluation set, and file digests.

    It reads everything back from disk, so it shows what was written, not what was fitted.
    """
    with np.load(paths["evaluation"]) as data:
        evaluation = Split(data["pixels"], data["label"])
    scores = {v: score(joblib.load(paths[v]), evaluation) for v in VERSIONS}
    lines = [
        "products: " + ", ".join(f"{i}={p}" for i, p in enumerate(PRODUCTS)),
        f"evaluation set: {len(evaluation.label)} images; recall per product",
        f"{'':12}" + "".join(f"{v:>7}" for v in VERSIONS),
    ]
    for i, product in enumerate(PRODUCTS):
        cells = "".join(f"{scores[v].recall[i]:>7.3f}" for v in VERSIONS)
        lines.append(f"{i} {product:<10}{cells}")
    lines.append(f"{'accuracy':<12}" + "".join(f"{scores[v].accuracy:>7.3f}" for v in VERSIONS))
    lines.append("sha256")
    lines += [f"  {sha256(path)}  {path}" for path in paths.values()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Train the retail-vision example's models and write its artifacts."
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"directory for the artifacts (default: {DEFAULT_OUT})",
    )
    args = parser.parse_args(argv)
    print(report(train(args.out)))


if __name__ == "__main__":
    main()
