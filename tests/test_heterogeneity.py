"""Per-person rates: channel propensities, gamma multipliers and their stratified thinning.

Known answers:

- with heterogeneity off, the frames are those of the engine before multipliers existed
  (saved from it in ``fixtures/baseline``);
- a channel's propensities multiply the rate tables of the people it brings, exactly;
- a person with multiplier ``m`` on a table probability ``q`` has an event each day with
  probability exactly ``min(q m, 1)``, whatever stratum thins them (binomial checks);
- a multiplier's level is the half octave holding it;
- the people picked by stratified thinning are at most sqrt(2) times the expected events;
- docking: gamma order and dropout multipliers with no waking are the Pareto/NBD model,
  in daily steps (closed forms of Schmittlein, Morrison & Colombo 1987); a gamma
  deletion multiplier gives the Lomax survival.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import test_properties as invariants
from conftest import FIXTURES, STAGES, build, zero_lifecycle
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from simdomain.scenario import load_scenario, validate_scenario
from simdomain.sim import thinning
from simdomain.sim.engine import run_replication
from simdomain.sim.population import NEVER, InitialPeople
from simdomain.sim.rates import Layout, build_rates
from simdomain.sim.reference import simulate_reference
from simdomain.simulation import simulate

BASELINE = FIXTURES / "baseline"
Z = 4.5
"""Standard errors allowed: about 7e-6 two-sided per check (normal approximation)."""


# -- heterogeneity off: the engine as it was ------------------------------------------------

def test_frames_without_heterogeneity_are_the_saved_ones():
    """``every_mechanism.yaml``, seed 11, 2 replications, exactly as saved: a change of the
    engine's random streams must be deliberate. Saved first before per-person multipliers
    (commit 24f02c6), again when touches went lazy and thinning bounds changed which
    numbers are drawn (the distributions are the docking tests' to check; 30 replications
    of the old and new engine agreed on every daily total within |z| < 2), and again when
    views came from random bytes and the lifecycle was thinned per stage (150
    replications of each: 31 totals, stocks and per-person sums all within |z| < 1.5),
    and again when bounds came from the states people are in, gaps from exponentials
    and strata from half octaves (1,000 replications of each, with and without gamma
    multipliers: 58 totals, stocks and per-person sums all within |z| < 1.7). Days of
    events that never happened are stored as -1."""
    result = simulate(load_scenario(FIXTURES / "every_mechanism.yaml"), seed=11, reps=2)
    for name in ("daily", "channels", "monthly", "agents"):
        got = getattr(result, name)
        want = pd.read_parquet(BASELINE / f"every_mechanism_seed11_{name}.parquet")
        if name == "agents":
            for column in ("first_order_day", "last_order_day", "member_day", "koc_day"):
                assert (got[column] != -1).all()
                got[column] = got[column].where(got[column] != NEVER, -1)
        stored = io.BytesIO()
        got.to_parquet(stored)  # as the baseline was stored (date units change on the way)
        pd.testing.assert_frame_equal(pd.read_parquet(stored), want, check_exact=True, obj=name)


# -- channel propensities ---------------------------------------------------------------------

CHANNEL = {"monthly_spend_cny": 1000.0, "cost_per_contact_cny": 1.0,
           "funnel": {"add": 0.5}}


def test_channel_propensities_multiply_the_rate_tables():
    life = zero_lifecycle(first_order=0.01, repeat_order=0.02, join=0.03, koc=0.004,
                          dormancy=0.005, wake=0.006, deletion=dict.fromkeys(STAGES, 0.001))
    factors = {"first_order": 2.0, "repeat_order": 3.0, "join": 0.5, "koc": 4.0,
               "dormancy": 5.0, "deletion": 0.25, "referral": 1.5}
    referral = {"addressable_market": 100, "word_of_mouth": {"koc": 0.1}}
    plain = build(channels={"a": CHANNEL, "b": {**CHANNEL, "deletion_multiplier": 2.0}},
                  lifecycle=life, referral=referral)
    tilted = build(channels={"a": CHANNEL, "b": {**CHANNEL, "deletion_multiplier": 2.0,
                                                 "propensity": factors}},
                   lifecycle=life, referral=referral)
    layout = Layout.of(plain)
    shape = (len(layout.sources), len(layout.segments), 5, 2)
    base, mine = build_rates(plain, layout, []), build_rates(tilted, layout, [])
    for table, field in [("order", "repeat_order"), ("delete", "deletion"),
                         ("referral_weight", "referral")]:
        want = getattr(base, table).reshape(shape).astype(float)
        want[1] *= factors[field]
        np.testing.assert_allclose(getattr(mine, table).reshape(shape), want, rtol=1e-6,
                                   err_msg=table)
    advance = base.advance.reshape(shape).astype(float)
    for stage, field in enumerate(["first_order", "join", "koc"]):
        advance[1, :, stage] *= factors[field]
    np.testing.assert_allclose(mine.advance.reshape(shape), advance, rtol=1e-6)
    flip = base.flip_dormancy.reshape(shape).astype(float)
    flip[1, ..., 0] *= factors["dormancy"]  # falling dormant; waking is not a propensity
    np.testing.assert_allclose(mine.flip_dormancy.reshape(shape), flip, rtol=1e-6)
    untouched = np.arange(shape[0]) != 1  # channel a, the initial, organic and referred
    for table in ("order", "delete", "advance", "flip_dormancy", "referral_weight"):
        np.testing.assert_array_equal(getattr(mine, table).reshape(shape)[untouched],
                                      getattr(base, table).reshape(shape)[untouched])


def test_a_channel_add_propensity_scales_its_adds():
    """Contacts per day are fixed by spend; adds per contact are binomial with the add
    rate times the channel's ``add`` propensity: 0.5 x 0.4 = 0.2 of 1000 contacts a month."""
    scenario = build(channels={"a": {**CHANNEL, "propensity": {"add": 0.4}}}, horizon_days=31)
    assert scenario.expected_monthly_adds("a", 1000.0) == pytest.approx(200.0)
    channels = simulate(scenario, seed=3, reps=10, keep_agents=False).channels
    adds, contacts = channels["adds"].sum(), channels["contacts"].sum()
    assert contacts == 10 * 1000
    assert abs(adds - 0.2 * contacts) < Z * np.sqrt(contacts * 0.2 * 0.8)


