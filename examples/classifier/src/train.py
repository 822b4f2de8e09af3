"""Step 3 (Python callable `src.train:train`): softmax regression by gradient descent.

pipetool passes each declared param by its last key segment (`train.lr` -> `lr`), plus
`deps` and `outs` (lists of pathlib.Path relative to the project root).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from src.common import cross_entropy, predict_proba, save_npz


def fit(X: np.ndarray, y: np.ndarray, lr: float, epochs: int, l2: float):
    """Full-batch gradient descent on the L2-regularized cross-entropy. Deterministic."""
    n, d = X.shape
    k = int(y.max()) + 1
    Y = np.eye(k)[y]
    W, b = np.zeros((d, k)), np.zeros(k)
    losses = []
    for _ in range(epochs):
        P = predict_proba(W, b, X)
        G = (P - Y) / n
        W -= lr * (X.T @ G + l2 * W)
        b -= lr * G.sum(axis=0)
        losses.append(cross_entropy(P, y) + 0.5 * l2 * float((W * W).sum()))
    return W, b, np.array(losses)


def train(lr: float, epochs: int, l2: float, deps: list[Path], outs: list[Path]) -> None:
    with np.load(deps[0]) as data:
        X, y = data["X_train"], data["y_train"]
    W, b, losses = fit(X, y, float(lr), int(epochs), float(l2))
    save_npz(outs[0], W=W, b=b, loss_history=losses)
    print(f"train: lr={lr} epochs={epochs} l2={l2} final loss {losses[-1]:.4f} -> {outs[0]}")
