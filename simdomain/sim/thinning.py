"""Cheap exact Bernoulli draws.

Thinned draws: each person's event has its own probability, and only the people picked
with a bound on those probabilities have theirs computed. Bounded by one number for
everyone (:func:`candidates`), a draw picks ``n * bound`` people; the work then follows
the bound, not the events. The lifecycle's draws are bounded per group of people
instead (:class:`Strata`): by stage, so that the deleted cost nothing and a stage with
low rates is not drawn at a higher stage's rate, and by powers of the square root of
two of a person's own multiplier, so that the gamma tail (with a shape of 0.5, the
largest of a million multipliers is about 25 times the mean) does not set everyone's
bound. Everyone in a group is then within a factor of 1.41 of its bound, times the
spread of the rate table within a stage and of the touch effects. (Octaves rather than
half octaves picked about 15% more people in a twin-like run.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

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
    scale = -1.0 / math.log1p(-bound)
    picked = walk(rng, scale, int(expected + 6 * math.sqrt(expected)) + 16) - 1
    while picked[-1] < n - 1:  # rare: more gaps are needed to pass the last person
        picked = np.concatenate([picked, walk(rng, scale, int(expected) // 4 + 16) + picked[-1]])
    picked = picked[picked < n]
    return picked, rng.random(len(picked)) * bound


def walk(rng: np.random.Generator, scale: float | np.ndarray, size: int) -> np.ndarray:
    """Running sums of ``size`` geometric gaps (on 1, 2, ...) with success probability
    ``p``, given ``scale = -1 / log(1 - p)`` (one, or one per gap): a gap is
    ``1 + floor(E * scale)`` for a standard exponential ``E`` (``P(gap > k) = (1 - p) **
    k``), quicker than numpy's geometric draws, and summed as integers."""
    gaps = rng.standard_exponential(size)
    gaps *= scale
    steps = gaps.astype(np.int64)  # floor: the values are >= 0
    steps += 1
    return np.cumsum(steps, out=steps)


