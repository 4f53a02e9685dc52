"""A ``tests`` file with known effects: each arm of each designed test simulated by the
engine.

A test runs over the last :data:`TEST_DAYS` days of the history (ending two days before
its end, so the data covers it). Each arm is its own seeded replication of the
scenario's lifecycle for the arm's people only: ``people`` people of the arm's stage,
new to touches (no engagement or fatigue yet), no channel adds, referral or campaigns,
touched by the scenario's touch policy with the test's lever at the arm's level (in a
group test everyone in the arm is in the groups). The arm's orders, joins (new members)
and deletions over the test's days are its counts. The true effects are the scenario's
touch policy, written to ``truth.json`` under ``tests``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from simdomain.scenario.io import validate_scenario
from simdomain.scenario.model import Scenario
from simdomain.synth.people import Window

TEST_DAYS = 28
ARM_PEOPLE = 3000


@dataclass(frozen=True)
class DesignSpec:
    """A test to synthesise: its lever, kind (a touch kind or a content label) and levels."""

    test_id: str
    lever: str
    kind: str
    levels: tuple[float, ...]
    stage: str = "customer"


def default_specs(scenario: Scenario) -> list[DesignSpec]:
    """A 1:1 frequency test (0/2/4 a week), a group posts test (0/1/3 a day) and, when the
    group posts have two contents or more, a content-mix test of the first (10% against
    90% of the posts)."""
    specs = [DesignSpec("one_to_one_frequency", "touch_frequency", "one_to_one", (0, 2, 4)),
             DesignSpec("group_frequency", "touch_frequency", "group", (0, 1, 3))]
    content = scenario.touch_policy.group.content
    if len(content) >= 2 and scenario.touch_policy.group.posts_per_day > 0:
        specs.append(DesignSpec("group_content", "content_mix", next(iter(content)),
                              (0.1, 0.9)))
    return specs


def arm_scenario(scenario: Scenario, spec: DesignSpec, level: float, start: dt.date,
                 days: int, people: int) -> Scenario:
    """The scenario of one arm: its people only, at the arm's level of the lever."""
    raw = scenario.model_dump(mode="json", exclude_none=True)
    raw.update(name=f"{scenario.name} test {spec.test_id}", start_date=start.isoformat(),
               horizon_days=days, channels={}, campaigns=[], targets={},
               initial_pool={spec.stage: people})
    for key in ("referral", "population"):
        raw.pop(key, None)
    policy = raw["touch_policy"]
    if spec.lever == "touch_frequency" and spec.kind == "one_to_one":
        policy["one_to_one"].update(per_week=int(level), weekdays=None)
    elif spec.lever == "touch_frequency":
        policy[spec.kind]["posts_per_day"] = int(level)
    else:
        content = policy["group"]["content"]
        others = sum(c["share"] for k, c in content.items() if k != spec.kind)
        for k, c in content.items():
            c["share"] = level if k == spec.kind else c["share"] * (1 - level) / others
    if spec.kind == "group" or spec.lever == "content_mix":
        policy["group"]["share_in_groups"] = 1.0
    return validate_scenario(raw, raw["name"])


def synth_tests(scenario: Scenario, window: Window, seed: np.random.SeedSequence, *,
                specs: list[DesignSpec] | None = None, people: int = ARM_PEOPLE,
                days: int = TEST_DAYS) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The tests file's rows (one per arm) and the truth to record.

    Each arm is one replication of :func:`arm_scenario` from its own stream of ``seed``.
    """
    from simdomain.sim.engine import run_replication  # the simulation loads only if used

    specs = default_specs(scenario) if specs is None else specs
    end = window.as_of - dt.timedelta(days=2)
    start = end - dt.timedelta(days=days - 1)
    rows = []
    streams = seed.spawn(sum(len(s.levels) for s in specs))
    for spec in specs:
        for i, level in enumerate(spec.levels):
            arm = arm_scenario(scenario, spec, level, start, days, people)
            daily = run_replication(arm, streams.pop(0), keep_agents=False).daily
            rows.append({"test_id": spec.test_id, "arm": f"arm_{i + 1}", "lever": spec.lever,
                         "kind": spec.kind, "level": level, "start": start.isoformat(),
                         "end": end.isoformat(), "people": people, "adds": "",
                         "orders": int(daily["orders"].sum()),
                         "deletions": int(daily["deletions"].sum()),
                         "joins": int(daily["new_members"].sum()), "stage": spec.stage,
                         "control": i == 0, "settled": False})
    policy = scenario.touch_policy.model_dump(mode="json", exclude_none=True)
    truth = {"designs": [{"test_id": s.test_id, "lever": s.lever, "kind": s.kind,
                          "levels": list(s.levels), "stage": s.stage} for s in specs],
             "people_per_arm": people, "days": days, "touch_policy": policy,
             "generator": "engine: one replication per arm, people new to touches"}
    return pd.DataFrame(rows), truth
