"""Intervals and sensitivity indices, against functions with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from simdomain.experiments.analysis import sensitivity, summarize
from simdomain.experiments.design import build_design
from simdomain.experiments.spec import ExperimentSpec


def spec(factors: list[dict[str, object]], design: dict[str, object]) -> ExperimentSpec:
    return ExperimentSpec.model_validate({
        "name": "f", "scenario": "s.yaml", "factors": factors, "design": design, "seed": 1,
        "outcomes": [{"name": "y", "kpi": "new_members"}]})


def runs_of(spec: ExperimentSpec, f: object) -> tuple[object, pd.DataFrame]:
    design = build_design(spec)
    table = design.table()
    x = table[[f.label for f in spec.factors]].to_numpy(dtype=float)
    return design, table.assign(replication=0, y=f(x), error=None)  # type: ignore[operator]


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def test_sobol_indices_of_ishigami() -> None:
    a, b = 7.0, 0.1
    variance = a**2 / 8 + b * np.pi**4 / 5 + b**2 * np.pi**8 / 18 + 0.5
    v1 = 0.5 * (1 + b * np.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * np.pi**8 * (1 / 18 - 1 / 50)
    expected_s1 = [v1 / variance, v2 / variance, 0.0]
    expected_st = [(v1 + v13) / variance, v2 / variance, v13 / variance]
    factors = [{"name": f"x{i}", "low": -np.pi, "high": np.pi} for i in (1, 2, 3)]
    experiment = spec(factors, {"kind": "sobol_sensitivity", "samples": 2048})
    design, runs = runs_of(experiment, ishigami)
    indices, notes = sensitivity(experiment, design, runs, ["y"])
    assert notes == []
    wide = indices.pivot(index="factor", columns="index", values="value")
    np.testing.assert_allclose(wide.loc[["x1", "x2", "x3"], "S1"], expected_s1, atol=0.04)
    np.testing.assert_allclose(wide.loc[["x1", "x2", "x3"], "ST"], expected_st, atol=0.04)
    assert indices["conf"].notna().all()


def test_morris_effects_of_a_linear_function() -> None:
    # y = 4 a + 1 b + 0 c with a in [0, 2]: an effect per whole range is 8, 1, 0
    factors = [{"name": "a", "low": 0, "high": 2}, {"name": "b", "low": 0, "high": 1},
               {"name": "c", "low": 0, "high": 1}]
    experiment = spec(factors, {"kind": "morris", "samples": 10})
    design, runs = runs_of(experiment, lambda x: 4 * x[:, 0] + x[:, 1])
    indices, _ = sensitivity(experiment, design, runs, ["y"])
    mu_star = indices[indices["index"] == "mu_star"].set_index("factor")["value"]
    np.testing.assert_allclose(mu_star[["a", "b", "c"]], [8.0, 1.0, 0.0], atol=1e-9)


def test_sensitivity_skips_outcomes_with_missing_runs() -> None:
    experiment = spec([{"name": "a", "low": 0, "high": 1}, {"name": "b", "low": 0, "high": 1}],
                      {"kind": "sobol_sensitivity", "samples": 8})
    design, runs = runs_of(experiment, lambda x: x[:, 0])
    runs.loc[3, "y"] = np.nan
    indices, notes = sensitivity(experiment, design, runs, ["y"])
    assert indices.empty
    assert notes == ["y: no sensitivity indices, 1 of 32 runs have no value (failed or undefined)"]


def test_summary_is_the_mean_and_t_interval_per_point() -> None:
    runs = pd.DataFrame({"run": [0, 0, 0, 1, 1, 2], "replication": [0, 1, 2, 0, 1, 0],
                         "f": [5, 5, 5, 6, 6, 7], "y": [1.0, 2.0, 4.0, 3.0, np.nan, 1.0]})
    table = summarize(runs, ["f"], ["y"])
    assert list(table.columns) == ["run", "f", "outcome", "n", "mean", "std", "ci_low", "ci_high"]
    first = table.iloc[0]
    half = stats.t.ppf(0.975, 2) * np.std([1, 2, 4], ddof=1) / np.sqrt(3)
    assert first["n"] == 3 and first["mean"] == pytest.approx(7 / 3)
    assert first["ci_low"] == pytest.approx(7 / 3 - half)
    assert first["ci_high"] == pytest.approx(7 / 3 + half)
    assert table["n"].tolist() == [3, 1, 1]  # a missing value is not counted
    assert table.iloc[1:][["ci_low", "ci_high"]].isna().all().all()  # n < 2: no interval
