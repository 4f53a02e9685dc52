"""The compact state layout: narrow dtypes where values fit, read back as the wide ones."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build, zero_lifecycle

from simdomain.sim.engine import run_replication
from simdomain.sim.population import NEVER, NEVER16, NOBODY, InitialPeople, Population
from simdomain.sim.world import World


@pytest.mark.parametrize("oldest", [-400, -40_000], ids=["int16 days", "int32 days"])
def test_known_days_round_trip_through_the_agents_frame(oldest):
    """Days of known people (NEVER included) come back as given, whether the run holds
    them in int16 (within 32,767 days of the start) or in int32 (older ones)."""
    n = 6
    people = InitialPeople(
        stage=np.array([1, 1, 2, 3, 0, 1]), segment=np.zeros(n, int),
        source=np.array(["initial"] * n), join_day=np.array([oldest, -5, -6, -7, -1, -2]),
        first_order_day=np.array([oldest, -4, -5, -6, NEVER, -2]),
        last_order_day=np.array([-3, -2, -1, -1, NEVER, -2]),
        member_day=np.array([NEVER, NEVER, -3, -4, NEVER, NEVER]),
        koc_day=np.array([NEVER, NEVER, NEVER, -2, NEVER, np.nan]))
    scenario = build(horizon_days=3, lifecycle=zero_lifecycle())
    world = World(scenario, np.random.SeedSequence(1), initial=people)
    narrow = oldest > -(2**15)
    assert (world.pop._arrays["member_day"].dtype == np.int16) == narrow
    agents = run_replication(scenario, np.random.SeedSequence(1), initial=people).agents
    for name in ("join_day", "first_order_day", "last_order_day", "member_day"):
        np.testing.assert_array_equal(agents[name], getattr(people, name))
        assert agents[name].dtype == np.int32
    np.testing.assert_array_equal(agents["koc_day"], [NEVER] * 3 + [-2] + [NEVER] * 2)


def test_population_reads_true_values_of_what_it_stores_otherwise():
    pop = Population(8, multipliers=(), narrow={"koc_day": np.int16})
    pop.add(3, day=0, segment=np.zeros(3, int), source=0, in_group=np.ones(3, bool))
    pop.put("koc_day", np.array([0, 2]), [NEVER, 5])
    assert list(pop.stored("koc_day")) == [NEVER16, NEVER16, 5]
    assert list(pop.koc_day) == [NEVER, NEVER, 5]
    pop.engagement = np.array([0.5, 2.0, 1.0], dtype=np.float32)
    for _ in range(70):  # 70 halvings: the stored values are rescaled on the way
        pop.decay("engagement", 0.5)
    np.testing.assert_allclose(pop.engagement, np.array([0.5, 2.0, 1.0]) * 2.0**-70, rtol=1e-6)
    assert 2.0 * 2.0**-70 <= pop.largest("engagement") <= 2.0 * 2.0**-70 * (1 + 1e-5)
    assert (pop.order_multiplier == 1).all()  # not kept: 1 for everyone


def test_referrers_are_stored_from_the_first_referred_person_on():
    """The people before the first referred one take no memory for referrers and read
    :data:`NOBODY`; the rest read as given, through growth of the arrays too."""
    pop = Population(4, multipliers=())
    people = {"segment": np.zeros(3, int), "source": 0, "in_group": np.zeros(3, bool)}
    pop.add(3, day=-1, **people)
    assert "referrer" not in pop._arrays
    pop.add(3, day=0, referrer=np.array([0, NOBODY, 2]), **people)
    pop.add(3, day=1, **people)  # grows the arrays (capacity 4)
    pop.add(3, day=2, referrer=np.array([5, 6, 7]), **people)
    assert len(pop._arrays["referrer"]) == pop.capacity - 3
    np.testing.assert_array_equal(pop.referrer, [NOBODY] * 3 + [0, NOBODY, 2] + [NOBODY] * 3
                                  + [5, 6, 7])
    with pytest.raises(AttributeError):
        pop.referrer = np.zeros(12, int)
