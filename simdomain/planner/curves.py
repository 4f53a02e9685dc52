"""Channel response curves: a month's adds as a concave function of its spend.

A curve from the scenario's own parameters is the engine's expectation
(:meth:`simdomain.scenario.Scenario.expected_monthly_adds`): spend buys contacts up to
the monthly contact capacity, diminishing returns turn them into effective contacts,
the funnel, the carrier and the audience's add propensity turn those into adds::

    adds(x) = A (1 - exp(-b x / A)),  x <= capacity spend

with ``A`` the saturation level in adds (infinite: a straight line ``b x``) and ``b``
the adds per yuan of the first yuan. A *measured* curve has the same form, fitted by
least squares to adds counted by the simulation at several spend levels
(:func:`measure_curves`). Staff capacity and campaigns are not part of the curve; the
planner applies them per month.

The planner sees each curve through chords between breakpoints
(:func:`approximate`). The curve is concave, so the chords lie below it: a plan never
counts on adds its spend will not bring, and the largest gap between curve and chords
is the approximation's error bound, reported per channel.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from simdomain.scenario.model import Scenario

_GOLDEN = (math.sqrt(5) - 1) / 2


@dataclass(frozen=True)
class ResponseCurve:
    """Mean adds of one channel in a full month, before staff capacity and campaigns.

    Attributes
    ----------
    peak_adds
        ``A``: adds the channel tends to as spend grows (``inf``: no saturation).
    adds_per_cny
        ``b``: adds per yuan at zero spend (the slope at the origin).
    capacity_spend
        Spend that buys the monthly contact capacity; spend beyond it buys nothing
        (``None``: no capacity).
    source
        ``"scenario"`` or ``"simulated"``.
    fit
        For a measured curve: the spend levels, the adds measured at each, and the
        fit's R^2 and largest residual.
    """

    channel: str
    peak_adds: float
    adds_per_cny: float
    capacity_spend: float | None = None
    source: str = "scenario"
    fit: dict[str, object] = field(default_factory=dict, compare=False)

    def adds(self, spend: float | np.ndarray) -> np.ndarray:
        """Mean adds a month's ``spend`` brings (vectorized)."""
        x = np.asarray(spend, dtype=float)
        if self.capacity_spend is not None:
            x = np.minimum(x, self.capacity_spend)
        if math.isinf(self.peak_adds):
            return self.adds_per_cny * x
        return -self.peak_adds * np.expm1(-self.adds_per_cny * x / self.peak_adds)

    def saturation_spend(self, keep: float = 1e-3) -> float:
        """Spend past which less than ``keep`` of the peak adds is still to be had."""
        if self.capacity_spend is not None:
            return self.capacity_spend
        if math.isinf(self.peak_adds):
            return math.inf
        return self.peak_adds / self.adds_per_cny * math.log(1 / keep)


def effective_curve(curve: ResponseCurve, carryover: float) -> ResponseCurve:
    """The curve as a function of the *effective* spend of a channel with carry-over.

    The contact capacity caps what a month buys, not what is still working from the
    months before, so with ``carryover > 0`` the curve of the effective spend has no
    capacity (the planner bounds the purchases instead); with none it is ``curve``.
    """
    if carryover <= 0 or curve.capacity_spend is None:
        return curve
    return ResponseCurve(curve.channel, curve.peak_adds, curve.adds_per_cny, None,
                         curve.source, curve.fit)


def scenario_curves(scenario: Scenario) -> dict[str, ResponseCurve]:
    """Each channel's curve from its scenario parameters (exactly the engine's mean)."""
    curves = {}
    for name, channel in scenario.channels.items():
        mix = scenario.audience(name)
        per_contact = channel.add_rate * channel.propensity.add * sum(
            share * scenario.segments[segment].propensity.add for segment, share in mix.items())
        scale = channel.saturation_contacts
        cap = channel.max_contacts_per_month
        curves[name] = ResponseCurve(
            channel=name,
            peak_adds=math.inf if scale is None else per_contact * scale,
            adds_per_cny=per_contact / channel.cost_per_contact_cny,
            capacity_spend=None if cap is None else cap * channel.cost_per_contact_cny,
        )
    return curves


@dataclass(frozen=True)
class Pwl:
    """A concave curve seen through chords between breakpoints.

    Attributes
    ----------
    spend, adds
        The breakpoints (spend increasing from 0) and the curve's adds at each.
    max_error
        The largest gap, in adds, between the curve and its chords on ``[0, spend[-1]]``.
    """

    spend: np.ndarray
    adds: np.ndarray
    max_error: float

    @property
    def slopes(self) -> np.ndarray:
        """Adds per yuan along each chord."""
        return np.diff(self.adds) / np.diff(self.spend)

    def __call__(self, spend: float | np.ndarray) -> np.ndarray:
        return np.interp(spend, self.spend, self.adds)


