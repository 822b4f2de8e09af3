"""Helpers shared by the steps: the model's forward pass and deterministic .npz files."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

# A fixed timestamp for every member of the .npz files we write, so that the same arrays
# always give the same bytes (np.savez stamps the current time into the zip, which would
# defeat pipetool's early cutoff and make the lock file differ between runs).
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Like np.savez, but byte-for-byte deterministic. Creates parent directories."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    tmp.replace(path)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict_proba(W: np.ndarray, b: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Class probabilities of a softmax-regression model (W: features x classes)."""
    return softmax(X @ W + b)


def cross_entropy(P: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the integer labels y under probabilities P."""
    return float(-np.mean(np.log(P[np.arange(len(y)), y] + 1e-12)))
