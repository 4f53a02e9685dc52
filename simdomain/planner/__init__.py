"""The channel budget planner: the cheapest monthly channel plan that hits the targets.

Stages: response curves per channel (:mod:`~simdomain.planner.curves`), what one add
is worth month by month (:mod:`~simdomain.planner.cohorts`), the problem as arrays
(:mod:`~simdomain.planner.problem`), the mixed-integer program and its explanations
(:mod:`~simdomain.planner.milp`, the only module that imports PuLP), verification by
simulation (:mod:`~simdomain.planner.verify`) and exports
(:mod:`~simdomain.planner.export`).
"""

from simdomain.planner.planning import PlanResult, plan, prepare
from simdomain.planner.problem import PlanOptions
from simdomain.planner.verify import Confidence, Verification, plan_with_confidence, verify

__all__ = ["Confidence", "PlanOptions", "PlanResult", "Verification", "plan",
           "plan_with_confidence", "prepare", "verify"]
