"""Markov docking: with no channels, touches, referral or campaigns, every person of the
initial pool is an independent Markov chain over (stage, dormant) + deleted, so the
engine's mean stage counts and orders must match the chain's exact expectation.

The chain is built here from the scenario's rates, independently of
``simdomain.sim.rates``, following the engine's order within a day
(``steps.lifecycle``):

1. orders are drawn on the morning's state (repeat orders of customers, members and
   KOCs; times ``dormant_multiplier`` if dormant);
2. competing risks on one uniform: delete with ``p_del``, else advance a stage with
   ``min(p_adv, 1 - p_del)``, where a dormant person's ``p_adv`` is multiplied by
   ``dormant_multiplier`` (a fan's advance is their first order);
3. those not deleted today flip dormancy with the morning's flip probability
   (``dormancy`` if awake, ``wake`` if dormant), independently of step 2.

The recorder closes day ``t`` after the lifecycle step, so the daily row of day ``t``
holds the state after ``t + 1`` steps: ``initial @ P ** (t + 1)``.

Tolerances come from theory, not from the replications: people are independent (each
one's segment is an independent draw from the shares, then their own chain runs), so a
count of people in a set of states after ``d`` days is a sum of independent Bernoulli
variables, with variance ``sum_people q (1 - q)``, ``q`` the person's probability of being
in the set (their initial stage's row of the segment-mixed ``P ** d``). The variance of a
person's cumulative orders is computed exactly from the chain as well (see
:func:`order_moments`). The mean over ``REPS`` replications then has standard error
``sqrt(var / REPS)`` and must lie within ``Z = 4.5`` of them: about 7e-6 two-sided per
check, under 1e-3 for all the checks of this file together. The seed is fixed, so the
outcome is reproducible; the bound says how unlikely a false alarm is for another seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from conftest import STAGES, build, by_rep, zero_lifecycle
from scipy import stats

from simdomain.scenario import Scenario
from simdomain.simulation import simulate

Z = 4.5
REPS = 40
SEED = 20260101
CHECK_DAYS = (30, 90, 180)

FAN, CUSTOMER, MEMBER, KOC = range(4)
N_STATES = 9
DELETED = 8
"""States ``2 * stage + dormant`` for the four stages, then deleted."""

MARKOV = build(
    name="markov",
    horizon_days=180,
    initial_pool={"fan": 8000, "customer": 4000, "member": 2500, "koc": 500},
    segments={
        "casual": {"share": 0.65, "order_value_cny": 60.0},
        "loyal": {"share": 0.35, "order_value_cny": 150.0,
                  "propensity": {"first_order": 2.0, "repeat_order": 1.5, "join": 2.5,
                                 "koc": 1.5, "dormancy": 0.5, "deletion": 0.4}},
    },
    lifecycle={
        "first_order": 0.01, "repeat_order": 0.015, "member_order_multiplier": 2.0,
        "join": 0.006, "koc": 0.004, "dormancy": 0.008, "wake": 0.015,
        "dormant_multiplier": 0.25,
        "deletion": {"fan": 0.003, "customer": 0.002, "member": 0.001, "koc": 0.0005},
    },
)

STOCKS = {
    **{stage: [2 * s, 2 * s + 1] for s, stage in enumerate(STAGES)},
    "deleted": [DELETED],
    "dormant": [2 * s + 1 for s in range(4)],
}
"""Daily columns and the chain states they count."""


def state(stage: int, dormant: int) -> int:
    return 2 * stage + dormant


@dataclass(frozen=True)
class Chain:
    """One segment's daily transition matrix and order probabilities."""

    P: np.ndarray
    """``P[i, j]``: probability of state ``j`` tonight given state ``i`` this morning."""
    repeat: np.ndarray
    """Probability of a repeat order today, by morning state."""
    advance: np.ndarray
    """``P`` restricted to advancing from fan (the first order, which is booked)."""

    @property
    def orders(self) -> np.ndarray:
        """Expected orders today by morning state (never more than one)."""
        return self.repeat + self.advance.sum(axis=1)


