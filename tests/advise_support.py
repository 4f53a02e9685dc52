"""Toy decision problems for the tests of ``simdomain.advise``, with answers by hand.

One or two channels with straight-line curves (``adds = b x`` yuan), one adds target
``T`` met with chance ``P`` across the draws of the slopes: the cheapest plan spends
along the cheapest mix the ``P``-quantile of the adds allows. The decision is exact
(a search over the sorted draws), so every number in the tests comes from arithmetic.
"""

from __future__ import annotations

import numpy as np

from simdomain.advise.preposterior import Decision, Posterior


def _slopes(slopes: np.ndarray, posterior: Posterior, block: int | None) -> np.ndarray:
    """The slopes the replan sees: the tested block's column from its source draws."""
    if posterior.source is None or block is None:
        return slopes
    out = slopes.copy()
    out[:, block] = slopes[posterior.source, block]
    return out


def one_channel(slopes: np.ndarray, target: float, level: float, *, tested: bool = True):
    """``replan(posterior)``: the least spend ``x`` with ``sum_k w_k [b_k x >= T] >= P``.

    ``tested``: whether a test's block is the slope (else it is a parameter the plan does
    not use, and swapping it changes nothing)."""
    return two_channels(np.column_stack([slopes, np.zeros(len(slopes))]), target, level,
                        shares=1, tested=(0,) if tested else ())


def two_channels(slopes: np.ndarray, target: float, level: float, *, shares: int = 101,
                 tested: tuple[int, ...] = (0,)):
    """``replan(posterior)`` for two channels ``slopes (K, 2)``: for each split ``s`` of
    the spend (``shares`` splits from all-first to all-second), the least total spend
    whose adds reach ``T`` with chance ``P``; the cheapest split wins. ``tested``: the
    channel whose slope a test's block is (``()``: none)."""
    slopes = np.asarray(slopes, float)
    split = np.linspace(1, 0, shares)[:, None]

    def replan(posterior: Posterior) -> Decision:
        seen = _slopes(slopes, posterior, tested[0] if tested else None)
        per_cny = seen[:, 0][None] * split + seen[:, 1][None] * (1 - split)
        order = np.argsort(-per_cny, axis=1)
        reach = np.cumsum(posterior.weights[order], axis=1)
        i = np.minimum((reach < level - 1e-12).sum(axis=1), len(slopes) - 1)
        b = np.take_along_axis(per_cny, order, axis=1)[np.arange(shares), i]
        best = int(np.argmax(b))
        spend = target / b[best]
        truth = slopes[:, 0] * split[best, 0] + slopes[:, 1] * (1 - split[best, 0])
        return Decision(spend, True, truth * spend >= target * (1 - 1e-9))

    return replan