# -- stratified thinning: exact per-person probabilities -------------------------------------

MULTIPLIER_VALUES = np.array([0.0, 0.001, 0.3, 0.7, 1.0, 1.5, 3.2, 10.0, 80.0])
"""One group of people per value, across many strata; 80 x 0.02 > 1 is capped at 1."""


def known_customers(per_value: int, **multiplier: str) -> InitialPeople:
    """``per_value`` awake customers for each of :data:`MULTIPLIER_VALUES`, carrying them
    as the named multipliers (keyword: field name -> ``"values"``)."""
    n = per_value * len(MULTIPLIER_VALUES)
    values = np.repeat(MULTIPLIER_VALUES, per_value).astype(np.float32)
    return InitialPeople(
        stage=np.full(n, 1), segment=np.zeros(n, dtype=int), source=np.full(n, "initial"),
        join_day=np.full(n, -100), **{name: values for name in multiplier})


def binomial_z(successes: np.ndarray, trials: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Standardized counts of a binomial per group (0 where the variance is 0 and the
    count is exact)."""
    mean, var = trials * p, trials * p * (1 - p)
    exact = var == 0
    assert (successes[exact] == mean[exact]).all(), "a sure (or impossible) event missed"
    return np.where(exact, 0.0, (successes - mean) / np.sqrt(np.where(exact, 1.0, var)))


@pytest.mark.parametrize("kind", ["order", "dormancy", "deletion"])
def test_each_person_has_exactly_their_own_probability(kind: str):
    """Per group of equal multipliers: the events are binomial with ``min(q m, 1)`` per
    person-day at risk (checked by a z score on the group's total), and for orders the
    counts per person follow Binomial(days, p) (chi-square over the counts 0..4, 5+)."""
    per_value, days, q = 4000, 20, 0.02
    rates = {"order": {"repeat_order": q}, "dormancy": {"dormancy": q, "wake": 0.0},
             "deletion": {"deletion": dict.fromkeys(STAGES, q)}}[kind]
    scenario = build(horizon_days=days, lifecycle=zero_lifecycle(**rates))
    people = known_customers(per_value, **{f"{kind}_multiplier": "values"})
    agents = run_replication(scenario, np.random.SeedSequence(42), initial=people).agents
    group = np.repeat(np.arange(len(MULTIPLIER_VALUES)), per_value)
    p = np.minimum(q * MULTIPLIER_VALUES.astype(np.float32).astype(float), 1.0)
    if kind == "order":
        counts = agents["orders"].to_numpy()
        totals = np.bincount(group, weights=counts)
        z = binomial_z(totals, np.full(len(p), per_value * days), p)
        for g in np.flatnonzero((p > 0) & (p < 1)):
            observed = np.bincount(np.minimum(counts[group == g], 5), minlength=6)
            expected = stats.binom.pmf(np.arange(6), days, p[g])
            expected[5] = stats.binom.sf(4, days, p[g])
            keep = expected * per_value >= 5  # chi-square needs about 5 expected per cell
            pooled_obs = np.append(observed[keep], observed[~keep].sum())
            pooled_exp = np.append(expected[keep], expected[~keep].sum()) * per_value
            if pooled_exp[-1] == 0:
                pooled_obs, pooled_exp = pooled_obs[:-1], pooled_exp[:-1]
            pooled_exp *= pooled_obs.sum() / pooled_exp.sum()
            assert stats.chisquare(pooled_obs, pooled_exp).pvalue > 1e-5, MULTIPLIER_VALUES[g]
    else:
        column = "dormant" if kind == "dormancy" else None
        hit = agents["dormant"] if column else agents["stage"] == "deleted"
        totals = np.bincount(group, weights=hit.to_numpy())
        survive = (1 - p) ** days  # at risk every day until the event, which is final
        z = binomial_z(totals, np.full(len(p), per_value), 1 - survive)
    assert (np.abs(z) < Z).all(), dict(zip(MULTIPLIER_VALUES, z.round(2), strict=True))


def test_levels_are_the_half_octaves_holding_the_multipliers():
    """``ceiling(k - 1) < m <= ceiling(k)`` for the level ``k`` of each multiplier ``m``
    (float32, as people hold them), the powers of two and their neighbours included;
    everything up to ``2 ** LOWEST`` (zero included) in the lowest level."""
    rng = np.random.default_rng(3)
    powers = np.exp2(np.arange(-14, 20, 0.5))
    m = np.concatenate([rng.gamma(0.5, 2.0, 100_000), powers, np.nextafter(
        powers.astype(np.float32), np.float32(np.inf)), np.nextafter(
        powers.astype(np.float32), np.float32(0)), [0.0, 1e-30, 2.0**-10]]).astype(np.float32)
    k = thinning.levels(m)
    low = 2 * thinning.LOWEST
    assert (m <= thinning.ceiling(k)).all()
    assert ((m > thinning.ceiling(k - 1)) | ((k == low) & (m <= 2.0**thinning.LOWEST))).all()
    assert (k[m <= 2.0**thinning.LOWEST] == low).all()


@given(shape=st.floats(0.05, 20.0), rate=st.floats(1e-5, 0.5), n=st.integers(1, 20000),
       seed=st.integers(0, 2**32 - 1))
def test_stratified_thinning_picks_at_most_root_two_times_the_events(shape, rate, n, seed):
    """Everyone in the stratum ``(c / sqrt(2), c]`` has a probability of at least its bound
    over sqrt(2), so the expected picks are at most sqrt(2) times the expected events, plus
    the lowest stratum (multipliers up to ``2 ** LOWEST``, bounded by the table times
    ``2 ** LOWEST``)."""
    multiplier = np.random.default_rng(seed).gamma(shape, 1 / shape, n).astype(np.float32)
    strata = thinning.Strata()
    strata.add(0, n // 3, multiplier=multiplier[: n // 3])
    strata.add(n // 3, n - n // 3, multiplier=multiplier[n // 3:])  # joining later
    events = np.minimum(rate * multiplier.astype(float), 1.0).sum()
    lowest = np.count_nonzero(multiplier <= 2.0 ** thinning.LOWEST)
    picks = strata.expected_picks(lambda band, ceiling: rate * ceiling)
    assert picks <= np.sqrt(2) * events + lowest * rate * 2.0 ** thinning.LOWEST + 1e-9 * n
    slots = np.concatenate([s for _, s in strata.groups(np.zeros(n, dtype=np.int8))])
    np.testing.assert_array_equal(np.sort(slots), np.arange(n))  # each person once


def test_strata_follow_people_up_the_bands():
    """People who move up a band are drawn in their new group only: with every bound at
    1, a draw picks each person in bands 0..3 exactly once, after any moves and
    compactions (the deleted, band 4, never), and each group holds its own people."""
    rng = np.random.default_rng(7)
    n = 6000
    band = np.zeros(n, dtype=np.int8)
    multiplier = rng.gamma(0.5, 2.0, n).astype(np.float32)
    strata = thinning.Strata()
    strata.add(0, 4000, band=band[:4000], multiplier=multiplier[:4000])
    placed = 4000
    bands_of = np.arange(5, dtype=np.int8)
    for step in range(60):
        if step == 20:  # people joining after some moves
            strata.add(placed, n - placed, band=band[placed:], multiplier=multiplier[placed:])
            placed = n
        alive = np.flatnonzero(band[:placed] < 4)
        movers = np.sort(rng.choice(alive, size=min(150, len(alive)), replace=False))
        old = band[movers].copy()
        band[movers] = np.minimum(old + rng.integers(1, 3, len(movers)), 4)
        strata.move(movers, old, band[movers], multiplier[movers], band[:placed])
        slots, u, states = strata.draw(lambda b, c: np.ones(len(b)), rng, band[:placed],
                                       bands_of)
        np.testing.assert_array_equal(np.sort(slots), np.flatnonzero(band[:placed] < 4))
        np.testing.assert_array_equal(states, band[slots])
        assert ((u >= 0) & (u < 1)).all()
    level = thinning.levels(multiplier)
    for (group_band, group_level), held in strata.groups(band):
        want = np.flatnonzero((band == group_band) & (level == group_level))
        np.testing.assert_array_equal(held, want)


def test_thinning_many_segments_at_once_is_bernoulli_per_person():
    """Beyond ``FEW`` segments, one vectorized draw: each person of segment ``j`` is
    picked with probability ``bounds[j]`` (counts within 4.5 binomial standard errors
    over 300 draws), positions ascending and in range, uniforms below the bound."""
    rng = np.random.default_rng(11)
    lengths = np.array([0, 1, 7, 300, 5000, 40000, 100000, 20, 3000, 2, 60000])
    bounds = np.array([0.3, 1.0, 0.5, 0.02, 1e-12, 0.001, 0.2, 2.0, 0.9, 0.0, 0.05])
    assert len(lengths) > thinning.FEW
    totals = np.zeros(len(lengths))
    for _ in range(300):
        drawn = thinning.thin_segments(lengths, bounds, rng)
        for j, (position, u) in enumerate(drawn):
            assert (np.diff(position) > 0).all()
            assert len(position) == 0 or (position[0] >= 0 and position[-1] < lengths[j])
            assert ((u >= 0) & (u < min(bounds[j], 1.0))).all()
            totals[j] += len(position)
    p = np.minimum(bounds, 1.0)
    trials = 300 * lengths
    z = (totals - trials * p) / np.sqrt(np.maximum(trials * p * (1 - p), 1e-12))
    assert (np.abs(z) < Z).all(), z.round(2)


def test_work_stays_proportional_to_the_events(monkeypatch):
    """In a run with heavy-tailed order multipliers (shape 0.3: the largest of 50,000 is
    about 45 times the mean), the people whose order probability is computed are at
    most twice the orders, plus chance: picks and orders are sums of independent draws,
    so their gap is within ``Z`` standard deviations of ``sqrt(picks)``."""
    picked = []
    original = thinning.candidates

    def counting(n, bound, rng):
        out = original(n, bound, rng)
        picked.append(len(out[0]))
        return out

    monkeypatch.setattr(thinning, "candidates", counting)
    scenario = build(horizon_days=60, initial_pool={"customer": 50000},
                     lifecycle=zero_lifecycle(repeat_order=0.01,
                                              heterogeneity={"order_shape": 0.3}))
    orders = simulate(scenario, seed=5, keep_agents=False).daily["orders"].sum()
    picks = sum(picked)
    assert orders > 20000
    assert picks <= 2 * orders + Z * np.sqrt(picks)
    assert picks < 50000 * 60 * 0.01 * 45 / 10, "far below one bound for the largest multiplier"


def test_multipliers_are_drawn_once_per_person_with_mean_one_and_shape():
    """Gamma(k, 1/k): mean 1, variance 1/k; each source has its own stream, so adding a
    channel leaves the initial pool's multipliers as they were."""
    life = zero_lifecycle(heterogeneity={"order_shape": 2.0, "deletion_shape": 0.5})
    alone = run_replication(build(initial_pool={"customer": 20000}, lifecycle=life,
                                  horizon_days=5), np.random.SeedSequence(9)).agents
    with_channel = run_replication(build(initial_pool={"customer": 20000}, lifecycle=life,
                                         horizon_days=5, channels={"a": CHANNEL}),
                                   np.random.SeedSequence(9)).agents
    for name, shape in [("order_multiplier", 2.0), ("deletion_multiplier", 0.5)]:
        m = alone[name].to_numpy(float)
        assert abs(m.mean() - 1) < Z * np.sqrt(1 / shape / len(m))
        assert stats.kstest(m, stats.gamma(shape, scale=1 / shape).cdf).pvalue > 1e-5
        np.testing.assert_array_equal(with_channel[name][: len(m)], alone[name])
    assert (alone["dormancy_multiplier"] == 1).all()
    assert (with_channel.loc[len(alone):, "order_multiplier"] != 1).all()


# -- docking: Pareto/NBD and Lomax -------------------------------------------------------------

def gamma_mean(g, shape: float, rate: float) -> float:
    """``E[g(x)]`` for ``x ~ Gamma(shape, rate)``, by quadrature (split at 1, where the
    integrands have a kink)."""
    pdf = stats.gamma(shape, scale=1 / rate).pdf
    total = 0.0
    for low, high in [(0, 1), (1, np.inf)]:
        value, error = integrate.quad(lambda x: g(x) * pdf(x), low, high, limit=200)
        assert error < 1e-6 * max(abs(value), 1e-3)
        total += value
    return total


def test_orders_and_dropout_dock_with_the_pareto_nbd():
    """N customers at the start with ``lambda_i ~ Gamma(r, alpha)`` (repeat_order r/alpha,
    order_shape r) and ``mu_i ~ Gamma(s, beta)`` (dormancy s/beta, dormancy_shape s), no
    waking and no orders while dormant: the Pareto/NBD, in daily steps.

    Closed forms (continuous time): ``E[X(t)] = r beta / (alpha (s - 1)) (1 - (beta /
    (beta + t)) ** (s - 1))`` and ``P(active at t) = (beta / (beta + t)) ** s``.

    The engine orders on day d with probability ``min(lambda, 1)`` while active that
    morning, then falls dormant with probability ``min(mu, 1)``: exactly, ``E[X(t)] =
    E[min(lambda, 1)] E[(1 - (1 - min(mu, 1)) ** t) / min(mu, 1)]`` and ``P(active) =
    E[(1 - min(mu, 1)) ** t]`` (by quadrature over the gammas). The discrete and
    continuous forms differ by ``O(mu^2 t)`` per person (``(1 - mu) ** t = exp(-mu t -
    mu^2 t / 2 - ...)``): here well under 1 % (asserted). The engine is held to the exact
    daily form within ``Z`` standard errors (the spread over people: per-person counts
    are independent), and to the closed form within that plus the gap.
    """
    r, alpha, s, beta = 0.8, 40.0, 1.5, 150.0
    n, horizon = 100_000, 365
    scenario = build(
        horizon_days=horizon, initial_pool={"customer": n},
        lifecycle=zero_lifecycle(repeat_order=r / alpha, dormancy=s / beta, wake=0.0,
                                 dormant_multiplier=0.0,
                                 heterogeneity={"order_shape": r, "dormancy_shape": s}))
    result = simulate(scenario, seed=20261129, keep_orders=True)
    orders, daily = result.orders, result.daily
    order_p = gamma_mean(lambda x: min(x, 1.0), r, alpha)
    for t in (30, 120, 365):
        counts = np.bincount(orders.loc[orders["day"] < t, "agent"], minlength=n)
        discrete = order_p * gamma_mean(
            lambda m, t=t: t if m == 0 else (1 - (1 - min(m, 1.0)) ** t) / min(m, 1.0), s, beta)
        closed = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))
        gap = abs(discrete - closed)
        assert gap < 0.01 * closed
        se = counts.std(ddof=1) / np.sqrt(n)
        assert abs(counts.mean() - discrete) < Z * se, (t, counts.mean(), discrete, se)
        assert abs(counts.mean() - closed) < Z * se + gap, (t, counts.mean(), closed)

        active = 1 - daily["dormant"].iloc[t - 1] / n
        discrete = gamma_mean(lambda m, t=t: (1 - min(m, 1.0)) ** t, s, beta)
        closed = (beta / (beta + t)) ** s
        gap = abs(discrete - closed)
        assert gap < 0.01 * closed
        se = np.sqrt(discrete * (1 - discrete) / n)
        assert abs(active - discrete) < Z * se, (t, active, discrete, se)
        assert abs(active - closed) < Z * se + gap, (t, active, closed)
    # power: the same data reject a dropout shape 20 % off
    wrong = (beta / (beta + horizon)) ** (1.2 * s)
    assert abs(1 - daily["dormant"].iloc[-1] / n - wrong) > 3 * Z * se


