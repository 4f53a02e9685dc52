"""Scenarios and fixtures shared by the ``test_models_*`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, build

from simdomain.scenario import Scenario, load_scenario

SEGMENTS = {
    "mass": {"share": 0.7, "order_value_cny": 80.0},
    "premium": {"share": 0.3, "order_value_cny": 200.0,
                "propensity": {"join": 1.5, "deletion": 0.7}},
}


def stationary(horizon_days: int = 240, **fields: Any) -> Scenario:
    """Two channels with different audiences and deletion, no campaigns, no touches,
    no referral: every day's cohort of adds faces the same rates."""
    per_month = 1800.0  # 60 adds a day per channel
    raw: dict[str, Any] = {
        "name": "stationary", "horizon_days": horizon_days, "segments": SEGMENTS,
        "channels": {
            "cards": {"monthly_spend_cny": per_month, "cost_per_contact_cny": 1.0,
                      "funnel": {"add": 1.0}, "deletion_multiplier": 2.0,
                      "audience": {"mass": 0.9, "premium": 0.1}},
            "calls": {"monthly_spend_cny": per_month, "cost_per_contact_cny": 1.0,
                      "funnel": {"add": 1.0}, "audience": {"mass": 0.3, "premium": 0.7}},
        },
        "lifecycle": {"first_order": 0.02, "new_user_days": 3, "new_user_multiplier": 3,
                      "repeat_order": 0.01, "member_order_multiplier": 2, "join": 0.01,
                      "koc": 0.002, "dormancy": 0.02, "wake": 0.02, "dormant_multiplier": 0.1,
                      "deletion": {"fan": 0.003, "customer": 0.002, "member": 0.001,
                                   "koc": 0.0005}},
    }
    raw.update(fields)
    return build(**raw)


def busy(horizon_days: int = 150, **fields: Any) -> Scenario:
    """The minimal fixture's mechanisms (touches, referral, a campaign) over a longer
    horizon, for panels with every label."""
    raw = load_scenario(FIXTURES / "minimal.yaml").model_dump(mode="json")
    raw.update(horizon_days=horizon_days, targets={}, budget={})
    raw.update(fields)
    return Scenario.model_validate(raw)


@pytest.fixture(scope="session")
def fitted_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder written by ``simdomain fit`` on :func:`busy` (both estimators)."""
    from simdomain.models.outputs import write_simulation_fit
    from simdomain.models.pipeline import fit_simulation

    fit = fit_simulation(busy(), seed=3, reps=2, days=[40, 60, 80])
    out = tmp_path_factory.mktemp("fitted")
    write_simulation_fit(fit, out)
    return out