def segment_chain(scenario: Scenario, segment: str, *, scale: dict[str, float] | None = None
                  ) -> Chain:
    """The chain of one segment; ``scale`` multiplies named base rates (for power tests)."""
    life = scenario.lifecycle
    prop = scenario.segments[segment].propensity
    k = {"first_order": 1.0, "repeat_order": 1.0, "join": 1.0, "koc": 1.0,
         "dormancy": 1.0, "wake": 1.0, "deletion": 1.0, **(scale or {})}
    upgrade = [life.first_order * prop.first_order * k["first_order"],
               life.join * prop.join * k["join"],
               life.koc * prop.koc * k["koc"],
               0.0]
    repeat = life.repeat_order * prop.repeat_order * k["repeat_order"]
    order = [0.0, repeat, repeat * life.member_order_multiplier,
             repeat * life.member_order_multiplier]
    flip = [min(1.0, life.dormancy * prop.dormancy * k["dormancy"]),
            min(1.0, life.wake * k["wake"])]

    P = np.zeros((N_STATES, N_STATES))
    advance = np.zeros((N_STATES, N_STATES))
    repeat_p = np.zeros(N_STATES)
    for stage in range(4):
        for dormant in (0, 1):
            i = state(stage, dormant)
            slow = life.dormant_multiplier if dormant else 1.0
            p_del = min(1.0, life.deletion[STAGES[stage]] * prop.deletion * k["deletion"])
            p_adv = min(min(1.0, upgrade[stage]) * slow, 1.0 - p_del)
            repeat_p[i] = min(1.0, order[stage] * slow)
            P[i, DELETED] = p_del
            for tonight in (0, 1):
                f = flip[dormant] if tonight != dormant else 1.0 - flip[dormant]
                P[i, state(stage, tonight)] += (1.0 - p_del - p_adv) * f
                if stage < KOC:
                    P[i, state(stage + 1, tonight)] += p_adv * f
                    if stage == FAN:
                        advance[i, state(stage + 1, tonight)] = p_adv * f
    P[DELETED, DELETED] = 1.0
    return Chain(P, repeat_p, advance)


def chains(scenario: Scenario, *, scale: dict[str, float] | None = None
           ) -> list[tuple[float, Chain]]:
    """``(share, chain)`` of each segment."""
    return [(seg.share, segment_chain(scenario, name, scale=scale))
            for name, seg in scenario.segments.items()]


def stock_moments(scenario: Scenario, days: int, states: list[int], **kwargs
                  ) -> tuple[float, float]:
    """Mean and variance of the number of people in ``states`` after ``days`` days."""
    mean = var = 0.0
    for s, stage in enumerate(STAGES):
        n = getattr(scenario.initial_pool, stage)
        start = np.zeros(N_STATES)
        start[state(s, 0)] = 1.0
        q = sum(share * (start @ np.linalg.matrix_power(c.P, days))[states].sum()
                for share, c in chains(scenario, **kwargs))
        mean += n * q
        var += n * q * (1.0 - q)
    return mean, var


def order_moments(scenario: Scenario, days: int, **kwargs) -> tuple[float, float]:
    """Mean and variance of the orders booked in the first ``days`` days.

    A person's orders are ``O = sum_t X_t`` with ``X_t`` in {0, 1}, so
    ``E[O^2] = E[O] + 2 sum_{s<t} E[X_s X_t]`` and
    ``E[X_s X_t] = pi_s D P^(t-s-1) r`` with ``pi_s`` the morning distribution on day ``s``,
    ``r`` the expected orders by state and ``D[i, j] = P(X_s = 1, state j tonight | i)``
    (``repeat_i P[i, j]``: repeat orders are drawn apart from the transition; plus the
    advance from fan, which is the first order). With ``h_s = sum_{t>s} P^(t-s-1) r``
    (``h_{days-1} = 0``, ``h_s = r + P h_{s+1}``), ``sum_{s<t} E[X_s X_t] = sum_s pi_s D h_s``.
    """
    mean = var = 0.0
    for s, stage in enumerate(STAGES):
        n = getattr(scenario.initial_pool, stage)
        first = second = 0.0
        for share, c in chains(scenario, **kwargs):
            r = c.orders
            D = c.repeat[:, None] * c.P + c.advance
            pis = [np.eye(N_STATES)[state(s, 0)]]
            for _ in range(days - 1):
                pis.append(pis[-1] @ c.P)
            h = np.zeros(N_STATES)
            cross = 0.0
            for t in range(days - 1, -1, -1):
                cross += pis[t] @ D @ h
                h = r + c.P @ h
            m = sum(pi @ r for pi in pis)
            first += share * m
            second += share * (m + 2.0 * cross)
        mean += n * first
        var += n * (second - first * first)
    return mean, var


@pytest.fixture(scope="module")
def daily():
    return simulate(MARKOV, seed=SEED, reps=REPS, keep_agents=False).daily


def z_scores(daily, **kwargs) -> dict[str, float]:
    """Standardized error of the replication mean of each checked quantity."""
    z = {}
    for name, states in STOCKS.items():
        counts = by_rep(daily, name)
        for d in CHECK_DAYS:
            mean, var = stock_moments(MARKOV, d, states, **kwargs)
            z[f"{name} after {d} days"] = (counts[d - 1].mean() - mean) / np.sqrt(var / REPS)
    orders = by_rep(daily, "orders").cumsum(axis=0)
    for d in CHECK_DAYS:
        mean, var = order_moments(MARKOV, d, **kwargs)
        z[f"orders in {d} days"] = (orders[d - 1].mean() - mean) / np.sqrt(var / REPS)
    return z


