"""Random planning problems of any size, for tests and benchmarks.

The instances have the structure of real ones (saturating curves with a contact
capacity, fixed costs and minimum spends on some channels, staff accounts on others,
monthly adds and members targets, a total budget) but no scenario behind them.
"""

from __future__ import annotations

import numpy as np

from simdomain.planner.curves import ResponseCurve, approximate
from simdomain.planner.problem import Problem, Target


def random_problem(channels: int, months: int, breakpoints: int, *, seed: int = 0,
                   switches: float = 1 / 3, staff: float = 0.5, objective: str = "min-cost",
                   budget: float | None = None, demand: float = 0.5) -> Problem:
    """A random feasible-looking problem.

    Parameters
    ----------
    channels, months, breakpoints
        Size: breakpoints per channel curve.
    switches
        Share of the channels with a fixed cost and a minimum spend (binaries).
    staff
        Share of the channels with staff accounts (integers): 80 to 120 adds a day
        each, 2,000 to 4,000 yuan a month (the shipped scenarios' figures).
    objective
        As in :class:`~simdomain.planner.problem.PlanOptions`.
    budget
        Total budget (``None``: none).
    demand
        Monthly adds target as a share of what all channels could bring at capacity.
    """
    rng = np.random.default_rng(seed)
    names = [f"ch{c:03d}" for c in range(channels)]
    labels = [f"2030-{m % 12 + 1:02d}" if m < 12 else f"{2030 + m // 12}-{m % 12 + 1:02d}"
              for m in range(months)]
    curves, pwl = [], []
    for name in names:
        per_cny = rng.uniform(0.02, 0.2)  # 5 to 50 yuan an add at first
        peak = rng.uniform(2_000, 20_000)
        capacity = float(peak / per_cny * rng.uniform(0.5, 3.0))
        curve = ResponseCurve(name, peak, per_cny, capacity)
        curves.append(curve)
        pwl.append(approximate(curve, capacity, points=breakpoints))
    factor = rng.uniform(0.8, 1.2, size=(channels, months))
    reach = np.array([p.adds[-1] for p in pwl])[:, None] * factor
    switched = rng.random(channels) < switches
    upper = np.array([p.spend[-1] for p in pwl])
    staffed = rng.random(channels) < staff
    capacity = np.where(staffed[:, None], rng.uniform(2_400, 3_600, size=(channels, 1)), np.nan)
    member_rate = rng.uniform(0.2, 0.6, size=(channels, months))
    targets = []
    for m, label in enumerate(labels):
        coef = np.zeros((channels, months))
        coef[:, m] = 1.0
        goal = float(demand * reach[:, m].sum())
        targets.append(Target("monthly_new_adds", label, goal, goal, coef, 0.0, "adds"))
        members = coef * member_rate
        goal = float(demand * 0.8 * (reach[:, m] * member_rate[:, m]).sum())
        targets.append(Target("monthly_new_members", label, goal, goal, members, 0.0, "members"))
    return Problem(
        channels=names, months=labels, spend_share=np.ones(months), curves=curves, pwl=pwl,
        upper_reason=["contact capacity"] * channels, adds_factor=factor,
        min_spend=np.where(switched, upper * rng.uniform(0.05, 0.3, channels), 0.0),
        fixed_cost=np.where(switched, rng.uniform(1_000, 20_000, channels), 0.0),
        staff_capacity=np.repeat(capacity, months, axis=1),
        staff_cost=np.where(staffed, rng.uniform(2_000, 4_000, channels), 0.0),
        locks=np.full((channels, months), np.nan), targets=targets, total_budget=budget,
        monthly_budget=None, other_costs=np.zeros(months), objective=objective,
        objective_coef=member_rate if objective == "max-members" else np.ones((channels, months)),
        objective_constant=0.0, objective_unit="members" if objective == "max-members" else "adds",
        member_value=member_rate,
    )


def random_draws(problem: Problem, draws: int, *, seed: int = 0, spread: float = 0.15,
                 common: float = 0.5, noise: bool = False, carryover: float = 0.0):
    """Parameter draws around a problem's curves, for tests and benchmarks.

    Each draw scales every channel's saturation level and first-yuan slope by lognormal
    factors of log-sd ``spread``, a share ``common`` of the variance shared by all
    channels (a draw that is pessimistic about one channel leans pessimistic about all),
    and each target's coefficients (members per add) by one more such factor. Returns a
    :class:`~simdomain.planner.robust.DrawSet`; ``noise`` adds Poisson chance at the goals.
    """
    from simdomain.planner.robust import assemble

    rng = np.random.default_rng([seed, 0xD4A5])
    n_ch = len(problem.channels)

    def factors(*shape: int) -> np.ndarray:
        shared = rng.standard_normal((shape[0], 1, *shape[2:]))
        own = rng.standard_normal(shape)
        return np.exp(spread * (np.sqrt(common) * shared + np.sqrt(1 - common) * own))

    peak, slope = factors(draws, n_ch), factors(draws, n_ch)
    curves = [[ResponseCurve(c.channel, c.peak_adds * peak[k, i], c.adds_per_cny * slope[k, i],
                             c.capacity_spend) for i, c in enumerate(problem.curves)]
              for k in range(draws)]
    value = factors(draws, len(problem.targets))
    coef = np.array([[t.coef for t in problem.targets]]) * value[:, :, None, None]
    constant = np.array([[t.constant for t in problem.targets]]).repeat(draws, axis=0)
    sd = np.sqrt(np.maximum([abs(t.planned) for t in problem.targets], 1.0)) if noise else None
    lags = np.full((draws, n_ch), carryover)
    return assemble(problem, np.arange(1, draws + 1), curves, coef, constant, carryover=lags,
                    noise_sd=sd, seed=seed)
