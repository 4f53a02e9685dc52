"""Touch effects kept lazily and views drawn for the people they reach.

Engagement and fatigue are stored over a common decay scale (no daily pass); views are
drawn by thinning when few people see any post, by a pass over everyone otherwise. Both
draws must give each person the same binomial views, and the stored values the closed
form ``sum of effects * 2 ** (-age / half_life)``.

Tolerances: per-person view totals over ``D`` days are Binomial(``D * posts``, rate),
independent across people, so their mean over ``N`` people is within ``Z`` standard
errors of ``D * posts * rate`` (normal approximation: thousands of views); likewise the
mean engagement, a sum of independent decayed views.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build, zero_lifecycle

from simdomain.sim import steps, thinning
from simdomain.sim.engine import run_replication

Z = 4.5
PEOPLE, DAYS = 20_000, 30


def moments_only(posts: int, rate: float, half_life: float = 7.0) -> dict:
    return {"one_to_one": {"per_week": 0}, "group": {"posts_per_day": 0},
            "moments": {"posts_per_day": posts, "view_rate": rate,
                        "content": {"a": {"share": 1.0, "uplift": 0.1, "fatigue": 0.05}}},
            "engagement_half_life_days": half_life}


@pytest.mark.parametrize("sparse", [0.0, 1.0], ids=["dense", "sparse"])
def test_views_are_binomial_either_way(monkeypatch, sparse):
    """The same scenario drawn with every person's uniform (``SPARSE = 0``) and by
    thinning (``SPARSE = 1``): view totals and engagement have the binomial moments."""
    monkeypatch.setattr(steps, "SPARSE", sparse)
    posts, rate = 3, 0.02
    scenario = build(initial_pool={"customer": PEOPLE}, horizon_days=DAYS,
                     touch_policy=moments_only(posts, rate), lifecycle=zero_lifecycle())
    agents = run_replication(scenario, np.random.SeedSequence(3)).agents
    views = agents["touches_moments"].to_numpy(float)
    trials = DAYS * posts
    assert abs(views.mean() - trials * rate) < Z * np.sqrt(trials * rate * (1 - rate) / PEOPLE)
    assert abs(views.var() / (trials * rate * (1 - rate)) - 1) < Z * np.sqrt(2 / PEOPLE)
    # engagement at the end: every day's views have decayed 1..DAYS days
    d = 0.5 ** (1 / 7.0)
    ages = np.arange(1, DAYS + 1)
    mean = 0.1 * posts * rate * (d ** ages).sum()
    sd = 0.1 * np.sqrt(posts * rate * (1 - rate) * (d ** (2 * ages)).sum())
    assert abs(agents["engagement"].mean() - mean) < Z * sd / np.sqrt(PEOPLE)


def test_group_views_reach_group_members_only(monkeypatch):
    monkeypatch.setattr(steps, "SPARSE", 1.0)
    policy = {"one_to_one": {"per_week": 0}, "moments": {"posts_per_day": 0},
              "group": {"posts_per_day": 2, "view_rate": 0.05, "share_in_groups": 0.5,
                        "content": {"a": {"share": 1.0, "uplift": 0.1}}}}
    scenario = build(initial_pool={"fan": PEOPLE}, horizon_days=DAYS, touch_policy=policy)
    agents = run_replication(scenario, np.random.SeedSequence(4)).agents
    outside = ~agents["in_group"].to_numpy()
    assert (agents.loc[outside, "touches_group"] == 0).all()
    assert (agents.loc[outside, "engagement"] == 0).all()
    inside = agents.loc[~outside, "touches_group"].to_numpy(float)
    trials, rate = DAYS * 2, 0.05
    assert abs(inside.mean() - trials * rate) < Z * np.sqrt(trials * rate * (1 - rate)
                                                             / len(inside))


def test_sparse_one_to_one_reaches_the_policy_share():
    policy = {"one_to_one": {"per_week": 7, "reach": 0.05, "uplift": 0.1,
                             "stages": ["customer"]},
              "group": {"posts_per_day": 0}, "moments": {"posts_per_day": 0}}
    scenario = build(initial_pool={"fan": PEOPLE, "customer": PEOPLE}, horizon_days=DAYS,
                     touch_policy=policy)
    agents = run_replication(scenario, np.random.SeedSequence(5)).agents
    fans = agents["stage"] == "fan"
    assert (agents.loc[fans, "touches_one_to_one"] == 0).all()
    got = agents.loc[~fans, "touches_one_to_one"].to_numpy(float)
    assert abs(got.mean() - DAYS * 0.05) < Z * np.sqrt(DAYS * 0.05 * 0.95 / PEOPLE)


@pytest.mark.parametrize("half_life", [7.0, 0.1])
def test_lazy_decay_is_the_closed_form(half_life):
    """Messages to everyone on fixed weekdays (no chance involved): each person's
    engagement and fatigue are the sum over messages of the effect times
    ``2 ** (-days since / half_life)``. A half-life of 0.1 day passes the rescaling of
    the stored values several times in 30 days."""
    policy = {"one_to_one": {"per_week": 2, "weekdays": [0, 3], "reach": 1.0, "uplift": 0.1,
                             "fatigue": 0.2, "stages": ["fan"]},
              "group": {"posts_per_day": 0}, "moments": {"posts_per_day": 0},
              "engagement_half_life_days": half_life, "fatigue_half_life_days": 2 * half_life}
    scenario = build(initial_pool={"fan": 10}, horizon_days=DAYS, touch_policy=policy)
    result = run_replication(scenario, np.random.SeedSequence(6))
    weekday = np.array([(scenario.start_date.weekday() + k) % 7 for k in range(DAYS)])
    sent = np.flatnonzero(np.isin(weekday, [0, 3]))
    age = DAYS - sent  # the last day's decay has run when the frame is taken
    agents = result.agents
    assert (agents["touches_one_to_one"] == len(sent)).all()
    np.testing.assert_allclose(agents["engagement"], 0.1 * (0.5 ** (age / half_life)).sum(),
                               rtol=1e-5, atol=1e-37)
    np.testing.assert_allclose(agents["fatigue"],
                               0.2 * (0.5 ** (age / (2 * half_life))).sum(),
                               rtol=1e-5, atol=1e-37)


@pytest.mark.parametrize("tails", [[0.5 + 1 / 512], [0.59, 0.18, 0.027, 0.0016], [1.0, 0.25]],
                         ids=["straddles-a-byte", "binomial-4-0.2", "whole-bytes"])
def test_counts_from_bytes_have_the_exact_tails(tails):
    """Counts drawn a byte at a time are ``#{k: u < tails[k]}`` for an exact uniform:
    ``P(count >= k)`` is ``tails[k - 1]`` within ``Z`` binomial standard errors over
    4,000,000 draws (se about 0.00025). A tail inside a byte (0.5 + 1/512 lies in byte
    128) would be off by 0.002, eight standard errors, if the byte were not refined."""
    rng = np.random.default_rng(5)
    size = 4_000_000
    counts = thinning.counts_below(tails, rng, out=np.empty(size, dtype=np.int8),
                                   flag=np.empty(size, dtype=np.bool_))
    for k, tail in enumerate(tails, start=1):
        share = np.count_nonzero(counts >= k) / size
        assert abs(share - tail) <= Z * np.sqrt(max(tail * (1 - tail), 1e-12) / size), (k, share)
    assert counts.max() <= len(tails)
