"""Touch policies handed to the engine (simdomain.sim.policy)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build

from simdomain.scenario.model import Scenario
from simdomain.sim.engine import run_replication
from simdomain.sim.policy import Policies
from simdomain.simulation import simulate

POOL = {"fan": 300, "customer": 200}


def messaged(horizon_days: int = 14) -> Scenario:
    """1:1 messages every day to everyone, nothing else happening."""
    return build(horizon_days=horizon_days, initial_pool=POOL,
                 touch_policy={"one_to_one": {"per_week": 7}, "group": {"posts_per_day": 0},
                               "moments": {"posts_per_day": 0}})


def test_a_selector_chooses_among_the_eligible_and_sees_one_view():
    """Each 1:1 day the selector gets the eligible mask and the same view; only the
    people it returns (and eligible) are messaged."""
    calls = []

    def even_fans(view, eligible):
        calls.append((view, len(view.daily_rows), int(eligible.sum())))
        chosen = np.zeros(view.pop.n, dtype=bool)
        chosen[::2] = True
        return chosen & (view.pop.stage == 0)

    scenario = messaged()
    result = simulate(scenario, seed=1, policies=Policies(one_to_one=even_fans))
    assert [day for _, day, _ in calls] == list(range(14))
    assert len({id(view) for view, _, _ in calls}) == 1
    assert all(eligible == 500 for _, _, eligible in calls)
    touches = result.agents["touches_one_to_one"].to_numpy()
    expected = np.zeros(500, dtype=int)  # the initial pool joins fans first; no one moves
    expected[:300:2] = 14
    assert (touches == expected).all()


def test_without_a_selector_everyone_eligible_is_messaged_as_before():
    scenario = messaged(7)
    plain = simulate(scenario, seed=3)
    handed = simulate(scenario, seed=3, policies=Policies())
    assert (plain.agents["touches_one_to_one"] == 7).all()
    assert plain.daily.equals(handed.daily)


def test_the_engine_asks_for_the_targeting_policy_it_cannot_build(tmp_path):
    raw = messaged().model_dump(mode="json")
    raw["touch_policy"]["one_to_one"]["targeting"] = {"model": str(tmp_path)}
    scenario = Scenario.model_validate(raw)
    with pytest.raises(ValueError, match="needs a 1:1 policy"):
        run_replication(scenario, np.random.SeedSequence(0))
