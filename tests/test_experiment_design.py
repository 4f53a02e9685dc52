"""Design points and seeds: grids, samplers, mapping from the unit cube."""

from __future__ import annotations

import numpy as np
import pytest

from simdomain.experiments.design import build_design, run_seed
from simdomain.experiments.spec import ExperimentSpec


def spec(factors: list[dict[str, object]], design: dict[str, object],
         seed: int = 3) -> ExperimentSpec:
    return ExperimentSpec.model_validate({
        "name": "d", "scenario": "s.yaml", "factors": factors, "design": design,
        "seed": seed, "outcomes": [{"name": "m", "kpi": "new_members"}]})


def test_grid_is_the_full_product_first_factor_slowest() -> None:
    design = build_design(spec([{"path": "a.x", "values": [1, 2]},
                                {"name": "y", "low": 0, "high": 1, "levels": 3},
                                {"name": "k", "low": 1, "high": 4, "integer": True, "levels": 4}],
                               {"kind": "grid"}))
    assert len(design) == 2 * 3 * 4
    assert design.values[0] == {"a.x": 1, "y": 0.0, "k": 1}
    assert design.values[4] == {"a.x": 1, "y": 0.5, "k": 1}
    assert design.values[-1] == {"a.x": 2, "y": 1.0, "k": 4}
    table = design.table()
    assert list(table.columns) == ["run", "seed", "a.x", "y", "k"]
    assert [str(t) for t in table.dtypes] == ["int64", "int64", "int64", "float64", "int64"]


@pytest.mark.parametrize(("low", "high", "levels"), [(1, 4, 3), (1, 4, 4), (0, 9, 7), (0, 3, 50),
                                                     (0, 3, 10**12)])
def test_integer_grid_counts_whole_numbers_without_building_every_level(
        low: int, high: int, levels: int) -> None:
    factor = {"name": "k", "low": low, "high": high, "integer": True, "levels": levels}
    experiment = spec([factor], {"kind": "grid"})
    points = build_design(experiment)
    assert len(points) == experiment.runs == min(levels, high - low + 1)
    assert points.values[0]["k"] == low and points.values[-1]["k"] == high


def test_size_limits_are_checked_before_building() -> None:
    wide = [{"name": f"f{i}", "low": 0, "high": 1, "levels": 10**4} for i in range(2)]
    grid = spec(wide, {"kind": "grid"})
    assert grid.runs == 10**8
    assert "100,000,000 runs; the limit is 1,000,000" in (grid.size_problem() or "")
    assert "100,000,000 runs; the limit is 1,000,000" in (grid.size_problem(force=True) or "")
    with pytest.raises(ValueError, match="the limit is"):
        build_design(grid)
    lhs = spec([{"name": "a", "low": 0, "high": 1}], {"kind": "latin_hypercube", "samples": 10**9})
    assert "1,000,000,000 runs" in (lhs.size_problem(force=True) or "")
    big = spec([{"name": "a", "low": 0, "high": 1}], {"kind": "latin_hypercube", "samples": 2000})
    big = big.model_copy(update={"replications": 100})
    assert "200,000 simulations; the limit is 100,000 (pass --force" in (big.size_problem() or "")
    assert big.size_problem(force=True) is None


def test_latin_hypercube_puts_one_point_in_each_stratum() -> None:
    n = 16
    design = build_design(spec([{"name": "x", "low": 10, "high": 20},
                                {"name": "k", "low": 0, "high": 15, "integer": True},
                                {"name": "v", "values": ["a", "b", "c", "d"]}],
                               {"kind": "latin_hypercube", "samples": n}))
    x = np.array([v["x"] for v in design.values])
    assert sorted(np.floor((x - 10) / 10 * n).astype(int)) == list(range(n))
    assert sorted(v["k"] for v in design.values) == list(range(16))  # every whole number once
    assert sorted(v["v"] for v in design.values) == sorted("abcd" * 4)


@pytest.mark.parametrize(("design", "runs"), [
    ({"kind": "sobol_sequence", "samples": 8}, 8),
    ({"kind": "sobol_sensitivity", "samples": 8}, 8 * (3 + 2)),
    ({"kind": "sobol_sensitivity", "samples": 8, "second_order": True}, 8 * (2 * 3 + 2)),
    ({"kind": "morris", "samples": 5}, 5 * (3 + 1)),
])
def test_sampler_sizes_and_ranges(design: dict[str, object], runs: int) -> None:
    factors = [{"name": "a", "low": -1, "high": 1}, {"name": "b", "low": 0, "high": 10},
               {"name": "c", "low": 2, "high": 5, "integer": True}]
    points = build_design(spec(factors, design))
    assert len(points) == runs == spec(factors, design).runs
    table = points.table()
    assert table["a"].between(-1, 1).all() and table["b"].between(0, 10).all()
    assert set(table["c"]) <= {2, 3, 4, 5}
    sensitivity = design["kind"] in ("sobol_sensitivity", "morris")
    assert (points.unit is not None) == sensitivity


def test_designs_and_seeds_are_reproducible() -> None:
    factors = [{"name": "a", "low": 0, "high": 1}]
    first = build_design(spec(factors, {"kind": "latin_hypercube", "samples": 8}))
    again = build_design(spec(factors, {"kind": "latin_hypercube", "samples": 8}))
    other = build_design(spec(factors, {"kind": "latin_hypercube", "samples": 8}, seed=4))
    assert first.values == again.values and first.seeds == again.seeds
    assert first.values != other.values
    # a run's seed depends on the experiment seed and its index only
    bigger = build_design(spec(factors, {"kind": "latin_hypercube", "samples": 16}))
    assert bigger.seeds[:8] == first.seeds == [run_seed(3, i) for i in range(8)]
    assert len(set(bigger.seeds)) == 16 and all(0 <= s < 2**63 for s in bigger.seeds)
