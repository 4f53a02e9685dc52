"""The preposterior analysis against answers worked out by hand (toy plans of
``tests/advise_support.py``: straight-line curves, one adds target met with chance P)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from advise_support import one_channel, two_channels
from scipy import stats

from simdomain.advise.preposterior import (
    CachedReplan,
    Draws,
    Outcome,
    Posterior,
    expected_posterior_chance,
    posterior_weights,
    preposterior,
    resample,
)

TARGET, LEVEL = 1000.0, 0.9
LOW, HIGH = 0.05, 0.1  # adds per yuan


def _two_point(copies: int = 1):
    slopes = np.repeat([LOW, HIGH], copies)
    prior = np.full(slopes.size, 1.0 / slopes.size)
    replan = CachedReplan(one_channel(slopes, TARGET, LEVEL))
    return slopes, prior, replan, replan(Posterior(prior))


def _spend_test(slopes: np.ndarray, spend: float, days: float) -> Outcome:
    return Outcome.poisson((slopes * spend * days / 30.4)[:, None])


def test_a_perfect_test_is_worth_the_value_of_perfect_information():
    """Two slopes, equal prior, met with P = 0.9: the plan must meet both now
    (T / LOW); knowing the slope saves T / LOW - T / HIGH half the time."""
    slopes, prior, replan, now = _two_point(copies=50)
    assert now.cost == pytest.approx(TARGET / LOW)
    evpi = 0.5 * (TARGET / LOW - TARGET / HIGH)
    draws = Draws.of(prior, 200, 1, seed=1)
    for mode in ("swap", "weights"):
        value = preposterior(_spend_test(slopes, 1e7, 28), prior, now, replan, draws, mode=mode)
        # systematic truths: exactly half of the 200 outcomes have each slope
        assert value.evsi == pytest.approx(evpi, rel=1e-9)
        assert value.chance_gain == 0.0  # learnt exactly: the new plan still meets the truth


def test_an_imperfect_test_matches_the_sum_over_its_outcomes():
    """A Poisson count of adds: the cheap plan follows exactly when the posterior weight of
    the low slope falls below 1 - P; its chance and the saving are sums over counts."""
    slopes, prior, replan, now = _two_point()
    spend, days = 2000.0, 7.0
    mu = slopes * spend * days / 30.4  # 2.3 and 4.6 adds
    y = np.arange(200)
    pmf = stats.poisson.pmf(y[:, None], mu[None])
    low_weight = pmf[:, 0] / pmf.sum(axis=1)
    cheap = low_weight < 1 - LEVEL
    p_cheap = 0.5 * (pmf[:, 0] + pmf[:, 1]) @ cheap
    evsi = p_cheap * (TARGET / LOW - TARGET / HIGH)
    gain = -0.5 * pmf[:, 0] @ cheap  # cheap plan on a low truth misses the target
    draws = Draws.of(prior, 4000, 1, seed=2)
    value = preposterior(_spend_test(slopes, spend, days), prior, now, replan, draws,
                         mode="weights")
    assert 0 < evsi < 0.5 * (TARGET / LOW - TARGET / HIGH)
    # 4 standard errors: a false alarm once in ~16,000 runs of the test
    assert abs(value.evsi - evsi) < 4 * value.evsi_se
    assert abs(value.chance_gain - gain) < 4 * value.chance_gain_se


def test_a_test_of_a_parameter_the_plan_does_not_use_is_worth_nothing():
    rng = np.random.default_rng(3)
    slopes, other = rng.lognormal(np.log(0.1), 0.3, 100), rng.lognormal(0, 0.3, 100)
    prior = np.full(100, 0.01)
    replan = CachedReplan(one_channel(slopes, TARGET, LEVEL, tested=False))
    now = replan(Posterior(prior))
    value = preposterior(Outcome.poisson(other[:, None] * 500), prior, now, replan,
                         Draws.of(prior, 100, 1, seed=3))
    assert value.evsi == 0.0 and value.chance_gain == 0.0
    solves = replan.solves
    flat = preposterior(Outcome.poisson(np.full((100, 1), 50.0)), prior, now, replan,
                        Draws.of(prior, 100, 1, seed=3))
    assert flat.evsi == 0.0 and replan.solves == solves  # a test that teaches nothing
    left_out = preposterior(Outcome.poisson(np.full((100, 1), 50.0)), prior, now, replan,
                            Draws.of(prior, 100, 1, seed=3), leave_out=True)
    assert left_out.evsi == 0.0 and left_out.chance_gain == 0.0  # against its own null


def _hundred_slopes(seed: int):
    """100 equally likely draws of one channel's slope, the planner over them, and the
    plan made now: ``(slopes, prior, replan, now)``."""
    slopes = np.random.default_rng(seed).lognormal(np.log(0.1), 0.3, 100)
    prior = np.full(100, 0.01)
    replan = CachedReplan(one_channel(slopes, TARGET, LEVEL))
    return slopes, prior, replan, replan(Posterior(prior))


def test_bigger_tests_are_worth_no_less():
    """Blackwell: a test that sees more is worth at least as much. With common random
    numbers the comparison is paired: the mean difference of savings must not fall below
    zero by more than 3 standard errors of the paired differences."""
    slopes, prior, replan, now = _hundred_slopes(seed=4)
    draws = Draws.of(prior, 300, 1, seed=4)
    values = [preposterior(_spend_test(slopes, spend, 28), prior, now, replan, draws)
              for spend in (300, 1000, 3000, 10000, 30000)]
    for small, big in itertools.pairwise(values):
        diff = big.savings - small.savings
        assert diff.mean() > -3 * diff.std(ddof=1) / np.sqrt(diff.size)
    assert values[-1].evsi > values[0].evsi + 3 * values[0].evsi_se  # and it does grow


def test_the_current_plans_chance_does_not_move_in_expectation():
    """The posterior is a martingale: averaged over the outcomes a test may bring, a fixed
    plan's posterior chance is its prior chance."""
    rng = np.random.default_rng(5)
    slopes = rng.lognormal(np.log(0.1), 0.3, 100)
    prior = rng.dirichlet(np.ones(100))
    met = slopes * 12_000 >= TARGET
    mean, se = expected_posterior_chance(_spend_test(slopes, 3000, 28), prior, met,
                                         Draws.of(prior, 2000, 1, seed=5))
    assert abs(mean - prior @ met) < 4 * se


