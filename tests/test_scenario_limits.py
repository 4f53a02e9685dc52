"""The limits behind the bad-input refusals: YAML loading, finite numbers, memory estimate."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from pydantic import Field, ValidationError

from simdomain.scenario import load_scenario, safeyaml, validate_scenario
from simdomain.scenario.capacity import BYTES_PER_PERSON, expected_people, month_lengths
from simdomain.scenario.io import apply_overrides
from simdomain.scenario.model import Strict
from simdomain.sim.population import FIELDS
from simdomain.sim.world import Calendar
from simdomain.sim.world import expected_people as engine_expected_people

EXAMPLES = ["scenarios/dtc.yaml", "scenarios/annual_pool.yaml", "scenarios/new_retail_o2o.yaml",
            "scenarios/social_ecommerce.yaml", "tests/fixtures/minimal.yaml"]


def test_bytes_per_person_match_the_engine_arrays():
    assert BYTES_PER_PERSON == sum(np.dtype(dtype).itemsize for dtype, _ in FIELDS.values())


@pytest.mark.parametrize(("path", "overrides"), [(path, []) for path in EXAMPLES] + [
    ("tests/fixtures/minimal.yaml", ["channels.sms.free_adds_per_month=700", "referral=null"])])
def test_people_estimate_is_the_engine_sizing_plus_the_referral_market(path, overrides):
    scenario = load_scenario(path, overrides)
    calendar = Calendar.of(scenario.start_date, scenario.horizon_days)
    assert month_lengths(scenario.start_date, scenario.horizon_days) == list(calendar.month_length)
    market = scenario.referral.addressable_market if scenario.referral else 0
    channels_and_pool = expected_people(scenario) - market
    assert engine_expected_people(scenario) == int(channels_and_pool * 1.1) + 1024


def test_every_float_field_of_a_scenario_model_refuses_inf_and_nan():
    class Later(Strict):  # a field added later gets the rule without saying so
        rate: float = 0.0
        rates: dict[str, float] = Field(default_factory=dict)
        series: list[float] = Field(default_factory=list)

    for value in (math.inf, -math.inf, math.nan):
        for field in ({"rate": value}, {"rates": {"a": value}}, {"series": [1.0, value]}):
            with pytest.raises(ValidationError, match="finite number"):
                Later.model_validate(field)


def test_yaml_anchors_and_merge_keys_in_normal_use_are_accepted():
    text = ("base: &base {spend: 1, cost: 2}\n"
            "a: {<<: *base, spend: 3}\n"
            "b: *base\n"
            "c: [*base, *base]\n")
    assert safeyaml.load(text) == {"base": {"spend": 1, "cost": 2}, "a": {"spend": 3, "cost": 2},
                                   "b": {"spend": 1, "cost": 2},
                                   "c": [{"spend": 1, "cost": 2}] * 2}


@pytest.mark.parametrize(("text", "line", "message"), [
    ("a:\n  b: 1\n  c: 2\n  b: 3\n", 4, "key 'b' appears twice (lines 2 and 4)"),
    ("a: {x: 1, x: 2}\n", 1, "key 'x' appears twice (line 1)"),
    ("- a\n" * 100_001, 100_001, "more than the limit of 100,000 values"),
    ("a: " + "[" * 51 + "]" * 51 + "\n", 1, "deeper than the limit of 50 levels"),
    ("x: &x [1]\n" + "".join(f"x{i}: &x{i} [*x{i - 1 if i else ''}]\n" for i in range(60)),
     50, "aliases nest deeper than the limit of 50 levels"),
])
def test_yaml_limits_name_the_line(text, line, message):
    with pytest.raises(safeyaml.LimitError, match=message.replace("(", r"\(").replace(")", r"\)")
                       ) as info:
        safeyaml.load(text)
    assert info.value.line == line


def test_limits_hold_at_their_edges():
    assert len(safeyaml.load("- a\n" * 99_999)) == 99_999  # plus the list itself: 100,000
    raw = load_scenario("tests/fixtures/minimal.yaml")
    assert validate_scenario(raw.model_dump(mode="json"), "x",
                             ["start_date=2000-01-01", "campaigns=[]", "targets={}"])
    assert validate_scenario(raw.model_dump(mode="json"), "x",
                             ["channels.sms.monthly_spend_cny=1000000000000"])


def test_overrides_copy_only_their_paths_and_leave_the_input_alone():
    raw = load_scenario("tests/fixtures/minimal.yaml").model_dump(mode="json")
    before = copy.deepcopy(raw)
    new, _ = apply_overrides(raw, ["channels.sms.funnel.click=0.5", "campaigns.0.days=9",
                                   "channels.sms.cost_per_contact_cny=1"])
    assert raw == before
    assert new["channels"]["sms"]["funnel"] == {"click": 0.5, "add": 0.2}
    assert new["campaigns"][0]["days"] == 9 and new["channels"]["sms"]["cost_per_contact_cny"] == 1
    assert new["lifecycle"] is raw["lifecycle"]  # untouched parts are shared, not copied
