"""Shared scenario builders and fixtures for the simulation tests.

Scenarios are built from plain dicts and validated with
:func:`simdomain.scenario.validate_scenario`, so every test scenario passes the same
checks as a user's file.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings

from simdomain.scenario import Scenario, load_scenario, validate_scenario

FIXTURES = Path(__file__).parent / "fixtures"

# Hypothesis: the default profile replays the same examples on every run (derandomized,
# no example database), so the suite is reproducible and fast; the "thorough" profile
# explores at random with more examples: SIMDOMAIN_HYPOTHESIS_PROFILE=thorough pytest
settings.register_profile(
    "default", max_examples=25, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", max_examples=200, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("SIMDOMAIN_HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true",
                     help="also run the slow statistical checks (marked slow)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow statistical checks run with ``--slow``; the rest is CI's fast subset."""
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow statistical check: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)

STAGES = ("fan", "customer", "member", "koc")

NO_TOUCHES: dict[str, Any] = {
    "one_to_one": {"per_week": 0},
    "group": {"posts_per_day": 0},
    "moments": {"posts_per_day": 0},
}
"""A touch policy that sends nothing (the schema's default sends 2 messages a week)."""


def zero_lifecycle(**rates: Any) -> dict[str, Any]:
    """Lifecycle rates that are all zero (deletion included) except ``rates``."""
    life: dict[str, Any] = {
        "first_order": 0.0, "repeat_order": 0.0, "join": 0.0, "koc": 0.0,
        "dormancy": 0.0, "wake": 0.0,
        "deletion": dict.fromkeys(STAGES, 0.0),
    }
    life.update(rates)
    return life


def scenario_dict(**fields: Any) -> dict[str, Any]:
    """A scenario mapping: one segment, no channels, no touches, no referral, all
    lifecycle rates zero, 30 days from 2026-01-01; ``fields`` replace top-level keys."""
    raw: dict[str, Any] = {
        "name": "test",
        "start_date": "2026-01-01",
        "horizon_days": 30,
        "segments": {"mass": {"share": 1.0, "order_value_cny": 100.0}},
        "touch_policy": copy.deepcopy(NO_TOUCHES),
        "lifecycle": zero_lifecycle(),
    }
    raw.update(copy.deepcopy(fields))
    return raw


def build(**fields: Any) -> Scenario:
    """:func:`scenario_dict` validated into a :class:`Scenario`."""
    return validate_scenario(scenario_dict(**fields))


def by_rep(daily: pd.DataFrame, column: str) -> np.ndarray:
    """``daily[column]`` as a (days, reps) array."""
    return daily.pivot(index="day", columns="rep", values=column).to_numpy(dtype=float)


@pytest.fixture(scope="session")
def minimal() -> Scenario:
    """The full-featured example scenario (channels, touches, referral, campaign)."""
    return load_scenario(FIXTURES / "minimal.yaml")