def test_tempering_keeps_the_effective_sample_size():
    rng = np.random.default_rng(6)
    loglik = rng.normal(0, 30, (5, 200))
    weights, ess, tau = posterior_weights(np.full(200, 1 / 200), loglik, min_ess=20)
    assert np.all(ess >= 20 - 1e-6) and np.all(tau < 1)
    assert np.allclose(weights.sum(axis=1), 1)
    _flat, ess_flat, tau_flat = posterior_weights(np.full(200, 1 / 200), np.zeros((1, 200)), 20)
    assert ess_flat[0] == pytest.approx(200) and tau_flat[0] == 1


def test_systematic_resampling_keeps_equal_weights_in_place():
    assert np.array_equal(resample(np.full(7, 1 / 7), 0.63), np.arange(7))
    picks = resample(np.array([0.5, 0.0, 0.25, 0.25]), 0.1)
    assert np.bincount(picks, minlength=4).tolist() == [2, 0, 1, 1]


def test_counts_follow_their_family():
    means = np.array([[40.0, 5.0]])
    negbin = Outcome(np.repeat(means, 2, axis=0), np.array([[2.0, np.inf]] * 2))
    u = np.random.default_rng(7).random((20000, 2))
    counts = negbin.sample(np.zeros(20000, dtype=int), u)
    assert counts[:, 0].mean() == pytest.approx(40, rel=0.05)
    assert counts[:, 0].var() == pytest.approx(40 + 40**2 / 2, rel=0.1)  # NB variance
    assert counts[:, 1].var() == pytest.approx(5, rel=0.1)  # Poisson


@pytest.mark.slow
def test_the_ranking_agrees_with_brute_force():
    """Brute force: truths drawn afresh from the continuous prior (not the draws), the test
    run on the truth, the exact conjugate posterior (gamma prior, Poisson counts), the
    exact chance-P plan of that posterior, its actual saving. The design advise ranks first
    must be first by brute force, or within Monte Carlo error of it."""
    shape, rate = np.array([4.0, 16.0]), np.array([40.0, 200.0])  # slopes 0.1 +- 50%, 0.08 +- 25%
    rng = np.random.default_rng(8)
    k = 200
    slopes = rng.gamma(shape, 1 / rate, (k, 2))
    prior = np.full(k, 1 / k)
    designs = [(0, 1500.0, 14), (0, 6000.0, 28), (1, 1500.0, 14), (1, 6000.0, 28)]
    draws = Draws.of(prior, 300, 1, seed=9)
    advised = []
    for channel, spend, days in designs:
        replan = CachedReplan(two_channels(slopes, TARGET, LEVEL, tested=(channel,), shares=41))
        now = replan(Posterior(prior))
        means = slopes[:, channel] * spend * days / 30.4
        advised.append(preposterior(Outcome.poisson(means[:, None]), prior, now, replan, draws,
                                    leave_out=True))

    split = np.linspace(1, 0, 41)
    fresh = np.random.default_rng(10)

    def exact_cost(post_shape: np.ndarray, post_rate: np.ndarray) -> float:
        b = stats.gamma.ppf(stats.norm.cdf(_NORMALS), post_shape, scale=1 / post_rate)
        per_cny = b[:, 0][None] * split[:, None] + b[:, 1][None] * (1 - split[:, None])
        return float(TARGET / np.quantile(per_cny, 1 - LEVEL, axis=1).max())

    cost_now = exact_cost(shape, rate)
    truths = fresh.gamma(shape, 1 / rate, (400, 2))
    brute = []
    for channel, spend, days in designs:
        exposure = spend * days / 30.4
        y = fresh.poisson(truths[:, channel] * exposure)
        saving = []
        for count in y:
            post_shape, post_rate = shape.copy(), rate.copy()
            post_shape[channel] += count
            post_rate[channel] += exposure
            saving.append(cost_now - exact_cost(post_shape, post_rate))
        brute.append((np.mean(saving), np.std(saving, ddof=1) / np.sqrt(len(saving))))
    print("advise", [(round(v.evsi), round(v.evsi_se)) for v in advised],
          "brute force", [(round(m), round(e)) for m, e in brute])
    top = int(np.argmax([v.evsi for v in advised]))
    best = int(np.argmax([b[0] for b in brute]))
    se = np.hypot(brute[top][1], brute[best][1])
    assert brute[best][0] - brute[top][0] <= 3 * se, (advised, brute)
    # and the order of every pair that brute force separates clearly is the same
    for i in range(len(designs)):
        for j in range(len(designs)):
            if brute[i][0] - brute[j][0] > 4 * np.hypot(brute[i][1], brute[j][1]):
                assert advised[i].evsi > advised[j].evsi - 3 * np.hypot(
                    advised[i].evsi_se, advised[j].evsi_se), (i, j)


