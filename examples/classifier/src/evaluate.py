"""Step 4 (shell command): score the model on both splits and write a metrics JSON.

    python src/evaluate.py --model models/model.npz --features data/features.npz \
        --out metrics/eval.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# Run as a script (`python src/evaluate.py`), so put the project root on sys.path to
# import the shared helpers; src/common.py is listed among this target's deps.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from src.common import cross_entropy, predict_proba


def scores(W, b, X, y) -> tuple[float, float]:
    P = predict_proba(W, b, X)
    return float(np.mean(P.argmax(axis=1) == y)), cross_entropy(P, y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--features", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    with np.load(args.model) as model:
        W, b = model["W"], model["b"]
    with np.load(args.features) as data:
        split = {name: data[name] for name in ("X_train", "y_train", "X_test", "y_test")}
    acc, loss = scores(W, b, split["X_test"], split["y_test"])
    train_acc, train_loss = scores(W, b, split["X_train"], split["y_train"])
    metrics = {
        "accuracy": round(acc, 4),
        "loss": round(loss, 4),
        "train_accuracy": round(train_acc, 4),
        "train_loss": round(train_loss, 4),
        "n_test": len(split["y_test"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    print(f"evaluate: test accuracy {acc:.4f}, loss {loss:.4f} -> {args.out}")


if __name__ == "__main__":
    main()
