"""Step 2 (Python callable `src.features:build`): polynomial features + standardization.

pipetool calls `build` with `params` (the declared params as a nested dict, here
{"features": {...}}), `deps` and `outs` (lists of pathlib.Path relative to the project
root, in the order pipeline.yaml lists them).
"""
from __future__ import annotations

from itertools import combinations_with_replacement
from pathlib import Path

import numpy as np

from src.common import save_npz


def load_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return data[:, :-1], data[:, -1].astype(np.int64)


def polynomial(X: np.ndarray, degree: int) -> np.ndarray:
    """All monomials of the columns of X of total degree 1..degree (no constant term)."""
    cols = []
    for d in range(1, degree + 1):
        for combo in combinations_with_replacement(range(X.shape[1]), d):
            cols.append(np.prod(X[:, list(combo)], axis=1))
    return np.column_stack(cols)


def build(params: dict, deps: list[Path], outs: list[Path]) -> None:
    cfg = params["features"]
    degree = int(cfg["degree"])
    if degree < 1:
        raise ValueError(f"features.degree must be >= 1, got {degree}")
    prepared, out = deps[0], outs[0]

    X_train, y_train = load_csv(prepared / "train.csv")
    X_test, y_test = load_csv(prepared / "test.csv")
    F_train, F_test = polynomial(X_train, degree), polynomial(X_test, degree)

    # Statistics come from the training split only, then are applied to both splits.
    if cfg.get("standardize", True):
        mean, std = F_train.mean(axis=0), F_train.std(axis=0)
        std[std == 0] = 1.0
    else:
        mean, std = np.zeros(F_train.shape[1]), np.ones(F_train.shape[1])
    F_train, F_test = (F_train - mean) / std, (F_test - mean) / std

    save_npz(out, X_train=F_train, y_train=y_train, X_test=F_test, y_test=y_test,
             mean=mean, std=std)
    print(f"features: degree {degree} -> {F_train.shape[1]} columns -> {out}")
