"""Scenario files: valid ones load, every kind of bad input is named precisely."""

import math
import re
from pathlib import Path

import pytest
import yaml

from simdomain.errors import InputError
from simdomain.scenario import load_scenario

FIXTURES = Path(__file__).parent / "fixtures"
SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))


def problems(path, overrides=()):
    with pytest.raises(InputError) as caught:
        load_scenario(path, overrides)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_are_valid(path):
    scenario = load_scenario(path)
    assert scenario.name == path.stem


def test_shipped_scenarios_are_all_there():
    names = {p.stem for p in SCENARIOS}
    assert {"social_ecommerce", "new_retail_o2o", "dtc", "annual_pool"} <= names


def numeric_lines(node):
    """Line numbers (0-based) of every number in a composed YAML document."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag.endswith((":int", ":float")):
            yield node.start_mark.line
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from numeric_lines(item)
    elif isinstance(node, yaml.MappingNode):
        for _, value in node.value:
            yield from numeric_lines(value)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_number_in_shipped_scenarios_cites_a_source(path):
    """Each number's line carries a comment naming a seed file or saying it is an assumption."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    uncited = []
    for line in sorted(set(numeric_lines(yaml.compose(text)))):
        comment = lines[line].partition("#")[2]
        if not re.search(r"\d{3}_[0-9a-f]{16}\.txt|assumption", comment):
            uncited.append(f"{path.name}:{line + 1}: {lines[line].strip()}")
    assert not uncited, "\n".join(uncited)


def test_invalid_yaml_names_line_and_column():
    [message] = problems(FIXTURES / "wrong_yaml.yaml")
    assert message.startswith(str(FIXTURES / "wrong_yaml.yaml") + ": invalid YAML at line 4")


def test_unknown_key_suggests_the_right_one():
    found = problems(FIXTURES / "wrong_unknown_key.yaml")
    assert any("segmnets: unknown field 'segmnets'; did you mean 'segments'?" in p for p in found)


def test_wrong_types_quote_the_value():
    found = problems(FIXTURES / "wrong_types.yaml")
    assert any(p.endswith("(got 'not-a-date')") and ": start_date: " in p for p in found)
    assert any(": horizon_days: " in p and "'thirty'" in p for p in found)


def test_out_of_range_values_each_named_with_their_path():
    found = problems(FIXTURES / "wrong_values.yaml")
    expected = [
        "horizon_days: Input should be greater than 0 (got 0)",
        "segments -> premium -> order_value_cny: Input should be greater than 0 (got -5)",
        "channels -> sms -> monthly_spend_cny: Input should be greater than or equal to 0",
        "channels -> sms -> funnel -> click: Input should be less than or equal to 1 (got 1.5)",
        "budget -> monthly_cny: Input should be greater than or equal to 0 (got -1)",
    ]
    for text in expected:
        assert any(text in p for p in found), (text, found)
    assert len(found) == len(expected)


def test_shares_must_sum_to_one():
    [message] = problems(FIXTURES / "wrong_shares.yaml")
    assert message.endswith("segments: segment shares must sum to 1, got 0.8")


def test_campaign_naming_unknown_channel():
    [message] = problems(FIXTURES / "wrong_campaign_channel.yaml")
    assert "campaigns -> 0 -> channels: unknown channels ['tv']; known: ['sms']" in message


def test_missing_file_empty_file_and_non_mapping(tmp_path):
    [message] = problems(FIXTURES / "absent.yaml")
    assert "cannot read the file" in message
    (tmp_path / "empty.yaml").write_text("")
    [message] = problems(tmp_path / "empty.yaml")
    assert message.endswith("expected a mapping of fields, got nothing (empty file)")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    [message] = problems(tmp_path / "list.yaml")
    assert message.endswith("expected a mapping of fields, got a list")


MINIMAL = FIXTURES / "minimal.yaml"


def test_override_sets_a_nested_field():
    scenario = load_scenario(MINIMAL, ["touch_policy.one_to_one.per_week=3",
                                       "touch_policy.one_to_one.weekdays=[0, 2, 4]",
                                       "campaigns.0.days=7"])
    assert scenario.touch_policy.one_to_one.per_week == 3
    assert scenario.campaigns[0].days == 7


@pytest.mark.parametrize("override, expected", [
    ("lifecycle.join=1.5", "--set lifecycle.join=1.5: lifecycle -> join: Input should be less"),
    ("channels.sms.monthly_spnd=3", "did you mean 'monthly_spend_cny'?"),
    ("horizon_days=0", "horizon_days: Input should be greater than 0"),
    ("campaigns.5.days=2", "--set: campaigns -> 5 -> days: no such place to set"),
    ("justtext", "--set: expected path=value, got 'justtext'"),
])
def test_bad_overrides_are_named(override, expected):
    [message] = problems(MINIMAL, [override])
    assert expected in message


def test_targets_must_fall_within_the_horizon():
    [message] = problems(MINIMAL, ["targets.pool_size=[{date: 2030-01-01, size: 5}]"])
    assert "targets -> pool_size -> 0 -> date: 2030-01-01 is outside the horizon" in message


def test_monthly_spend_list_must_cover_the_horizon():
    [message] = problems(MINIMAL, ["channels.sms.monthly_spend_cny=[1, 2]"])
    assert "channels -> sms -> monthly_spend_cny: lists 2 months but the horizon spans 3" in message


def test_expected_monthly_adds_follow_the_funnel_and_saturation():
    scenario = load_scenario(MINIMAL, ["channels.sms.saturation_contacts=null",
                                       "channels.sms.max_contacts_per_month=null"])
    # 10,000 yuan / 0.05 = 200,000 contacts x 0.03 x 0.2 = 1,200 adds; the audience's mean
    # add propensity is 1 (no segment sets one).
    assert scenario.expected_monthly_adds("sms", 10_000) == pytest.approx(1_200)
    capped = load_scenario(MINIMAL)  # capacity 300,000 contacts, saturation scale 500,000
    assert capped.expected_monthly_adds("sms", 10_000) == pytest.approx(
        0.006 * 500_000 * (1 - math.exp(-200_000 / 500_000)))
    assert capped.expected_monthly_adds("sms", 1e9) == pytest.approx(
        0.006 * 500_000 * (1 - math.exp(-300_000 / 500_000)))
