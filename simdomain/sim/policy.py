"""How policies reach the engine: callables handed in, never modules it imports.

A touch policy that needs more than the scenario's numbers (a fitted model that scores
people, say) is built above the engine and passed to
:func:`simdomain.sim.engine.run_replication` in a :class:`Policies`. The engine calls it
with a :class:`PolicyView` of the replication, which a policy reads and never writes.
:mod:`simdomain.models.targeting` builds the targeted 1:1 policy this way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simdomain.scenario.model import Scenario
from simdomain.sim.population import Population
from simdomain.sim.rates import Layout


class PolicyView(Protocol):
    """What a policy may read of one replication (the engine's ``World`` is one).

    The same object is passed on every call within a replication, so a policy may key
    its own per-replication memory on it (weakly). Policies must not change it.
    """

    @property
    def scenario(self) -> Scenario:
        """The scenario being simulated."""

    @property
    def layout(self) -> Layout:
        """Names of the segment and source codes in ``pop``."""

    @property
    def pop(self) -> Population:
        """Everyone's state as numpy arrays (``pop.n`` people)."""

    @property
    def daily_rows(self) -> Sequence[tuple[float, ...]]:
        """One row per finished day, so ``len(daily_rows)`` is today's day number."""


TouchSelector = Callable[[PolicyView, np.ndarray], np.ndarray]
"""``select(view, eligible) -> chosen``: boolean masks over ``view.pop``.

``eligible`` marks whom the scenario's uniform policy would message today; the engine
messages ``eligible & chosen``."""


@dataclass(frozen=True)
class Policies:
    """The policies a replication runs with, beyond what its scenario spells out.

    Attributes
    ----------
    one_to_one
        Chooses who gets each 1:1 day's messages among the eligible; ``None`` messages
        all of them. Required when the scenario's ``touch_policy.one_to_one.targeting``
        is set.
    """

    one_to_one: TouchSelector | None = None

    def check(self, scenario: Scenario) -> None:
        """Raise ``ValueError`` if ``scenario`` asks for a policy that is missing."""
        if scenario.touch_policy.one_to_one.targeting is not None and self.one_to_one is None:
            raise ValueError(
                "the scenario's touch_policy -> one_to_one -> targeting needs a 1:1 policy; "
                "pass policies=simdomain.models.targeting.policies_for(scenario)")


NO_POLICIES = Policies()
"""Only what the scenario spells out."""
