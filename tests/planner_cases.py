"""Small planning scenarios shared by the planner tests."""

from __future__ import annotations

import copy
from typing import Any

from simdomain.scenario import Scenario, validate_scenario

STAGES = ("fan", "customer", "member", "koc")

SMALL: dict[str, Any] = {
    "name": "small_plan",
    "start_date": "2026-01-01",
    "horizon_days": 90,
    "initial_pool": {"fan": 1500, "customer": 600, "member": 400, "koc": 20},
    "segments": {
        "mass": {"share": 0.7, "order_value_cny": 80.0},
        "premium": {"share": 0.3, "order_value_cny": 200.0,
                    "propensity": {"add": 1.5, "join": 1.4, "deletion": 0.8}},
    },
    "channels": {
        "cards": {  # stable and cheap, capped
            "monthly_spend_cny": 3000, "cost_per_contact_cny": 0.3,
            "funnel": {"scan": 0.1}, "max_contacts_per_month": 10000,
            "saturation_contacts": 40000,
            "staff": {"accounts": 1, "adds_per_account_per_day": 60,
                      "monthly_cost_per_account_cny": 1500},
            "deletion_multiplier": 2.0,
        },
        "sms": {  # paid, saturating
            "monthly_spend_cny": 20000, "cost_per_contact_cny": 0.05,
            "funnel": {"click": 0.03, "add": 0.5}, "max_contacts_per_month": 800000,
            "saturation_contacts": 600000,
            "staff": {"accounts": 1, "adds_per_account_per_day": 60,
                      "monthly_cost_per_account_cny": 1500},
        },
        "feeds": {  # paid, a straight line with a fixed cost and a minimum spend
            "monthly_spend_cny": 10000, "cost_per_contact_cny": 0.04,
            "funnel": {"click": 0.02, "add": 0.3}, "fixed_cost_cny": 2000,
            "min_spend_cny": 5000, "max_spend_cny": 60000,
            "audience": {"mass": 0.9, "premium": 0.1},
        },
    },
    "touch_policy": {"one_to_one": {"per_week": 1, "uplift": 0.1, "fatigue": 0.05},
                     "group": {"posts_per_day": 0}, "moments": {"posts_per_day": 0}},
    "lifecycle": {
        "first_order": 0.01, "new_user_days": 3, "new_user_multiplier": 4.0,
        "repeat_order": 0.004, "join": 0.01, "koc": 0.0005,
        "dormancy": 0.005, "wake": 0.002,
        "deletion": {"fan": 0.002, "customer": 0.001, "member": 0.0005, "koc": 0.0002},
    },
    "targets": {"monthly_new_adds": 2500, "monthly_new_members": 800,
                "max_monthly_deletion_rate": 0.08},
    "budget": {"monthly_cny": 60000, "total_cny": 150000},
}


def small_dict(**changes: Any) -> dict[str, Any]:
    """A copy of :data:`SMALL` with top-level keys replaced."""
    raw = copy.deepcopy(SMALL)
    raw.update(copy.deepcopy(changes))
    return raw


def small(**changes: Any) -> Scenario:
    return validate_scenario(small_dict(**changes), "<small_plan>")
