"""The twin's lifecycle fits recover known truth from data generated in the engine's terms.

Data are made day by day as the engine draws them (a step once a day, from the day a
person becomes at risk), so the daily probabilities are the truth to recover.
"""

import numpy as np
import pandas as pd
import pytest

from simdomain import kpi
from simdomain.twin.deletion import fit_deletion
from simdomain.twin.rates import fit_first_order, fit_join

SPAN = 600


def _people(seed: int, n: int = 40_000, *, push: float = 2.0, shape: float = 0.7):
    """People added over SPAN days before the as-of date, two channels."""
    rng = np.random.default_rng(seed)
    source = rng.choice(["card", "sms"], n, p=[0.6, 0.4])
    add = -rng.integers(1, SPAN, n).astype(float)
    late = np.where(source == "card", 0.03, 0.01)
    # first order: 3 new-user days at push x the later rate, then the later rate
    early_day = rng.geometric(np.minimum(late * push, 1)) - 1
    later_day = 3 + rng.geometric(late) - 1
    first = add + np.where(early_day < 3, early_day, later_day)
    join = first + 1 + rng.geometric(0.01, n) - 1
    frailty = rng.gamma(shape, 1 / shape, n)
    deletion = add + rng.geometric(np.minimum(0.002 * frailty * np.where(source == "sms", 2, 1),
                                              1)) - 1
    frame = pd.DataFrame({
        "source": source, "add_day": add,
        "first_order_day": np.where(first < 0, first, np.nan),
        "member_day": np.where(join < 0, join, np.nan),
        "koc_day": np.nan, "deletion_day": np.where(deletion < 0, deletion, np.nan),
        "contact": True,
    }, index=[f"c{i}" for i in range(n)])
    # people are at risk only until they delete
    gone = frame["deletion_day"]
    for column in ("first_order_day", "member_day"):
        frame.loc[frame[column] > gone, column] = np.nan
    frame.loc[frame["first_order_day"].isna(), "member_day"] = np.nan
    frame["orders"] = frame["first_order_day"].notna().astype(int)
    return frame


def test_first_order_by_channel_and_the_new_user_push_are_recovered():
    fit = fit_first_order(_people(1))
    rates = {c: h.rate for c, h in fit.late.by_channel.items()}
    for channel, truth in (("card", 0.03), ("sms", 0.01)):
        low, high = fit.late.by_channel[channel].interval(0.999)
        assert low < truth < high, (channel, rates[channel])
    # the push: early first orders over those the later rates would give; sd from Poisson
    events = fit.early.pooled.events
    assert abs(fit.new_user_multiplier - 2.0) < 4 * 2.0 / np.sqrt(events)


def test_joining_is_recovered():
    fit = fit_join(_people(2))
    low, high = fit.pooled.interval(0.999)
    assert low < 0.01 < high


def test_deletion_frailty_shape_and_channel_multiplier_are_recovered():
    fit = fit_deletion(_people(3, shape=0.7))
    low, high = fit.shape_interval(0.999)
    assert low < 0.7 < high
    ratio = fit.channel["sms"].rate / fit.channel["card"].rate
    assert abs(ratio - 2.0) < 0.25  # about 4 standard errors with ~8,000 deletions


def test_deletion_agrees_with_an_independent_lomax_fit_on_one_stage_and_channel():
    from frailty_oracle import fit_frailty_survival

    people = _people(7, n=20_000, shape=0.7)
    people = people.assign(source="card", first_order_day=np.nan, member_day=np.nan)
    em = fit_deletion(people)
    stop = (people["deletion_day"] + 1).fillna(0.0).clip(upper=0.0)
    lomax = fit_frailty_survival(stop - people["add_day"], people["deletion_day"].notna())
    # Same model, two code paths (EM with a profiled shape; direct maximum likelihood):
    # the maxima agree to the optimisers' tolerances.
    assert em.shape == pytest.approx(lomax.params.k, rel=0.02)
    assert em.stage["fan"].rate == pytest.approx(lomax.params.mean_rate, rel=0.02)


@pytest.mark.slow
def test_deletion_shape_intervals_cover_the_truth_at_their_rate():
    # 20 seeds; a 90% interval covers the truth in Binomial(20, 0.9) of them: at least 14
    # of 20 happens with probability 0.989.
    covered = 0
    for seed in range(20):
        low, high = fit_deletion(_people(100 + seed, n=15_000, shape=0.8)).shape_interval(0.9)
        covered += low < 0.8 < high
    assert covered >= 14, covered


def test_parameter_share_splits_the_spread_by_the_law_of_total_variance():
    # 400 draws x 2 replications: parameter sd 2, chance sd 1, so the share is 4 / 5.
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(400), 2)
    values = rng.normal(0, 2, 400)[groups] + rng.normal(0, 1, 800)
    share = kpi.parameter_share(values, groups)
    # the share's standard error at this size is about 0.02 (from 200 replications of this)
    assert abs(share - 0.8) < 0.06
    assert kpi.parameter_share(rng.normal(size=800), groups) < 0.1
    assert kpi.parameter_share(values, np.arange(800)) is None
