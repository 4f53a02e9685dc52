"""Adds that come without spend: Poisson at the stated monthly rate, other channels untouched."""

import numpy as np

import simdomain


def test_free_adds_are_poisson_at_the_monthly_rate_and_leave_other_channels_alone():
    rate = 3000
    base = simdomain.load_scenario("scenarios/social_ecommerce.yaml",
                                   ["horizon_days=90", "channels.sms_short_link.monthly_spend_cny=0"])
    free = simdomain.load_scenario("scenarios/social_ecommerce.yaml", [
        "horizon_days=90", "channels.sms_short_link.monthly_spend_cny=0",
        f"channels.sms_short_link.free_adds_per_month={rate}"])
    a = simdomain.simulate(free, seed=3, reps=2, keep_agents=False).channels
    b = simdomain.simulate(base, seed=3, reps=2, keep_agents=False).channels
    adds = a.groupby("channel", observed=True)["adds"].sum()
    others = b.groupby("channel", observed=True)["adds"].sum()
    assert (adds.drop("sms_short_link") == others.drop("sms_short_link")).all()
    # 2 reps x 90 days at rate/month_length a day (Oct-Dec 2026 or the scenario's months):
    cal_days = a.loc[a["channel"] == "sms_short_link"].groupby("rep")["day"].count().iloc[0]
    expected = 2 * rate * 12 / 365.25 * cal_days
    # Poisson: sd = sqrt(mean); month lengths vary by up to 3/30, hence the 5% allowance.
    assert abs(adds["sms_short_link"] - expected) < 4 * np.sqrt(expected) + 0.05 * expected
