"""Thinned Bernoulli draws: each person's event has its own probability, and only the
people picked with a bound on those probabilities have theirs computed.

Bounded by the rate tables' maximum (:func:`candidates`), a draw picks ``n * bound``
people. When a person's probability is a table entry times their own multiplier, one
bound of the table's maximum times the largest multiplier wastes work on the gamma tail: with a shape of 0.5
among a million people the largest multiplier is about 25 times the mean. Grouped by
powers of two, everyone in a stratum is within a factor of 2 of its bound, so the
people picked are at most about twice the events (plus the table's own spread, as
without multipliers); see :class:`Strata`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def candidates(n: int, bound: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Thinning for per-person Bernoulli draws whose probabilities are all <= ``bound``.

    Returns the people picked, each independently with probability ``min(bound, 1)``
    (by geometric gaps, so the work is proportional to the number picked), and a
    uniform on ``[0, min(bound, 1))`` for each. A person whose probability is ``p``
    has ``u < p`` with probability exactly ``p``; competing events use ``[p1, p1 + p2)``
    and so on.
    """
    if bound <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    if bound >= 1:
        return np.arange(n), rng.random(n)
    if bound < 1e-9:  # geometric gaps this long could overflow; a handful of people at most
        picked = np.sort(rng.choice(n, size=rng.binomial(n, bound), replace=False))
        return picked, rng.random(len(picked)) * bound
    expected = n * bound
    picked = np.cumsum(rng.geometric(bound, size=int(expected + 6 * math.sqrt(expected)) + 16)) - 1
    while picked[-1] < n - 1:  # rare: more gaps are needed to pass the last person
        more = np.cumsum(rng.geometric(bound, size=int(expected) // 4 + 16)) + picked[-1]
        picked = np.concatenate([picked, more])
    picked = picked[picked < n]
    return picked, rng.random(len(picked)) * bound


CHUNK = 1 << 20
"""People placed at a time by :meth:`Strata.add`."""
LOWEST = -10
"""Multipliers up to ``2 ** LOWEST`` (zero included) share the lowest stratum: its waste,
at most its people times the table's maximum over 1024, is negligible, and fewer strata
cost fewer calls (a gamma shape of 0.5 spans about 2 ** -40 .. 2 ** 5)."""


def exponents(multiplier: np.ndarray) -> np.ndarray:
    """The least ``e >= LOWEST`` with ``multiplier <= 2 ** e``, per person."""
    mantissa, e = np.frexp(np.asarray(multiplier, dtype=np.float64))
    e = e - (mantissa == 0.5)  # exact powers of two belong below
    return np.where(multiplier > 0, np.maximum(e, LOWEST), LOWEST).astype(np.int64)


BLOCK_BITS = 16
"""Slots are held as uint16 offsets within blocks of ``2 ** BLOCK_BITS`` slots (see
:class:`Strata`)."""


class Strata:
    """Slots of people per exponent ``e``: those whose multiplier is in ``(2**(e-1), 2**e]``.

    Multipliers are fixed per person and people are appended in order of joining, so
    each stratum is a sorted list of slots that only grows. It is held compactly, in
    2 bytes a slot rather than 4: each slot's offset within its block of
    ``2 ** BLOCK_BITS`` slots (uint16), and the stratum's count of slots per block, from
    which the block of the ``k``-th slot is found (:meth:`slots`).
    """

    def __init__(self) -> None:
        self._offsets: dict[int, np.ndarray] = {}
        self._count: dict[int, int] = {}
        self._per_block: dict[int, np.ndarray] = {}

    def add(self, start: int, multiplier: np.ndarray) -> None:
        """Place the people in slots ``start, start + 1, ...`` with these multipliers."""
        if len(multiplier) > CHUNK:  # many at once: make room for them in one go
            size = int(exponents(np.max(multiplier))) - LOWEST + 1
            counts = sum(np.bincount(exponents(multiplier[at: at + CHUNK]) - LOWEST,
                                     minlength=size)
                         for at in range(0, len(multiplier), CHUNK))
            for key in np.flatnonzero(counts).tolist():
                self._reserve(key + LOWEST, int(counts[key]))
        for at in range(0, len(multiplier), CHUNK):  # by chunks: small work arrays
            part = multiplier[at: at + CHUNK]
            e = (exponents(part) - LOWEST).astype(np.uint8)  # a radix sort: linear time
            order = np.argsort(e, kind="stable").astype(np.int64)
            order += start + at
            ends = np.cumsum(np.bincount(e)).tolist()
            for key, (low, high) in enumerate(zip([0, *ends[:-1]], ends)):
                if high > low:
                    self._append(key + LOWEST, order[low:high])

    def _reserve(self, key: int, more: int) -> np.ndarray:
        """The stratum's offsets, with room for ``more`` slots (and as many again, so that
        it is seldom copied: unwritten room costs address space only)."""
        count = self._count.get(key, 0)
        held = self._offsets.get(key)
        if held is None or count + more > len(held):
            grown = np.empty(max(2 * (count + more), 64), dtype=np.uint16)
            if held is not None:
                grown[:count] = held[:count]
            held = self._offsets[key] = grown
        return held

    def _append(self, key: int, slots: np.ndarray) -> None:
        """Append ascending slots, all after the stratum's last one."""
        count = self._count.get(key, 0)
        self._reserve(key, len(slots))[count: count + len(slots)] = slots & (2**BLOCK_BITS - 1)
        self._count[key] = count + len(slots)
        added = np.bincount(slots >> BLOCK_BITS)
        held = self._per_block.get(key, np.zeros(0, dtype=np.int64))
        if len(held) < len(added):
            held = np.concatenate([held, np.zeros(len(added) - len(held), dtype=np.int64)])
        held[: len(added)] += added
        self._per_block[key] = held

    def slots(self, key: int, index: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The slots (int64) at positions ``index`` of stratum ``key``."""
        offsets = self._offsets[key][: self._count[key]][index]
        positions = np.arange(self._count[key])[index] if isinstance(index, slice) else index
        block = np.searchsorted(np.cumsum(self._per_block[key]), positions, side="right")
        return (block << BLOCK_BITS) + offsets

    def _before(self, key: int, slot: int) -> int:
        """How many of stratum ``key``'s slots are below ``slot``."""
        ends = np.cumsum(self._per_block[key])
        block = slot >> BLOCK_BITS
        if block >= len(ends):
            return self._count[key]
        low = int(ends[block - 1]) if block else 0
        within = self._offsets[key][low: int(ends[block])]
        return low + int(np.searchsorted(within, slot & (2**BLOCK_BITS - 1)))

    def groups(self) -> list[tuple[float, np.ndarray]]:
        """``(2 ** e, slots)`` of each stratum, by increasing ``e``."""
        return [(2.0**key, self.slots(key)) for key in sorted(self._offsets)]

    def expected_picks(self, bound: Callable[[float], float]) -> float:
        """People :meth:`draw` picks on average with this bound per multiplier ceiling."""
        return sum(self._count[key] * min(bound(2.0**key), 1.0) for key in self._offsets)

    def draw(self, bound: Callable[[float], float], rng: np.random.Generator,
             tail: tuple[int, Callable[[float], float]] | None = None,
             ) -> tuple[np.ndarray, np.ndarray]:
        """Thinning per stratum: everyone in the stratum with ceiling ``c`` is picked with
        probability ``min(bound(c), 1)`` and gets a uniform on ``[0, min(bound(c), 1))``;
        the people picked come in slot order.

        ``bound(c)`` must bound the probability of everyone whose multiplier is at most
        ``c``; then ``u < p`` has probability exactly ``p``, as in
        :func:`candidates`. ``tail = (start, tail_bound)`` bounds the people in slots
        ``start`` and after by ``tail_bound(c)`` instead (the newest people, say).
        """
        picked, uniforms = [], []
        for key in sorted(self._offsets):
            ceiling, count = 2.0**key, self._count[key]
            parts = [(0, count, bound(ceiling))]
            if tail is not None:
                split = self._before(key, tail[0])
                parts = [(0, split, bound(ceiling)), (split, count, tail[1](ceiling))]
            for low, high, ceiling_bound in parts:
                index, u = candidates(high - low, ceiling_bound, rng)
                picked.append(self.slots(key, index + low))
                uniforms.append(u)
        if not picked:
            return np.empty(0, dtype=np.int64), np.empty(0)
        picked, uniforms = np.concatenate(picked).astype(np.int64), np.concatenate(uniforms)
        order = np.argsort(picked)  # in slot order: the gathers that follow read memory in turn
        return picked[order], uniforms[order]


def candidates_split(n: int, start: int, bound: float, tail_bound: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """:func:`candidates` with ``bound`` for slots before ``start`` and ``tail_bound`` for
    the slots from ``start`` to ``n``."""
    if start >= n or tail_bound == bound:
        return candidates(n, bound, rng)
    head, u_head = candidates(start, bound, rng)
    rest, u_rest = candidates(n - start, tail_bound, rng)
    return np.concatenate([head, rest + start]), np.concatenate([u_head, u_rest])
