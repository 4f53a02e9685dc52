"""Bass docking: referral alone reproduces the discrete-time Bass diffusion.

Scenario: nobody in the pool at the start, no channels, no touches, every lifecycle rate
zero (deletion too), so everyone who joins stays a fan; ``word_of_mouth = {fan: q}``, so
the word of mouth is ``W = q N`` with ``N`` the pool. Each day each of the ``M - N``
people left in the market joins with probability ``p + q N / M``
(``steps.referral``): ``N(t + 1) = N(t) + Binomial(M - N(t), p + q N(t) / M)``, whose
deterministic skeleton is the Bass curve ``B(t + 1) = B(t) + (p + q B(t) / M)(M - B(t))``.
Referral acts at phase 0.2 and the recorder at 0.9, so the pool recorded on day ``t``
already holds day ``t``'s adopters: it is ``N(t + 1)``.

Tolerance. ``E[N(t + 1)] = m + (p + q m / M)(M - m) - q v / M`` exactly (the step is
quadratic in ``N``), with ``m``, ``v`` the mean and variance of ``N(t)``: the stochastic
mean lags the Bass curve by a Jensen gap that is ``O(1)`` people, i.e. relative
``O(1 / M)``. :func:`moments` propagates ``m`` and ``v`` (the variance by the linear-noise
recursion ``v' = g^2 v + (M - m) h (1 - h)``, ``g = 1 + d/dN`` of the step); checked when
this test was written against the exact distribution of ``N`` propagated over all its
values: means within 0.01 people, standard deviations within 0.2%. A day passes when

    |mean over REPS - B(t)| <= Z sqrt(v / REPS) + 2 |m - B(t)|

i.e. ``Z = 4.5`` standard errors of the replication mean (from the theory's variance, so
it does not vanish when the replications happen to agree) plus twice the predicted
Jensen gap (at most 15 people, 7e-4 of M, for these parameters; doubled to cover the
terms the variance recursion neglects). Days are checked while at least ``MIN_LEFT``
people are expected to remain in the market: beyond that the count of stragglers is
Poisson-like with a tiny mean, the normal bound no longer applies and there is nothing
left to learn. Seeds are fixed.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from conftest import build, by_rep
from scipy import stats

from simdomain.scenario import Scenario
from simdomain.simulation import simulate

Z = 4.5
REPS = 30
SEED = 7
M = 20_000
MIN_LEFT = 50
CASES = [  # (p, q, days), daily rates
    pytest.param(0.01, 0.3, 60, id="p0.01-q0.3"),
    pytest.param(0.03, 0.1, 120, id="p0.03-q0.1"),
    pytest.param(0.002, 0.2, 90, id="p0.002-q0.2"),
]


def bass_scenario(p: float, q: float, days: int) -> Scenario:
    return build(
        name="bass", horizon_days=days,
        referral={"addressable_market": M, "external_rate": p, "word_of_mouth": {"fan": q}},
    )


def bass_curve(p: float, q: float, days: int, market: int = M) -> np.ndarray:
    """``B(0..days)`` of the deterministic discrete-time Bass model."""
    b = np.zeros(days + 1)
    for t in range(days):
        b[t + 1] = b[t] + (p + q * b[t] / market) * (market - b[t])
    return b


def moments(p: float, q: float, days: int, market: int = M) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``N(0..days)`` of the stochastic model (see the module doc)."""
    m, v = np.zeros(days + 1), np.zeros(days + 1)
    for t in range(days):
        h = min(1.0, p + q * m[t] / market)
        g = 1.0 - p + q - 2.0 * q * m[t] / market
        m[t + 1] = m[t] + (market - m[t]) * h - q * v[t] / market
        v[t + 1] = g * g * v[t] + (market - m[t]) * h * (1.0 - h)
    return m, v


@functools.cache
def daily(p: float, q: float, days: int) -> pd.DataFrame:
    """The simulated daily frame of a case (run once, shared by the tests)."""
    return simulate(bass_scenario(p, q, days), seed=SEED, reps=REPS, keep_agents=False).daily


def curve_excess(pool: np.ndarray, p: float, q: float, days: int,
                 *, curve_p: float | None = None, curve_q: float | None = None) -> np.ndarray:
    """``|mean - B| / tolerance`` on the checked days (> 1 fails). The tolerance is that of
    the true ``(p, q)``; ``curve_*`` replace the curve's parameters (power tests)."""
    b = bass_curve(p, q, days)[1:]
    m, v = (x[1:] for x in moments(p, q, days))
    checked = M - b >= MIN_LEFT
    tolerance = Z * np.sqrt(v / REPS) + 2.0 * np.abs(m - b)
    claimed = bass_curve(curve_p or p, curve_q or q, days)[1:]
    return (np.abs(pool.mean(axis=1) - claimed) / tolerance)[checked]