def test_gamma_deletion_gives_the_lomax_survival():
    """Deletion ``delta`` times ``Gamma(k, 1/k)``: survival ``(1 + delta t / k) ** -k``
    in continuous time, ``E[(1 - min(delta m, 1)) ** t]`` in daily steps; the hazard of
    those still here falls with tenure (the likeliest to delete leave first)."""
    delta, k, n, horizon = 0.01, 0.7, 100_000, 300
    scenario = build(horizon_days=horizon, initial_pool={"fan": n},
                     lifecycle=zero_lifecycle(deletion=dict.fromkeys(STAGES, delta),
                                              heterogeneity={"deletion_shape": k}))
    deleted = simulate(scenario, seed=77, keep_agents=False).daily["deleted"].to_numpy()
    for t in (10, 100, 300):
        discrete = gamma_mean(lambda m, t=t: (1 - min(delta * m, 1.0)) ** t, k, k)
        closed = (1 + delta * t / k) ** -k
        assert abs(discrete - closed) < 0.01 * closed
        se = np.sqrt(discrete * (1 - discrete) / n)
        assert abs(1 - deleted[t - 1] / n - discrete) < Z * se, t
    hazard = np.diff(deleted) / (n - deleted[:-1])
    assert hazard[:30].mean() > 1.5 * hazard[-30:].mean()


