"""The compact state layout: narrow dtypes where values fit, read back as the wide ones."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build, zero_lifecycle

from simdomain.sim.engine import run_replication, seed_initial_people
from simdomain.sim.population import NEVER, NEVER16, NOBODY, InitialPeople, Population
from simdomain.sim.steps import _rewards
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


@pytest.mark.parametrize(("horizon", "per_week", "dtype"), [
    (365, 2, np.uint8),  # at most 2 x 53 = 106 messages
    (255, 7, np.uint8),  # one a day, 255 days
    (256, 7, np.int16),  # one a day, 256 days: one too many for uint8
])
def test_one_to_one_counter_is_narrow_when_the_policy_cannot_overflow_it(horizon, per_week,
                                                                        dtype):
    scenario = build(horizon_days=horizon, lifecycle=zero_lifecycle(),
                     touch_policy={"one_to_one": {"per_week": per_week}})
    world = World(scenario, np.random.SeedSequence(1))
    assert world.pop._arrays["touches_one_to_one"].dtype == dtype


def test_invites_widen_when_a_referrer_outgrows_uint16():
    """Invites are held in uint16 until a referrer's count would pass 65,535; then the
    field is widened, with every count (and the tier gifts) as if it had been int32."""
    scenario = build(horizon_days=3, lifecycle=zero_lifecycle(), referral={
        "addressable_market": 1000, "external_rate": 0.0,
        "word_of_mouth": {"member": 0.1}, "reward_tiers": [{"invites": 65_536, "gift_cny": 9}]})
    world = World(scenario, np.random.SeedSequence(1))
    world.join(np.zeros(3, dtype=np.int16), source=world.layout.initial, day=-1,
               rng=np.random.default_rng(0), stage=2)
    pop = world.pop
    assert pop.invites.dtype == np.uint16
    pop.invites[:] = [65_530, 7, 0]
    assert _rewards(world, np.array([0, 1, 2, 1])) == 0  # 65,531: still fits
    assert pop.invites.dtype == np.uint16
    assert _rewards(world, np.array([0] * 5 + [2])) == 9  # 65,536 passes the tier
    assert pop.invites.dtype == np.int32
    np.testing.assert_array_equal(pop.invites, [65_536, 9, 2])
    pop.add(2, day=0, segment=np.zeros(2, int), source=0, in_group=np.zeros(2, bool))
    np.testing.assert_array_equal(pop.invites, [65_536, 9, 2, 0, 0])  # new slots: 0


def test_segment_source_and_dormancy_are_read_from_the_key():
    """The state key encodes a person's source, segment, stage and dormancy, so the
    first, second and last are not stored: they read back as joined, follow moves, and
    cannot be set behind the key's back."""
    scenario = build(horizon_days=3, lifecycle=zero_lifecycle(), segments={
        "mass": {"share": 0.5, "order_value_cny": 100.0},
        "premium": {"share": 0.5, "order_value_cny": 300.0}})
    world = World(scenario, np.random.SeedSequence(1))
    pop, layout = world.pop, world.layout
    assert not {"segment", "source", "dormant"} & set(pop._arrays)
    world.join(np.array([1, 0, 1]), source=layout.organic, day=0,
               rng=np.random.default_rng(0), stage=np.array([0, 2, 3]),
               dormant=np.array([False, True, False]))
    world.join(np.array([0]), source=layout.referral, day=1, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(pop.segment, [1, 0, 1, 0])
    np.testing.assert_array_equal(pop.source, [layout.organic] * 3 + [layout.referral])
    np.testing.assert_array_equal(pop.dormant, [False, True, False, False])
    world.move(np.array([1, 2]), dormant=np.array([False, True]))
    world.move(np.array([0]), stage=1)
    np.testing.assert_array_equal(pop.dormant, [False, False, True, False])
    np.testing.assert_array_equal(pop.at("dormant", np.array([2, 3])), [True, False])
    np.testing.assert_array_equal(pop.segment, [1, 0, 1, 0])  # moves keep the rest
    np.testing.assert_array_equal(pop.stage, [1, 2, 3, 0])
    with pytest.raises(AttributeError, match="key"):
        pop.dormant = np.zeros(4, bool)


def test_reading_some_people_gives_what_reading_everyone_gives():
    """``pop.at(name, index)`` is ``pop.<name>[index]`` for every field, however stored."""
    scenario = build(horizon_days=3, lifecycle=zero_lifecycle())
    people = InitialPeople(
        stage=np.array([1, 0, 2, 3]), segment=np.zeros(4, int),
        source=np.array(["initial"] * 4), join_day=np.array([-9, -5, -4, -2]),
        last_order_day=np.array([-3, NEVER, -1, -2]), dormant=np.array([True, False, False, True]))
    world = World(scenario, np.random.SeedSequence(1), initial=people)
    seed_initial_people(world, people)
    pop = world.pop
    pop.put("engagement", slice(None), [0.5, 1.5, 0.0, 2.0])
    pop.decay("engagement", 0.5)
    index = np.array([3, 0, 2])
    for name in ("segment", "source", "dormant", "engagement", "last_order_day", "stage",
                 "referrer", "orders"):
        np.testing.assert_array_equal(pop.at(name, index), getattr(pop, name)[index],
                                      err_msg=name)