@pytest.mark.parametrize(("p", "q", "days"), CASES)
def test_jensen_gap_is_of_order_one_over_market(p, q, days):
    """The slack is small and behaves as stated: the mean lags the curve
    (``q v / M >= 0``) by a number of people that does not grow with the market, so the
    relative gap is ``O(1 / M)``."""
    gaps = []
    for market in (M, 10 * M):
        b = bass_curve(p, q, days, market)
        m, _ = moments(p, q, days, market)
        assert np.all(m <= b + 1e-9 * market)
        gaps.append(np.max(b - m))
    assert 0.9 < gaps[1] / gaps[0] < 1.1
    assert gaps[0] < 1e-3 * M


@pytest.mark.slow
@pytest.mark.parametrize(("p", "q", "days"), CASES)
def test_mean_adopters_follow_the_bass_curve(p, q, days):
    pool = by_rep(daily(p, q, days), "pool")
    excess = curve_excess(pool, p, q, days)
    assert excess.size >= 20, "too few informative days: lengthen or slow the case"
    worst = int(np.argmax(excess))
    assert excess.max() <= 1.0, f"day {worst}: |mean - Bass| is {excess.max():.2f} tolerances"


@pytest.mark.slow
@pytest.mark.parametrize(("p", "q", "days"), CASES)
def test_replication_spread_matches_the_theory_variance(p, q, days):
    """The tolerance rests on ``v``: the replications' variance must agree with it
    (``(REPS - 1) s^2 / v`` is chi-square with ``REPS - 1`` degrees of freedom; bounds at its
    1e-6 and 1 - 1e-6 quantiles), on days with a spread of at least 5 people."""
    pool = by_rep(daily(p, q, days), "pool")
    _, v = moments(p, q, days)
    v = v[1:]
    days_checked = np.flatnonzero((v > 25) & (M - bass_curve(p, q, days)[1:] >= MIN_LEFT))
    ratio = pool[days_checked].var(axis=1, ddof=1) / v[days_checked]
    low, high = stats.chi2.ppf([1e-6, 1 - 1e-6], REPS - 1) / (REPS - 1)
    off = {int(d): round(float(r), 2) for d, r in zip(days_checked, ratio, strict=True)
           if not low < r < high}
    assert not off, f"sample / theory variance outside ({low:.2f}, {high:.2f}): {off}"


@pytest.mark.slow
@pytest.mark.parametrize(("p", "q", "days"), CASES)
@pytest.mark.parametrize("wrong", ["p", "q"])
def test_a_ten_percent_wrong_curve_is_rejected(p, q, days, wrong):
    """Power: the same data and tolerance reject the curve of a 10% higher p or q."""
    pool = by_rep(daily(p, q, days), "pool")
    shifted = {f"curve_{wrong}": 1.1 * (p if wrong == "p" else q)}
    assert curve_excess(pool, p, q, days, **shifted).max() > 1.0


def split_z(frame, p: float, q: float, window: int = 10, *, claimed_q: float | None = None
            ) -> dict[str, np.ndarray]:
    """z-scores, per window of days, of the referral and organic adds against their
    conditional expectations.

    Given the pool ``N`` before day ``t``, the day's adopters split multinomially: referred
    ``~ Binomial(M - N, q N / M)`` and organic ``~ Binomial(M - N, p)`` (thinning of
    ``Binomial(M - N, p + q N / M)``). The residuals ``adds - E[adds | N]`` are martingale
    differences, so their sum over days and replications has variance the sum of the
    conditional variances ``(M - N) r (1 - r)``: exact, no Jensen gap.
    """
    q = claimed_q or q
    pool = by_rep(frame, "pool")
    before = np.vstack([np.zeros(pool.shape[1]), pool[:-1]])
    left = M - before
    out = {}
    word, external = q * before / M, np.full_like(before, p)
    for column, rate in (("referral_adds", word), ("organic_adds", external)):
        residual = by_rep(frame, column) - left * rate
        var = left * rate * (1 - rate)
        starts = range(0, len(pool), window)
        res = np.array([residual[s:s + window].sum() for s in starts])
        sd = np.sqrt([var[s:s + window].sum() for s in starts])
        informative = sd > 3  # windows with at least ~10 expected adds
        out[column] = res[informative] / sd[informative]
    return out


@pytest.mark.slow
@pytest.mark.parametrize(("p", "q", "days"), CASES)
def test_referral_and_organic_adds_split_as_word_of_mouth_and_external(p, q, days):
    frame = daily(p, q, days)
    np.testing.assert_array_equal(
        frame["new_adds"], frame["referral_adds"] + frame["organic_adds"])
    for column, z in split_z(frame, p, q).items():
        assert z.size >= 2
        assert np.abs(z).max() < Z, f"{column}: window z-scores {np.round(z, 1)}"


@pytest.mark.slow
@pytest.mark.parametrize(("p", "q", "days"), CASES)
def test_a_ten_percent_wrong_word_of_mouth_is_rejected(p, q, days):
    z = split_z(daily(p, q, days), p, q, claimed_q=1.1 * q)
    assert np.abs(z["referral_adds"]).max() > Z
