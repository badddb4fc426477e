"""Shapley values of players (data providers) for a coalition utility, exact or sampled.

Pure functions over `utility(frozenset[str]) -> float`: nothing here knows about models or
files, so the properties that make Shapley values fair (efficiency, symmetry, null player) are
tested on synthetic utilities, and the model-training utility of `value.py` plugs in unchanged.

- `exact_shapley`: every coalition is evaluated once (2**n utilities, cached), then each
  player's value is the weighted mean of its marginal contributions. Used up to `EXACT_LIMIT`
  players (1024 coalitions).
- `montecarlo_shapley`: random permutations (Castro et al. 2009); a player's value is the mean
  of its marginal contributions over the sampled orders, with the standard error of that mean.
  Each permutation's marginals sum to v(N) - v(empty), so efficiency holds exactly here too.
  Utilities are cached by coalition, so a coalition met again costs nothing.

Both are deterministic: players are taken in sorted order and permutations come from
`numpy.random.default_rng(seed)`.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..errors import InvalidInput

Utility = Callable[[frozenset[str]], float]

EXACT_LIMIT = 10
DEFAULT_PERMUTATIONS = 200


class ShapleyResult(BaseModel):
    """Each player's value (and its standard error: 0 when exact), with the two ends of the game."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Literal["exact", "montecarlo"]
    values: dict[str, float]
    std_errors: dict[str, float]
    grand: float
    empty: float
    permutations: int
    evaluations: int
    seed: int | None


class _Cached:
    """The utility, evaluated at most once per coalition."""

    def __init__(self, utility: Utility) -> None:
        self._utility = utility
        self.cache: dict[frozenset[str], float] = {}

    def __call__(self, coalition: frozenset[str]) -> float:
        if coalition not in self.cache:
            self.cache[coalition] = float(self._utility(coalition))
        return self.cache[coalition]


def _players(players: Iterable[str]) -> list[str]:
    names = list(players)
    dupes = sorted(name for name, count in Counter(names).items() if count > 1)
    if dupes:
        raise InvalidInput(f"player {dupes[0]!r} is named more than once",
                           hint="give each provider once; put all its files under the one name")
    return sorted(names)


def exact_shapley(players: Iterable[str], utility: Utility) -> ShapleyResult:
    """Exact Shapley values: 2**n utility evaluations, each coalition once."""
    names = _players(players)
    n = len(names)
    if n > 20:
        raise InvalidInput(f"exact Shapley values over {n} players need 2**{n} coalitions",
                           hint="use montecarlo_shapley (permutation sampling) beyond a few players")
    v = _Cached(utility)
    by_mask = [v(frozenset(names[i] for i in range(n) if mask >> i & 1)) for mask in range(1 << n)]
    # Weight of a coalition of size s that a player joins: s! (n - s - 1)! / n!
    weights = [math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) for s in range(n)]
    values = {}
    for i, name in enumerate(names):
        bit = 1 << i
        total = 0.0
        for mask in range(1 << n):
            if not mask & bit:
                total += weights[mask.bit_count()] * (by_mask[mask | bit] - by_mask[mask])
        values[name] = total
    return ShapleyResult(method="exact", values=values, std_errors={p: 0.0 for p in names},
                         grand=by_mask[-1], empty=by_mask[0], permutations=0, evaluations=len(v.cache), seed=None)


def montecarlo_shapley(players: Iterable[str], utility: Utility, *, permutations: int = DEFAULT_PERMUTATIONS,
                       seed: int = 0) -> ShapleyResult:
    """Shapley values estimated from `permutations` random orders of the players, with the
    standard error of each estimate (sample standard deviation of the marginals / sqrt(m))."""
    names = _players(players)
    if permutations < 2:
        raise InvalidInput(f"{permutations} permutations cannot give a standard error",
                           hint="sample at least 2 permutations (hundreds for a useful estimate)")
    n = len(names)
    v = _Cached(utility)
    empty = v(frozenset())
    marginals = np.zeros((permutations, n))
    rng = np.random.default_rng(seed)
    for k in range(permutations):
        coalition: frozenset[str] = frozenset()
        before = empty
        for i in rng.permutation(n):
            coalition = coalition | {names[i]}
            after = v(coalition)
            marginals[k, i] = after - before
            before = after
    means = marginals.mean(axis=0)
    errors = marginals.std(axis=0, ddof=1) / math.sqrt(permutations)
    return ShapleyResult(method="montecarlo", values={p: float(means[i]) for i, p in enumerate(names)},
                         std_errors={p: float(errors[i]) for i, p in enumerate(names)},
                         grand=v(frozenset(names)), empty=empty, permutations=permutations,
                         evaluations=len(v.cache), seed=seed)


def shapley(players: Iterable[str], utility: Utility, *, exact_limit: int = EXACT_LIMIT,
            permutations: int | None = None, seed: int = 0) -> ShapleyResult:
    """Exact up to `exact_limit` players, else Monte Carlo; `permutations` forces Monte Carlo
    with that many permutations whatever the number of players."""
    names = _players(players)
    if permutations is None and len(names) <= exact_limit:
        return exact_shapley(names, utility)
    return montecarlo_shapley(names, utility, permutations=permutations or DEFAULT_PERMUTATIONS, seed=seed)
