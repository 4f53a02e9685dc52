"""Experiment files: validation, checks against the base scenario, expressions."""

from __future__ import annotations

from pathlib import Path

import pytest

from simdomain.errors import InputError
from simdomain.experiments import expr, load_experiment
from simdomain.experiments.spec import ExperimentSpec

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"


def messages(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_experiment(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("path", sorted((ROOT / "experiments").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_shipped_experiments_load(path: Path) -> None:
    experiment = load_experiment(path)
    assert experiment.spec.name == path.stem
    assert experiment.measures


def test_tiny_resolves_against_its_scenario() -> None:
    experiment = load_experiment(FIXTURES / "experiment_tiny.yaml")
    assert experiment.scenario.horizon_days == 40  # `set` applied
    assert experiment.factor_names == ["touch_policy.one_to_one.per_week", "sms_budget"]
    # months: each expands to one outcome per month of the horizon
    assert experiment.outcome_names[-2:] == ["gmv_2026_01", "gmv_2026_02"]
    files = experiment.resolved_files()
    assert set(files) == {"experiment.resolved.yaml", "scenario.resolved.yaml"}


def test_bad_paths_are_located_with_suggestions() -> None:
    source = str(FIXTURES / "wrong_experiment_path.yaml")
    assert messages(FIXTURES / "wrong_experiment_path.yaml") == [
        (f"{source}: factors -> 0 -> path: touch_policy -> one_to_one has no 'per_wek'; "
         "did you mean 'per_week'?"),
        (f"{source}: derived -> channels.smss.monthly_spend_cny: channels has no 'smss'; "
         "did you mean 'sms'?"),
        f"{source}: outcomes -> 0 -> channel: unknown channel 'sns'; did you mean 'sms'?",
    ]


def test_unknown_keys_and_values_are_all_reported() -> None:
    found = "\n".join(messages(FIXTURES / "wrong_experiment_keys.yaml"))
    assert "factor: unknown field 'factor'; did you mean 'factors'?" in found
    assert "factors: Field required" in found
    assert "design -> samples: must be a power of 2 for Sobol points, got 100" in found
    assert "outcomes -> 0 -> kpi: unknown KPI; did you mean 'new_members'?" in found


def spec(**fields: object) -> ExperimentSpec:
    raw = {"name": "x", "scenario": "s.yaml", "factors": [{"path": "lifecycle.join",
                                                           "low": 0.0, "high": 0.1}],
           "outcomes": [{"name": "m", "kpi": "new_members"}],
           "design": {"kind": "latin_hypercube", "samples": 4}}
    return ExperimentSpec.model_validate({**raw, **fields})


@pytest.mark.parametrize(("fields", "message"), [
    ({"factors": [{"path": "a.b", "values": [1], "low": 0}]}, "give values or a range"),
    ({"factors": [{"path": "a.b", "low": 1, "high": 1}]}, "must be above low"),
    ({"factors": [{"path": "a.b", "low": 0.5, "high": 3, "integer": True}]}, "whole ends"),
    ({"factors": [{"path": "a.b", "low": 0, "high": 1}], "design": {"kind": "grid"}},
     "a range in a grid needs levels"),
    ({"factors": [{"path": "a.b", "values": [1, 2]}],
      "design": {"kind": "morris", "samples": 4}}, "a morris design needs a range"),
    ({"factors": [{"name": "run", "values": [1]}], "design": {"kind": "grid"}}, "reserved"),
    ({"derived": {"a.b": "2 * jion"}, "factors": [{"name": "join", "low": 0, "high": 1}]},
     "'jion' is not a named factor; did you mean 'join'?"),
    ({"derived": {"a.b": "open('x')"}}, "may be called"),
    ({"outcomes": [{"name": "m", "kpi": "pool_size", "channel": "sms"}]},
     "not reported per channel"),
    ({"outcomes": [{"name": "m", "target": "gmv", "kpi": "gmv_cny"}]}, "exactly one of"),
    ({"design": {"kind": "grid", "samples": 3}}, "remove samples"),
])
def test_spec_rules(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        spec(**fields)


def test_months_outside_the_horizon(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(f"name: e\nscenario: {FIXTURES / 'minimal.yaml'}\n"
                    "factors: [{path: lifecycle.join, values: [0.01]}]\n"
                    "outcomes: [{name: m, kpi: new_members, months: 2026-01..2027-01},\n"
                    "           {name: t, target: gmv}]\n")
    found = [p.split(": ", 1)[1] for p in messages(path)]
    assert found == ["outcomes -> 0 -> months: 2027-01 is outside the horizon 2026-01..2026-03"]


def test_expressions_are_arithmetic_only() -> None:
    tree = expr.parse("362500 * (1 - a - b) + max(a, 2) ** 2")
    assert expr.names(tree) == {"a", "b"}
    assert expr.evaluate(tree, {"a": 0.25, "b": 0.5}) == pytest.approx(362500 * 0.25 + 4)
    for text in ["__import__('os')", "a.real", "[1, 2]", "a if b else 1", "lambda: 1", "'x'"]:
        with pytest.raises(ValueError):
            expr.parse(text)
    with pytest.raises(ValueError, match="divides by zero"):
        expr.evaluate(expr.parse("1 / a"), {"a": 0})
