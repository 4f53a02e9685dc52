"""Response curves: the engine's mean, chords below the curve, a reported error bound
that holds, and curves measured by simulation that agree with the parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from planner_cases import small

from simdomain.planner.curves import ResponseCurve, approximate, measure_curves, scenario_curves
from simdomain.scenario import load_scenario


@pytest.fixture(scope="module")
def social():
    return load_scenario("scenarios/social_ecommerce.yaml")


def test_curves_are_the_engine_mean(social):
    for name, curve in scenario_curves(social).items():
        for spend in (0.0, 1_000.0, 50_000.0, 3_000_000.0):
            assert curve.adds(spend) == pytest.approx(social.expected_monthly_adds(name, spend),
                                                      rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("tolerance", [0.01, 0.002, 0.0005])
def test_chords_stay_below_within_the_reported_bound(social, tolerance):
    for curve in scenario_curves(social).values():
        upper = min(curve.saturation_spend(), 2e6)
        pwl = approximate(curve, upper, tolerance=tolerance, max_points=200)
        grid = np.linspace(0, upper, 50_001)
        gap = curve.adds(grid) - pwl(grid)
        assert gap.min() >= -1e-9  # concave: chords never promise adds the spend won't bring
        assert gap.max() <= pwl.max_error + 1e-6  # the bound holds
        assert pwl.max_error <= tolerance * curve.adds(upper) + 1e-9  # and meets the tolerance
        assert np.all(np.diff(pwl.slopes) <= 1e-12)  # concave chords: no binaries needed


def test_required_points_are_exact_and_count_is_respected():
    curve = ResponseCurve("c", peak_adds=5000.0, adds_per_cny=0.1, capacity_spend=80_000.0)
    pwl = approximate(curve, 100_000.0, points=7, include=[12_345.0, 80_000.0])
    assert len(pwl.spend) == 7
    assert pwl(12_345.0) == pytest.approx(float(curve.adds(12_345.0)))
    assert pwl(90_000.0) == pytest.approx(float(curve.adds(80_000.0)))  # flat past capacity
    straight = ResponseCurve("s", peak_adds=math.inf, adds_per_cny=0.2)
    line = approximate(straight, 1e6)
    assert len(line.spend) == 2 and line.max_error == pytest.approx(0.0, abs=1e-9)


def test_measured_curves_match_the_parameters():
    scenario = small()
    measured = measure_curves(scenario, levels=5, reps=2, seed=3)
    exact = scenario_curves(scenario)
    for name, curve in measured.items():
        assert curve.source == "simulated" and curve.fit["r2"] > 0.99
        spend = np.array(curve.fit["spend_cny"])
        expected = exact[name].adds(spend)
        assert np.abs(curve.adds(spend) - expected).max() <= 0.05 * expected.max()
