"""Step 1 (shell command): generate a synthetic dataset and split it into train/test.

Three noisy concentric rings in 2-D, one class per ring: a linear model on the raw
coordinates cannot separate them, a linear model on degree-2 features (x^2 + y^2 is
the squared radius) can. Everything is derived from --seed, so the output is
byte-identical for the same arguments.

    python src/prepare.py --n-samples 1500 --classes 3 --noise 0.25 \
        --test-split 0.25 --seed 42 --out data/prepared
writes data/prepared/train.csv and data/prepared/test.csv (columns x1,x2,label).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def make_rings(n_samples: int, n_classes: int, noise: float, rng: np.random.Generator):
    labels = np.arange(n_samples) % n_classes
    radius = 1.0 + labels + rng.normal(0.0, noise, n_samples)
    angle = rng.uniform(0.0, 2.0 * np.pi, n_samples)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return X, labels


def write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    with path.open("w") as f:
        f.write("x1,x2,label\n")
        for (a, b), label in zip(X, y):
            f.write(f"{a:.6f},{b:.6f},{int(label)}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-samples", type=int, required=True)
    ap.add_argument("--classes", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.25)
    ap.add_argument("--test-split", type=float, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    args = ap.parse_args()
    if not 0.0 < args.test_split < 1.0:
        ap.error("--test-split must lie strictly between 0 and 1")

    rng = np.random.default_rng(args.seed)
    X, y = make_rings(args.n_samples, args.classes, args.noise, rng)
    order = rng.permutation(args.n_samples)
    n_test = round(args.n_samples * args.test_split)
    test, train = order[:n_test], order[n_test:]

    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "train.csv", X[train], y[train])
    write_csv(args.out / "test.csv", X[test], y[test])
    print(f"prepare: {len(train)} train / {len(test)} test rows, "
          f"{args.classes} classes -> {args.out}")


if __name__ == "__main__":
    main()
