"""Random draws that a seed reproduces on every Python version.

Python guarantees only that `random.Random(seed).random()` gives the same sequence for an
integer seed on every version; `randrange`, `sample`, `choice` and `uniform` may change.
So everything here is built on `random()` alone with the algorithms written out:
- `below(n)`: an integer uniform in [0, n), exactly (52-bit chunks, rejection), any n;
- `sample_distinct(total, n)`: n distinct indices of [0, total) by a partial
  Fisher–Yates shuffle over a virtual array (O(n) memory, whatever the total);
- `uniform(A,B)`: A + (B - A) · u; `loguniform(A,B)`: exp(ln A + (ln B - ln A) · u),
  clamped to [A, B]; `randint(A,B)`: A + below(B - A + 1).
"""
from __future__ import annotations

import math
import random

from .choices import Draw

_CHUNK = 1 << 52


def below(rng: random.Random, n: int) -> int:
    """Uniform in [0, n): `random()` is k/2**53, so int(random() * 2**52) is uniform on
    52 bits; enough chunks make a number of at least n's bits, and rejecting the top
    partial block leaves no bias."""
    if n <= 0:
        raise ValueError("below() needs n >= 1")
    chunks = max(1, -(-n.bit_length() // 52))
    space = _CHUNK**chunks
    limit = space - space % n
    while True:
        v = 0
        for _ in range(chunks):
            v = v * _CHUNK + int(rng.random() * _CHUNK)
        if v < limit:
            return v % n


def sample_distinct(rng: random.Random, total: int, n: int) -> list[int]:
    """n distinct indices of range(total) in draw order; only the swapped slots are stored."""
    if not 0 <= n <= total:
        raise ValueError("sample_distinct() needs 0 <= n <= total")
    moved: dict[int, int] = {}
    out: list[int] = []
    for i in range(n):
        j = i + below(rng, total - i)
        out.append(moved.get(j, j))
        moved[j] = moved.get(i, i)
    return out


def draw(rng: random.Random, d: Draw) -> int | float:
    """One value of a distribution."""
    if d.dist == "randint":
        return int(d.low) + below(rng, int(d.high) - int(d.low) + 1)
    low, high, u = float(d.low), float(d.high), rng.random()
    if d.dist == "uniform":
        return min(low + (high - low) * u, math.nextafter(high, low))
    v = math.exp(math.log(low) + (math.log(high) - math.log(low)) * u)
    return min(max(v, low), high)