def _golden_max(gap: Callable[[np.ndarray], np.ndarray], left: np.ndarray,
                right: np.ndarray) -> np.ndarray:
    """Where each concave ``gap`` peaks on ``[left, right]`` (elementwise golden section)."""
    a, b = left.astype(float).copy(), right.astype(float).copy()
    for _ in range(80):
        c = b - _GOLDEN * (b - a)
        d = a + _GOLDEN * (b - a)
        lower = gap(c) >= gap(d)
        b = np.where(lower, d, b)
        a = np.where(lower, a, c)
    return (a + b) / 2


def chord_errors(curve: ResponseCurve, left: np.ndarray,
                 right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Largest gap between the curve and each chord ``[left, right]``, and where it is.

    The gap is concave on the chord, so a golden-section search finds its maximum.
    """
    f_left, f_right = curve.adds(left), curve.adds(right)
    slope = np.where(right > left, (f_right - f_left) / np.maximum(right - left, 1e-300), 0.0)

    def gap(x: np.ndarray) -> np.ndarray:
        return curve.adds(x) - (f_left + slope * (x - left))

    where = _golden_max(gap, left, right)
    return np.maximum(gap(where), 0.0), where


def approximate(curve: ResponseCurve, upper: float, *, tolerance: float = 0.002,
                max_points: int = 24, points: int | None = None,
                include: Iterable[float] = ()) -> Pwl:
    """Breakpoints on ``[0, upper]`` whose chords stay within ``tolerance`` of the curve.

    Parameters
    ----------
    curve
        The concave curve.
    upper
        The largest spend the plan may use.
    tolerance
        Largest allowed gap as a share of the curve's adds at ``upper``.
    max_points
        At most this many breakpoints (the reported error says what is left).
    points
        Exactly this many breakpoints, whatever the error (for benchmarks).
    include
        Spends that must be breakpoints (the current plan, locks, minimum spends), so
        the chords are exact there.

    Returns
    -------
    Pwl
        Breakpoints placed greedily: the chord with the largest gap is split where the
        gap is largest, until the tolerance or the count is reached.
    """
    if not upper > 0:
        return Pwl(np.array([0.0]), np.array([0.0]), 0.0)
    knots = {0.0, float(upper)}
    knots.update(float(x) for x in include if 0 < x < upper)
    if curve.capacity_spend is not None and 0 < curve.capacity_spend < upper:
        knots.add(float(curve.capacity_spend))
    xs = np.array(sorted(knots))
    limit = max(points or max_points, len(xs))
    target = 0.0 if points else tolerance * float(curve.adds(upper))
    errors, where = chord_errors(curve, xs[:-1], xs[1:])
    while len(xs) < limit and errors.max() > target:
        worst = int(np.argmax(errors))
        xs = np.insert(xs, worst + 1, where[worst])
        errors, where = chord_errors(curve, xs[:-1], xs[1:])
    return Pwl(spend=xs, adds=curve.adds(xs), max_error=float(errors.max()))


def common_grid(curves: list[ResponseCurve], upper: float, *, tolerance: float = 0.002,
                max_points: int = 24,
                include: Iterable[float] = ()) -> tuple[np.ndarray, np.ndarray, float]:
    """Breakpoints on ``[0, upper]`` whose chords stay within ``tolerance`` of *every*
    curve: the greedy of :func:`approximate` on the largest
    gap over the curves (so one curve gives exactly its breakpoints).

    Returns the breakpoints, ``(K, J + 1)`` each curve's adds at them, and the largest
    gap left (adds).
    """
    if not upper > 0:
        return np.array([0.0]), np.zeros((len(curves), 1)), 0.0
    knots = {0.0, float(upper)}
    knots.update(float(x) for x in include if 0 < x < upper)
    for curve in curves:
        if curve.capacity_spend is not None and 0 < curve.capacity_spend < upper:
            knots.add(float(curve.capacity_spend))
    xs = np.array(sorted(knots))
    limit = max(max_points, len(xs))
    peak = np.array([c.peak_adds for c in curves])[:, None]
    slope = np.array([c.adds_per_cny for c in curves])[:, None]
    cap = np.array([np.inf if c.capacity_spend is None else c.capacity_spend
                    for c in curves])[:, None]
    linear = np.isinf(peak)

    def adds(x: np.ndarray) -> np.ndarray:  # every curve at once, (K, ...) like x
        x = np.minimum(x, cap)
        bent = -np.where(linear, 1.0, peak) * np.expm1(-slope * x / np.where(linear, 1.0, peak))
        return np.where(linear, slope * x, bent)

    target = tolerance * float(adds(np.full((len(curves), 1), float(upper))).min())

    def worst_gaps(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        left, right = xs[None, :-1], xs[None, 1:]
        f_left, f_right = adds(np.broadcast_to(left, (len(curves), left.size))), \
            adds(np.broadcast_to(right, (len(curves), right.size)))
        chord = (f_right - f_left) / np.maximum(right - left, 1e-300)

        def gap(x: np.ndarray) -> np.ndarray:
            return adds(x) - (f_left + chord * (x - left))

        # the gap is concave on each chord
        where = _golden_max(gap, np.broadcast_to(left, f_left.shape),
                            np.broadcast_to(right, f_left.shape))
        error = np.maximum(gap(where), 0.0)
        pick = np.argmax(error, axis=0)
        cols = np.arange(error.shape[1])
        return error[pick, cols], where[pick, cols]

    errors, where = worst_gaps(xs)
    while len(xs) < limit and errors.max() > target:
        worst = int(np.argmax(errors))
        xs = np.insert(xs, worst + 1, where[worst])
        errors, where = worst_gaps(xs)
    return xs, adds(np.broadcast_to(xs, (len(curves), xs.size))), float(errors.max())


def measure_curves(scenario: Scenario, *, levels: int = 6, reps: int = 2,
                   seed: int = 0) -> dict[str, ResponseCurve]:
    """Curves measured by simulating one month at several spend levels, then fitted.

    Every channel spends the same share of its measuring range at each level (the
    channels do not interact in bringing adds, so one run measures them all). The
    range is the channel's contact capacity, else three saturation scales, else twice
    its current spend. The probe has no campaigns, no staff limit, no initial pool and
    no referral: it measures the curve alone. Each channel's ``A`` and ``b`` are
    fitted by least squares; a channel without visible saturation keeps a straight
    line through the origin.
    """
    from scipy.optimize import curve_fit

    from simdomain.scenario.io import validate_scenario
    from simdomain.simulation import simulate

    raw = copy.deepcopy(scenario.model_dump(mode="json"))
    first = scenario.start_date.replace(day=1)
    following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    raw.update(start_date=str(first), horizon_days=(following - first).days, campaigns=[],
               referral=None, initial_pool={}, targets={}, budget={})
    ranges = {}
    own = scenario_curves(scenario)
    for name, channel in scenario.channels.items():
        span = own[name].saturation_spend(keep=math.exp(-3))
        if math.isinf(span):
            span = 2 * max(max(channel.spend_in_month(m) for m in range(scenario.months)), 1.0)
        ranges[name] = span
        raw["channels"][name]["staff"] = None
    fractions = np.linspace(0, 1, levels + 1)[1:]
    measured: dict[str, list[float]] = {name: [] for name in ranges}
    for i, share in enumerate(fractions):
        for name, span in ranges.items():
            raw["channels"][name]["monthly_spend_cny"] = float(share * span)
        probe = validate_scenario(raw, f"<curve probe {i}>")
        result = simulate(probe, seed=seed + i, reps=reps, keep_agents=False)
        adds = result.channels.groupby("channel", observed=True)["adds"].sum() / reps
        for name in ranges:
            measured[name].append(float(adds.get(name, 0.0)))
    curves = {}
    for name, span in ranges.items():
        x = np.concatenate([[0.0], fractions * span])
        y = np.concatenate([[0.0], measured[name]])
        slope = float(x @ y / (x @ x))
        peak, per_cny = math.inf, slope
        if y[-1] > 0:
            try:
                (peak_fit, b_fit), _ = curve_fit(
                    lambda s, a, b: a * -np.expm1(-b * s / a), x, y,
                    p0=(2 * y.max(), 1.5 * slope), bounds=([y.max() / 2, 0], [np.inf, np.inf]))
            except RuntimeError:
                peak_fit = math.inf
            if math.isfinite(peak_fit) and peak_fit < 50 * y.max():
                peak, per_cny = float(peak_fit), float(b_fit)
        cap = scenario.channels[name].max_contacts_per_month
        fitted = ResponseCurve(name, peak, per_cny, None, "simulated")
        residual = y - fitted.adds(x)
        total = float(((y - y.mean()) ** 2).sum())
        curves[name] = ResponseCurve(
            channel=name, peak_adds=peak, adds_per_cny=per_cny,
            capacity_spend=None if cap is None else cap * scenario.channels[name].cost_per_contact_cny,
            source="simulated",
            fit={"spend_cny": x.tolist(), "adds": y.tolist(),
                 "r2": 1 - float((residual**2).sum()) / total if total > 0 else 1.0,
                 "max_abs_residual": float(np.abs(residual).max())},
        )
    return curves