# -- the naive reference, with per-person rates --------------------------------------------

@pytest.fixture(scope="module")
def varied():
    """``every_mechanism.yaml`` with all three gamma multipliers and channel propensities."""
    raw = load_scenario(FIXTURES / "every_mechanism.yaml").model_dump(mode="json")
    raw["lifecycle"]["heterogeneity"] = {"order_shape": 0.6, "dormancy_shape": 1.5,
                                         "deletion_shape": 0.8}
    raw["channels"]["sms"]["propensity"] = {"add": 1.3, "first_order": 0.6,
                                            "repeat_order": 1.4, "join": 0.8, "dormancy": 1.5,
                                            "deletion": 1.2, "referral": 2.0}
    raw["channels"]["parcel"]["propensity"] = {"first_order": 1.8, "koc": 2.0}
    return validate_scenario(raw)


@pytest.mark.slow
def test_engine_agrees_with_the_reference_with_per_person_rates(varied):
    """The stratified engine against the reference simulator, where each consumer draws
    their own multipliers and steps with scalar draws (no thinning, no tables): the same
    Welch comparison and family-wise tolerance as ``test_reference.py`` (with two thirds of
    its reference replications, to save time: the Welch degrees of freedom account for
    it), and the same machinery flags a deletion propensity of the SMS channel doubled."""
    from test_reference import (
        ENGINE_REPS,
        ENGINE_SEED,
        REFERENCE_REPS,
        REFERENCE_SEED,
        outcomes,
        welch,
    )

    reference = outcomes(simulate_reference(varied, REFERENCE_SEED, REFERENCE_REPS * 2 // 3,
                                            keep_agents=False, workers=2))
    ours = outcomes(simulate(varied, seed=ENGINE_SEED, reps=ENGINE_REPS, keep_agents=False))
    table = welch(reference, ours)
    assert len(table) > 50
    failed = table[table["failed"]]
    assert failed.empty, f"engine and reference differ:\n{failed.to_string()}"
    raw = varied.model_dump(mode="json")
    raw["channels"]["sms"]["propensity"]["deletion"] *= 2
    perturbed = outcomes(simulate(validate_scenario(raw), seed=ENGINE_SEED,
                                  reps=ENGINE_REPS // 2, keep_agents=False))
    assert welch(reference, perturbed).loc["total_deletions", "failed"]


# -- the invariants of every scenario, with per-person rates --------------------------------

@settings(max_examples=15)
@given(scenario=invariants.scenarios(), seed=invariants.seeds,
       shapes=st.fixed_dictionaries({}, optional=dict.fromkeys(
           ["order_shape", "dormancy_shape", "deletion_shape"], st.floats(0.05, 10.0))),
       factors=st.fixed_dictionaries({}, optional=dict.fromkeys(
           ["add", "first_order", "repeat_order", "join", "dormancy", "deletion"],
           st.floats(0.0, 3.0))))
def test_invariants_hold_with_per_person_rates(scenario, seed, shapes, factors):
    """``test_properties``' exact invariants (people conserved, referrals and spend add
    up, stages only move forward) on its random scenarios with gamma multipliers and
    channel propensities."""
    raw = scenario.model_dump(mode="json")
    raw["lifecycle"]["heterogeneity"] = shapes
    for channel in raw["channels"].values():
        channel["propensity"] = factors
    varied = validate_scenario(raw)
    for check in (invariants.test_people_are_conserved, invariants.test_referrals_and_spend_add_up,
                  invariants.test_stages_only_move_forward):
        check.hypothesis.inner_test(scenario=varied, seed=seed)
