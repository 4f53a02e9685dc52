"""What an add is worth: the exact Markov-chain expectation against the simulation.

Members, deletions and GMV of each channel's adds, and of the initial pool, per month:
the chain (given the simulated adds per channel and month) must match the simulated
means within 4.5 standard errors plus 3% (touches enter the chain as their mean)."""

from __future__ import annotations

import numpy as np
import pytest
from planner_cases import small

from simdomain.planner.cohorts import cohorts
from simdomain.simulation import simulate

REPS = 12


@pytest.fixture(scope="module")
def run():
    scenario = small(horizon_days=120)
    table = cohorts(scenario, months_after=0)
    result = simulate(scenario, seed=11, reps=REPS, keep_agents=True)
    return scenario, table, result


def _by_rep(agents, day_column, month_of, months, where):
    counts = np.zeros((REPS, months))
    sub = agents[where & (agents[day_column] >= 0)]
    np.add.at(counts, (sub["rep"].to_numpy(), month_of[sub[day_column].to_numpy()]), 1)
    return counts


def _close(predicted, simulated):
    mean, se = simulated.mean(axis=0), simulated.std(axis=0, ddof=1) / np.sqrt(REPS)
    assert np.all(np.abs(predicted - mean) <= 4.5 * se + 0.03 * np.abs(mean) + 2), (predicted, mean)


def test_channel_cohorts_match_the_simulation(run):
    scenario, table, result = run
    agents = result.agents
    month_of = table.calendar.month
    months = scenario.months
    for c, name in enumerate(table.channels):
        mine = (agents["source"] == name).to_numpy()
        adds = _by_rep(agents, "join_day", month_of, months, mine).mean(axis=0)
        members = _by_rep(agents, "member_day", month_of, months, mine)
        deletions = _by_rep(agents, "deletion_day", month_of, months, mine)
        _close(adds @ table.members[c][:, :months], members)
        _close(adds @ table.deletions[c][:, :months], deletions)
        gmv = agents[mine].groupby("rep")["gmv_cny"].sum().to_numpy()[:, None]
        _close(np.array([adds @ table.gmv[c][:, -1]]), gmv)


def test_initial_pool_matches_the_simulation(run):
    scenario, table, result = run
    agents = result.agents
    initial = (agents["source"] == "initial").to_numpy()
    months = scenario.months
    _close(table.base_members[:months],
           _by_rep(agents, "member_day", table.calendar.month, months, initial))
    pool = result.daily.groupby("rep")["pool"].last().to_numpy()  # everyone: pool at the end
    assert table.initial_size == scenario.initial_pool.total
    assert 0 < table.base_alive[-1] < table.initial_size < pool.mean()


def test_members_within_window_counts_the_right_months(run):
    _, table, _ = run
    within0, within9 = table.members_within(0), table.members_within(9)
    assert np.all(within0 <= within9 + 1e-12)
    assert within9 == pytest.approx(table.members.sum(axis=2))
    assert within0[:, 1] == pytest.approx(table.members[:, 1, 1])
