"""The least cost of each channel-month's adds, and its convex envelope (valid cuts).

For one channel and month, realized adds ``y`` cost at least

    phi(y) = share * max(L, g^-1(y / f)) + fixed + staff_cost * ceil(y / capacity)

for ``y > 0`` (and nothing for ``y = 0``): the least planned spend whose curve ``f g``
brings ``y``, no less than the minimum spend ``L``, the fixed cost of a switched
channel, and whole staff accounts. The model's linear relaxation prices staff
accounts pro rata and the switch in proportion to the spend, so it sees a cheaper
cost than ``phi``; every plan's cost is at least the convex envelope of ``phi``, whose
facets :func:`cost_envelope` returns. Added as rows, they close most of the gap
between the relaxation and the integer plan (whole accounts, switches) without
removing any plan.
"""

from __future__ import annotations

import math

import numpy as np

from simdomain.planner.curves import Pwl


def least_cost(y: np.ndarray, pwl: Pwl, factor: float, *, share: float = 1.0,
               min_spend: float = 0.0, fixed_cost: float = 0.0,
               capacity: float = math.nan, staff_cost: float = 0.0) -> np.ndarray:
    """``phi(y)``: the least cost of ``y`` realized adds (``inf`` past the curve's end)."""
    y = np.asarray(y, dtype=float)
    keep = np.concatenate([[True], np.diff(pwl.adds) > 0])  # the least spend on flat parts
    spend = np.interp(y / factor, pwl.adds[keep], pwl.spend[keep])
    cost = share * np.maximum(spend, min_spend) + fixed_cost
    if not math.isnan(capacity):
        cost = cost + staff_cost * np.ceil(y / capacity - 1e-9)
    cost = np.where(y > factor * pwl.adds[-1] * (1 + 1e-12), np.inf, cost)
    return np.where(y <= 0, 0.0, cost)


def cost_envelope(pwl: Pwl, factor: float, *, share: float = 1.0, min_spend: float = 0.0,
                  fixed_cost: float = 0.0, capacity: float = math.nan,
                  staff_cost: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Facets ``cost >= a_k + b_k y`` of the convex envelope of :func:`least_cost` on
    ``[0, f g(upper)]``, as arrays ``(a, b)`` (empty when the curve brings nothing).

    The envelope's vertices are among ``0``, the curve's breakpoints, whole multiples
    of the staff capacity and the adds of the minimum spend (``phi`` is convex between
    these, and only jumps up at the multiples), so its lower hull is exact.
    """
    top = factor * float(pwl.adds[-1])
    if not top > 0 or capacity == 0:
        return np.empty(0), np.empty(0)
    points = [0.0, top, *(factor * pwl.adds[1:])]
    if min_spend > 0:
        points.append(factor * float(pwl(min_spend)))
    if not math.isnan(capacity) and capacity > 0:
        points.extend(capacity * np.arange(1, math.floor(top / capacity) + 1))
    y = np.unique(np.clip(points, 0.0, top))
    cost = least_cost(y, pwl, factor, share=share, min_spend=min_spend, fixed_cost=fixed_cost,
                      capacity=capacity, staff_cost=staff_cost)
    hull = lower_hull(y, cost)
    slopes = np.diff(cost[hull]) / np.diff(y[hull])
    return cost[hull][:-1] - slopes * y[hull][:-1], slopes


def lower_hull(x: np.ndarray, z: np.ndarray) -> list[int]:
    """Indices of the lower convex hull's vertices of points sorted by ``x``."""
    hull: list[int] = []
    for i in range(len(x)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (z[b] - z[a]) * (x[i] - x[a]) >= (z[i] - z[a]) * (x[b] - x[a]):
                hull.pop()  # b lies on or above the chord from a to i
            else:
                break
        hull.append(i)
    return hull
