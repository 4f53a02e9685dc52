"""The plan made again after a test: the chance-constrained plan over recombined draws.

A test informs one *block* of a draw set's parameters (:mod:`simdomain.planner.robust`):
``curve:<channel>`` (the channel's response curve and carry-over) or ``value`` (what an
add is worth: members, deletions, pool and GMV per add, so the lifecycle and the touch
effects). After the test, draw ``k`` takes the block from draw ``source[k]`` and keeps
the rest (see :mod:`simdomain.advise.preposterior`), and the plan is solved again with
:func:`~simdomain.planner.robust.solve_chance`. Whether the new plan meets the targets is
judged on the draws as they were, so it can be compared draw by draw with the truth.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simdomain.advise.preposterior import Decision, Posterior
from simdomain.planner.robust import DrawSet, RobustPlan, evaluate_draws, solve_chance

VALUE = "value"
"""The block of what an add is worth (lifecycle and touch effects)."""


def curve_block(channel: str) -> str:
    """The block name of a channel's response curve."""
    return f"curve:{channel}"


def recombine(draws: DrawSet, block: str, source: np.ndarray) -> DrawSet:
    """``draws`` with ``block`` of draw ``k`` taken from draw ``source[k]``."""
    source = np.asarray(source, dtype=int)
    if block == VALUE:
        return replace(draws, coef=draws.coef[source], constant=draws.constant[source],
                       den_coef=draws.den_coef[source], den_constant=draws.den_constant[source],
                       objective_coef=draws.objective_coef[source],
                       objective_constant=draws.objective_constant[source], _models={})
    kind, _, channel = block.partition(":")
    if kind != "curve" or channel not in draws.base.channels:
        raise ValueError(f"unknown block {block!r}")
    c = draws.base.channels.index(channel)
    curves = [list(row) for row in draws.curves]
    for k, s in enumerate(source):
        curves[k][c] = draws.curves[s][c]
    grid_adds = list(draws.grid_adds)
    grid_adds[c] = draws.grid_adds[c][source]
    carryover = draws.carryover.copy()
    carryover[:, c] = draws.carryover[source, c]
    return replace(draws, curves=curves, grid_adds=grid_adds, carryover=carryover, _models={})


def decision(draws: DrawSet, plan: RobustPlan) -> Decision:
    """A robust plan as a :class:`~simdomain.advise.preposterior.Decision` on ``draws``."""
    if not plan.optimal:
        return Decision(float("nan"), False, np.zeros(draws.size, dtype=bool))
    met = evaluate_draws(draws, plan.spend, plan.staff)["met"].all(axis=1)
    return Decision(float(plan.cost), True, met)


class ChanceReplan:
    """``replan(posterior)`` for one block of a draw set.

    Parameters
    ----------
    draws
        The draw set (its draws are the prior, in equal weights).
    block
        ``value`` or ``curve:<channel>``.
    level
        The chance ``P`` every target must be met with.
    method, time_limit
        As for :func:`~simdomain.planner.robust.solve_chance`.
    """

    def __init__(self, draws: DrawSet, block: str, level: float, *, method: str = "sets",
                 time_limit: float = 30.0) -> None:
        self.draws, self.block, self.level = draws, block, level
        self.method, self.time_limit = method, time_limit

    def plan(self, posterior: Posterior) -> RobustPlan:
        """The robust plan under ``posterior``."""
        draws = self.draws if posterior.source is None else recombine(
            self.draws, self.block, posterior.source)
        return solve_chance(draws, self.level, posterior.weights, method=self.method,
                            time_limit=self.time_limit)

    def __call__(self, posterior: Posterior) -> Decision:
        return decision(self.draws, self.plan(posterior))