_NORMALS = np.random.default_rng(11).standard_normal((4000, 2))
"""Common normal scores behind the exact posteriors' samples (one set for every
posterior, so the brute force's plans differ by the posteriors, not by sampling)."""


def test_a_touch_tests_arms_start_from_the_settled_levels():
    """Customers settled under the scenario's touches: the control arm (the current 2 a
    week) stays at the settled engagement ``U / (1 - q)`` every day, so its orders are
    ``n r D (1 + U / (1 - q))``; an arm of 3 a week moves from there towards its own
    level, so it orders more than the control and less than settled at 3 a week."""
    from simdomain.advise.levers import touch_means
    from simdomain.scenario import load_scenario

    scenario = load_scenario(Path(__file__).parent / "fixtures" / "minimal.yaml")
    policy, life = scenario.touch_policy, scenario.lifecycle
    days, people = 28, 1000

    def daily(per_week: float) -> float:
        return (per_week / 7 * policy.one_to_one.reach * policy.one_to_one.uplift
                + policy.group.posts_per_day * policy.group.view_rate
                * policy.group.share_in_groups * policy.group.uplift_per_view
                + policy.moments.posts_per_day * policy.moments.view_rate
                * policy.moments.uplift_per_view)

    q = 0.5 ** (1 / policy.engagement_half_life_days)
    segments = list(scenario.segments.values())
    share = np.array([s.share for s in segments])
    repeat = life.repeat_order * share @ [s.propensity.repeat_order for s in segments]
    means = touch_means(scenario, "one_to_one", (2, 3), people, days, np.array([0, 1.0, 0, 0]))
    settled = people * repeat * days
    assert means[0] == pytest.approx(settled * (1 + daily(2) / (1 - q)), rel=1e-12)
    assert settled * (1 + daily(2) / (1 - q)) < means[3] < settled * (1 + daily(3) / (1 - q))


def test_spend_tests_cost_the_spend_beyond_the_plan_less_the_adds_it_buys():
    from simdomain.advise.levers import DAYS_PER_MONTH, spend_designs
    from simdomain.planner.curves import ResponseCurve

    line = ResponseCurve("kol", np.inf, 0.01)  # 0.01 adds per yuan, no saturation
    curves = [[line], [line]]
    unused = spend_designs("kol", 0, curves, 0.0, 50_000, 1e9, 1.0, 20.0, 100.0)
    assert unused and all(d.people >= 1000 for d in unused)
    for d in unused:  # a channel out of the plan: the whole spend, less its adds at ¥20
        spend = d.arms[0] * d.days / DAYS_PER_MONTH
        assert d.cost == pytest.approx(spend - 0.01 * spend * 20 + 100.0)
    used = spend_designs("kol", 0, curves, 50_000, 50_000, 1e9, 1.0, 200.0, 0.0)
    at_plan = [d for d in used if d.arms[0] == 50_000]
    assert at_plan and all(d.cost < 1e-6 for d in at_plan)  # measuring the plan costs nothing
    assert all(d.cost < 1e-6 for d in used)  # adds at ¥100 each are worth more than ¥200 a piece


def test_perfect_information_bounds_every_test():
    from simdomain.advise.preposterior import perfect_information

    slopes, prior, replan, now = _hundred_slopes(seed=12)
    draws = Draws.of(prior, 200, 1, seed=12)
    evpi, _ = perfect_information(prior, now, replan, draws)
    assert evpi == pytest.approx(now.cost - np.mean(TARGET / slopes[draws.truth]))
    for spend in (1000, 10000, 1e6):
        value = preposterior(_spend_test(slopes, spend, 28), prior, now, replan, draws)
        diff = evpi - value.savings  # the mean saving stays under the EVPI
        assert diff.mean() > -3 * diff.std(ddof=1) / np.sqrt(diff.size)
    idle = CachedReplan(one_channel(slopes, TARGET, LEVEL, tested=False))
    assert perfect_information(prior, now, idle, draws) == (0.0, 0.0)
