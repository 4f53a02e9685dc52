"""simdomain: simulate and plan a brand's private domain.

Consumers move fan -> customer -> member -> KOC under the touches they get; channels
bring them in at a cost; the engine says how the north-star targets fare.

The names below load on first use, so ``import simdomain`` (and the command's start,
where Ctrl-C must be caught) stays quick.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing's: importing typing costs time at the command's start
if TYPE_CHECKING:
    from typing import Any

    from simdomain.errors import InputError
    from simdomain.experiments.store import load_results
    from simdomain.scenario import Scenario, load_scenario
    from simdomain.simulation import SimulationResult, simulate

__version__ = "0.1.0"

_LAZY = {"InputError": "simdomain.errors", "load_results": "simdomain.experiments.store",
         "Scenario": "simdomain.scenario", "load_scenario": "simdomain.scenario",
         "SimulationResult": "simdomain.simulation", "simulate": "simdomain.simulation"}

__all__ = ["InputError", "Scenario", "SimulationResult", "__version__", "load_results",
           "load_scenario", "simulate"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'simdomain' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
