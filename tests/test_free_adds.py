"""Adds that come without spend: Poisson at the stated monthly rate, other channels untouched."""

import numpy as np

import simdomain


def test_free_adds_are_poisson_at_the_monthly_rate_and_leave_other_channels_alone():
    rate = 3000
    base = simdomain.load_scenario("scenarios/social_ecommerce.yaml",
                                   ["channels.sms_short_link.monthly_spend_cny=0"])
    free = simdomain.load_scenario("scenarios/social_ecommerce.yaml", [
        "channels.sms_short_link.monthly_spend_cny=0",
        f"channels.sms_short_link.free_adds_per_month={rate}"])
    a = simdomain.simulate(free, seed=3, reps=1, keep_agents=False).channels
    b = simdomain.simulate(base, seed=3, reps=1, keep_agents=False).channels
    adds = a.groupby("channel", observed=True)["adds"].sum()
    others = b.groupby("channel", observed=True)["adds"].sum()
    assert (adds.drop("sms_short_link") == others.drop("sms_short_link")).all()
    # The horizon is 12 whole months, each day adding Poisson(rate / month length):
    # the total is Poisson(12 * rate); 4 sd is a 6e-5 false alarm.
    expected = base.months * rate
    assert base.horizon_days == 365 and abs(adds["sms_short_link"] - expected) < 4 * np.sqrt(expected)