def counts_below(tails: Sequence[float], rng: np.random.Generator, out: np.ndarray,
                 flag: np.ndarray) -> np.ndarray:
    """``#{k: u < tails[k]}`` for one uniform ``u`` per element of ``out`` (int8), with
    ``tails`` decreasing in ``[0, 1]``: a Bernoulli draw for one tail, a count drawn by
    inversion for the tails of its distribution (``P(V >= 1), P(V >= 2), ...``).

    Each ``u`` is drawn a byte at a time (from the bit generator's raw 64-bit words,
    six times quicker than a float32 per person): the byte ``b`` puts ``u`` in
    ``[b / 256, (b + 1) / 256)``, which
    settles every comparison unless a tail falls inside it; the few people whose byte
    straddles a tail (at most ``len(tails)`` of the 256 bytes) get the rest of their
    uniform as a float64. The counts are exact (to float64), not rounded to a byte.
    ``flag`` is a bool work array as long as ``out``.
    """
    size = len(out)
    byte = rng.bit_generator.random_raw(-(-size // 8)).view(np.uint8)[:size]
    out[...] = 0
    straddled: list[int] = []
    for tail in tails:
        scaled = tail * 256
        below = min(math.floor(scaled), 256)  # bytes wholly below the tail
        if below:
            out += np.less(byte, below, out=flag).view(np.int8)
        if below < scaled:
            straddled.append(below)
    if straddled:
        flag[...] = False
        for value in sorted(set(straddled)):
            flag |= byte == value
        index = np.flatnonzero(flag)
        if len(index):
            out[index] = tails_above((byte[index] + rng.random(len(index))) / 256, tails)
    return out


def tails_above(u: np.ndarray, tails: Sequence[float]) -> np.ndarray:
    """``#{k: u < tails[k]}`` for each uniform in ``u`` (int8): a count drawn by
    inversion from its distribution's tails ``P(V >= 1), P(V >= 2), ...``."""
    count = np.zeros(len(u), dtype=np.int8)
    for tail in tails:
        count += u < tail
    return count


CHUNK = 1 << 20
"""People placed at a time by :meth:`Strata.add`."""
LOWEST = -6
"""Multipliers up to ``2 ** LOWEST`` (zero included) share the lowest stratum: its waste,
at most its people times the table's maximum over 64, is small (with a gamma shape of
0.5, which spans about 2 ** -40 .. 2 ** 5, a tenth of the people and 0.1% more picks),
and fewer strata cost fewer calls (from -10, a twin-like run of 1,000,000 took 3%
longer)."""
BANDS = 4
"""Bands held by :class:`Strata` (the stages fan .. koc); people in a band at or above
it (deleted) are in no group."""
COMPACT = 0.25
"""Share of a :class:`Strata` group's entries that may be stale (skipped picks, and 4 bytes
each) before it is compacted (a pass over the group, reading each entry's stage: at an
eighth, a run of 2,000,000 twin-like people took 5% longer, for a few bytes a person)."""
SLACK = 8
"""A :class:`Strata` group's list grows by its new size over this (and 64), so growing
copies each entry a few times at most and leaves an eighth unused at worst."""


def levels(multiplier: np.ndarray) -> np.ndarray:
    """The least ``k >= 2 * LOWEST`` with ``multiplier <= ceiling(k)``, per person
    (multipliers are >= 0 and taken as float32, as people hold them)."""
    m = np.ascontiguousarray(multiplier, dtype=np.float32)
    bits = m.view(np.uint32)
    e = (bits >> 23).astype(np.int64) - 127  # m = 1.f * 2 ** e (normal m)
    e += (bits & 0x7FFFFF) != 0  # 2 ** e itself belongs below
    e = np.maximum(e, LOWEST)  # zero, subnormals and the smallest: the lowest
    level = 2 * e  # m in (2 ** (e - 1), 2 ** e]: the lower half octave, or the upper
    level -= (e > LOWEST) & (m <= ceiling(level - 1))
    return level


def ceiling(level: np.ndarray) -> np.ndarray:
    """The largest multiplier of each level, ``2 ** (level / 2)`` (float64)."""
    return np.exp2(np.asarray(level) / 2)


FEW = 8
"""Up to this many segments, :func:`thin_segments` thins each in its own call."""


def thin_segments(lengths: Sequence[int], bounds: Sequence[float], rng: np.random.Generator,
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`candidates` for many segments at once: in segment ``j`` of ``lengths[j]``
    people, each is picked with probability ``min(bounds[j], 1)`` and gets a uniform on
    ``[0, min(bounds[j], 1))``.

    Returns the positions picked (ascending) and their uniforms, per segment. Beyond
    :data:`FEW` segments, the geometric gaps of every segment are drawn in one call, so
    the cost does not grow with their number.
    """
    if len(lengths) <= FEW:  # one call each is quicker
        return [candidates(int(size), float(bound), rng) for size, bound in zip(lengths, bounds)]
    lengths = np.asarray(lengths, dtype=np.int64)
    bounds = np.minimum(np.asarray(bounds, dtype=np.float64), 1.0)
    out: list[tuple[np.ndarray, np.ndarray]] = []
    gapped = (lengths > 0) & (bounds >= 1e-9) & (bounds < 1)
    if gapped.any():
        size, bound = lengths[gapped], bounds[gapped]
        expected = size * bound
        draws = (expected + 6 * np.sqrt(expected)).astype(np.int64) + 16
        ends = np.cumsum(draws)
        walked = walk(rng, np.repeat(-1.0 / np.log1p(-bound), draws), int(ends[-1]))
        walked -= np.repeat(np.concatenate([[0], walked[ends[:-1] - 1]]), draws) + 1  # per segment
        last = walked[ends - 1]
        keep = np.flatnonzero(walked < np.repeat(size, draws))
        picked = walked[keep]
        cuts = np.searchsorted(keep, ends)
        uniforms = rng.random(len(keep)) * np.repeat(bound, np.diff(cuts, prepend=0))
        cuts = cuts.tolist()
    gaps = iter(range(int(np.count_nonzero(gapped))))
    for j, (size, bound) in enumerate(zip(lengths.tolist(), bounds.tolist())):
        if not gapped[j]:
            out.append(candidates(size, bound, rng))
            continue
        k = next(gaps)
        low, high = cuts[k - 1] if k else 0, cuts[k]
        part = picked[low:high], uniforms[low:high]
        if last[k] < size - 1:  # rare: more gaps were needed
            more, u = candidates(size - int(last[k]) - 1, bound, rng)
            part = (np.concatenate([part[0], more + last[k] + 1]),
                    np.concatenate([part[1], u]))
        out.append(part)
    return out


Bound = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""A bound per group, from each group's band and multiplier ceiling (arrays)."""


class Strata:
    """People grouped by band (their stage) and, if ``scaled``, by the level ``k`` of
    their multiplier (those whose multiplier is in ``(ceiling(k - 1), ceiling(k)]``,
    see :func:`levels`), to be thinned with a bound per group (:meth:`draw`).

    Each group is a list of slots (int32). People are appended in order of joining, so
    a group starts sorted; people who move up to a band are appended to its group, and
    their entry in the group they left is left stale, skipped by :meth:`draw`, until
    stale entries pass :data:`COMPACT` of the group and it is compacted (a pass over
    the group only). Bands only go up, as stages do, so nobody comes back to a group.
    """

    def __init__(self, scaled: bool = True) -> None:
        self.scaled = scaled
        self._lists: dict[int, np.ndarray] = {}
        self._sizes: dict[int, int] = {}
        self._stale: dict[int, int] = {}
        self._sorted: dict[int, bool] = {}

    def labels(self, band: int | np.ndarray, multiplier: np.ndarray | None,
               size: int) -> np.ndarray:
        """Each person's group: ``(k - 2 * LOWEST) * 8 + band`` (uint16) for the level
        ``k`` of their multiplier (0 unless ``scaled``)."""
        k = np.minimum(levels(multiplier) - 2 * LOWEST, 2**13 - 2) if self.scaled else 0
        label = np.asarray(k, dtype=np.int64) * 8 + np.asarray(band, dtype=np.int64)
        return np.broadcast_to(label, (size,)).astype(np.uint16)

    def _bands_and_ceilings(self, labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
        labels = np.asarray(labels, dtype=np.int64)
        ceilings = ceiling(labels // 8 + 2 * LOWEST) if self.scaled else np.ones(len(labels))
        return labels % 8, ceilings

    def add(self, start: int, count: int, band: int | np.ndarray = 0,
            multiplier: np.ndarray | None = None) -> None:
        """Place ``count`` people in slots ``start, start + 1, ...`` (after everyone held)
        in ``band`` (one, or one per person) with these multipliers (if ``scaled``)."""
        if not self.scaled and np.ndim(band) == 0:  # one group: no labels to sort
            self._extend(int(self.labels(band, None, 1)[0]), np.arange(start, start + count))
            return
        band = np.broadcast_to(np.asarray(band, dtype=np.int8), (count,))
        for at in range(0, count, CHUNK):  # by chunks: small work arrays
            stop = min(at + CHUNK, count)
            labels = self.labels(band[at:stop], None if multiplier is None
                                 else multiplier[at:stop], stop - at)
            self._append(np.arange(start + at, start + stop), labels)

    def move(self, slots: np.ndarray, old_band: np.ndarray, new_band: int | np.ndarray,
             multiplier: np.ndarray | None, band_now: np.ndarray) -> None:
        """People at ``slots`` (distinct) moved from ``old_band`` up to ``new_band``;
        ``multiplier`` are theirs and ``band_now`` everyone's band after the move."""
        if len(slots) == 0:
            return
        old = self.labels(old_band, multiplier, len(slots))
        left = np.bincount(old)
        for label in np.flatnonzero(left).tolist():
            self._stale[label] = self._stale.get(label, 0) + int(left[label])
            if self._stale[label] > COMPACT * self._sizes[label]:
                held = self._lists[label][: self._sizes[label]]
                held = held[band_now[held] == label % 8]
                self._lists[label], self._sizes[label] = held, len(held)
                self._stale[label] = 0
        new_band = np.broadcast_to(np.asarray(new_band), np.shape(slots))
        kept = new_band < BANDS
        self._append(np.asarray(slots)[kept], self.labels(
            new_band[kept], None if multiplier is None else multiplier[kept],
            int(np.count_nonzero(kept))))

    def _append(self, slots: np.ndarray, labels: np.ndarray) -> None:
        """Append ascending ``slots`` to their groups."""
        order = np.argsort(labels, kind="stable")  # a radix sort: linear time
        counts = np.bincount(labels)
        ends = np.cumsum(counts).tolist()
        for label in np.flatnonzero(counts).tolist():
            self._extend(label, slots[order[ends[label] - counts[label]: ends[label]]])

    def _extend(self, label: int, group: np.ndarray) -> None:
        """Append ascending slots to one group."""
        size = self._sizes.get(label, 0)
        held = self._lists.get(label)
        if held is None or size + len(group) > len(held):
            grown = np.empty(size + len(group) + (size + len(group)) // SLACK + 64,
                             dtype=np.int32)
            if held is not None:
                grown[:size] = held[:size]
            held = self._lists[label] = grown
        if size and self._sorted[label] and len(group):
            self._sorted[label] = bool(group[0] > held[size - 1])
        else:
            self._sorted.setdefault(label, True)
        held[size: size + len(group)] = group
        self._sizes[label] = size + len(group)

    def groups(self, band_now: np.ndarray) -> list[tuple[tuple[int, int], np.ndarray]]:
        """``((band, k), slots)`` of each group with people (``k`` the level, 0 unless
        ``scaled``), slots ascending (stale entries left out)."""
        out = []
        for label in sorted(self._lists):
            held = np.sort(self._lists[label][: self._sizes[label]])
            held = held[band_now[held] == label % 8]
            if len(held):
                out.append(((label % 8, label // 8 + 2 * LOWEST if self.scaled else 0), held))
        return out

    def expected_picks(self, bound: Bound) -> float:
        """Entries :meth:`draw` picks on average with this bound."""
        labels = sorted(self._lists)
        sizes = np.array([self._sizes[label] for label in labels], dtype=np.float64)
        return float(sizes @ np.minimum(bound(*self._bands_and_ceilings(labels)), 1.0))

    def draw(self, bound: Bound, rng: np.random.Generator, state: np.ndarray,
             band_of_state: np.ndarray, tail: tuple[int, Bound] | None = None,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Thinning per group: everyone in the group of band ``b`` and multiplier ceiling
        ``c`` is picked with probability ``min(bound(b, c), 1)`` and gets a uniform on
        ``[0, min(bound(b, c), 1))`` (``bound`` takes and gives arrays, a group each).

        ``bound(b, c)`` must bound the probability of everyone in band ``b`` whose
        multiplier is at most ``c``; then ``u < p`` has probability exactly ``p``, as in
        :func:`candidates`. ``state`` is everyone's state (a small integer) and
        ``band_of_state`` its band: stale entries are skipped. ``tail = (start,
        tail_bound)`` bounds the people in slots ``start`` and after by
        ``tail_bound(b, c)`` instead (the newest people, say).

        Returns the people picked (distinct, in runs of ascending slots), their uniforms
        and their states.
        """
        labels = sorted(label for label, size in self._sizes.items() if size)
        bands, ceilings = self._bands_and_ceilings(labels)
        usual = bound(bands, ceilings)
        later = usual if tail is None else tail[1](bands, ceilings)
        parts = []  # (label, first entry, entries, bound)
        for label, size, low, high in zip(labels, (self._sizes[x] for x in labels),
                                          usual.tolist(), later.tolist()):
            if high == low:
                parts.append((label, 0, size, low))
            elif self._sorted[label]:  # split at the tail's first slot
                split = int(np.searchsorted(self._lists[label][:size], tail[0]))
                parts += [(label, 0, split, low), (label, split, size - split, high)]
            else:
                parts.append((label, 0, size, max(low, high)))
        drawn = thin_segments([p[2] for p in parts], [p[3] for p in parts], rng)
        picked = [self._lists[label][position + first if first else position]
                  for (label, first, _, _), (position, _) in zip(parts, drawn, strict=True)]
        if not picked:
            empty = np.empty(0, dtype=np.int64)
            return empty, np.empty(0), state[empty]
        slots = np.concatenate(picked).astype(np.int64)
        uniforms = np.concatenate([u for _, u in drawn])
        states = state[slots]
        band = np.repeat(np.array([label % 8 for label, *_ in parts], dtype=np.int8),
                         [len(x) for x in picked])
        current = band_of_state[states] == band  # skip those who left the band since
        return slots[current], uniforms[current], states[current]
