"""The channel budget planner: the cheapest monthly channel plan that hits the targets.

Stages: response curves per channel (:mod:`~simdomain.planner.curves`), what one add
is worth month by month (:mod:`~simdomain.planner.cohorts`), the problem as arrays
(:mod:`~simdomain.planner.problem`), the mixed-integer program and its explanations
(:mod:`~simdomain.planner.milp`, the only module that imports PuLP), verification by
simulation (:mod:`~simdomain.planner.verify`) and exports
(:mod:`~simdomain.planner.export`). Plans over a twin's parameter draws: the draws as
problems and the chance-constrained plan (:mod:`~simdomain.planner.robust`), its sparse
model (:mod:`~simdomain.planner.drawmodel`), and ``plan --chance``
(:mod:`~simdomain.planner.chance`).
"""

from simdomain.planner.planning import PlanResult, plan, prepare
from simdomain.planner.problem import PlanOptions
from simdomain.planner.robust import DrawSet, RobustPlan, draw_set, solve_chance
from simdomain.planner.verify import Confidence, Verification, plan_with_confidence, verify

__all__ = ["Confidence", "DrawSet", "PlanOptions", "PlanResult", "RobustPlan", "Verification",
           "draw_set", "plan", "plan_with_confidence", "prepare", "solve_chance", "verify"]