def test_chain_rows_are_distributions():
    for _, c in chains(MARKOV):
        np.testing.assert_allclose(c.P.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        assert (c.P >= 0).all()
        assert (c.orders <= 1).all()


@pytest.mark.slow
def test_stocks_and_orders_match_the_chain(daily):
    z = z_scores(daily)
    far = {k: round(v, 2) for k, v in z.items() if abs(v) > Z}
    assert not far, f"replication means beyond {Z} standard errors of the chain: {far}"


@pytest.mark.slow
def test_replication_spread_matches_the_chain_variance(daily):
    """The theory's variance is what the tolerances rest on: check it against the spread
    of the replications. ``(REPS - 1) s^2 / var`` is chi-square with ``REPS - 1`` degrees of
    freedom for a normal count (the counts here are sums of thousands of Bernoullis);
    the bounds are its 1e-6 and 1 - 1e-6 quantiles."""
    low, high = stats.chi2.ppf([1e-6, 1 - 1e-6], REPS - 1) / (REPS - 1)
    ratios = {}
    for name, states in STOCKS.items():
        counts = by_rep(daily, name)
        for d in CHECK_DAYS:
            _, var = stock_moments(MARKOV, d, states)
            ratios[f"{name} after {d} days"] = counts[d - 1].var(ddof=1) / var
    orders = by_rep(daily, "orders").cumsum(axis=0)
    for d in CHECK_DAYS:
        _, var = order_moments(MARKOV, d)
        ratios[f"orders in {d} days"] = orders[d - 1].var(ddof=1) / var
    off = {k: round(v, 3) for k, v in ratios.items() if not low < v < high}
    assert not off, f"sample / chain variance outside ({low:.2f}, {high:.2f}): {off}"


@pytest.mark.slow
@pytest.mark.parametrize("rate", ["join", "first_order", "dormancy", "wake", "deletion"])
def test_a_ten_percent_wrong_rate_is_rejected(daily, rate):
    """Power: the same data and tolerance reject a chain with one rate 10% too high."""
    z = z_scores(daily, scale={rate: 1.1})
    assert max(abs(v) for v in z.values()) > Z


def test_initial_pool_gets_no_new_user_push():
    """``new_user_multiplier`` acts in the days after an add; the initial pool was in the
    domain before the start, so its fans convert at the base rate from day 0."""
    scenario = build(
        horizon_days=5, initial_pool={"fan": 20000},
        lifecycle={"first_order": 0.01, "new_user_days": 3, "new_user_multiplier": 3.0,
                   "repeat_order": 0.0, "join": 0.0, "koc": 0.0,
                   "deletion": dict.fromkeys(STAGES, 0.0)},
    )
    reps = 10
    customers = by_rep(simulate(scenario, seed=SEED, reps=reps, keep_agents=False).daily,
                       "customer")
    for d in (1, 2, 5):
        mean, var = stock_moments(scenario, d, [state(CUSTOMER, 0), state(CUSTOMER, 1)])
        z = (customers[d - 1].mean() - mean) / np.sqrt(var / reps)
        assert abs(z) < Z, f"customers after {d} days: mean {customers[d - 1].mean():.1f}, " \
                           f"chain {mean:.1f} (z = {z:.1f})"


@pytest.mark.parametrize("push", [3.0, 0.2], ids=["boost", "damp"])
def test_new_user_push_acts_on_the_first_days_after_the_add(push):
    """A fan added on day ``j`` converts with probability ``first_order * push`` on days
    ``j .. j + new_user_days - 1`` (the lifecycle runs after the day's adds) and at the
    base rate after, a push below 1 included. Each day's hazard among the fans still at
    risk is binomial given them: ``|z| < Z`` for each of the first six days."""
    rate, days = 0.05, 3
    scenario = build(horizon_days=12, lifecycle=zero_lifecycle(
        first_order=rate, new_user_days=days, new_user_multiplier=push),
        referral={"addressable_market": 400_000, "external_rate": 0.01})
    agents = simulate(scenario, seed=SEED, reps=1).agents
    joined = agents[agents["join_day"].between(0, 5)]  # each followed for 6 days or more
    offset = np.where(joined["first_order_day"] >= 0,
                      joined["first_order_day"] - joined["join_day"], np.inf)
    for k in range(6):
        at_risk = int((offset >= k).sum())
        p = rate * push if k < days else rate
        z = ((offset == k).sum() - at_risk * p) / np.sqrt(at_risk * p * (1 - p))
        assert abs(z) < Z, f"day {k} after the add: z = {z:.1f}"
