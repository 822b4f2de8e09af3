"""Resource slots (`--resources gpu=2,mem_gb=32`): what the running targets hold, what is free.

Only declared names are counted: a target asking for a resource nobody declared runs
unconstrained on it (SPEC §8), so that a pipeline written for a GPU box still runs, one
target per job slot, on a laptop that declares nothing.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

Need = Iterable[tuple[str, float]]  # a target's `resources`: (name, amount) pairs

# Amounts are floats (mem_gb=0.5): a hold of 0.1 + 0.2 must give back what it took.
EPS = 1e-9


class Slots:
    def __init__(self, capacity: Mapping[str, float]):
        self.capacity = dict(capacity)
        self.free = dict(capacity)

    def fits(self, need: Need) -> bool:
        """True when every declared resource in `need` is free in that amount now."""
        return all(amount <= self.free[name] + EPS for name, amount in need if name in self.free)

    def take(self, need: Need) -> None:
        for name, amount in need:
            if name in self.free:
                self.free[name] -= amount

    def give(self, need: Need) -> None:
        for name, amount in need:
            if name in self.free:
                # never above the total, whatever rounding did
                self.free[name] = min(self.capacity[name], self.free[name] + amount)


def too_big(need: Need, capacity: Mapping[str, float]) -> list[tuple[str, float, float]]:
    """(name, asked, total) for each declared resource `need` asks more of than exists:
    such a target could never start."""
    return [(name, amount, capacity[name]) for name, amount in need
            if name in capacity and amount > capacity[name] + EPS]
