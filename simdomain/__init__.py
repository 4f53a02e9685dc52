"""simdomain: simulate and plan a brand's private domain.

Consumers move fan -> customer -> member -> KOC under the touches they get; channels
bring them in at a cost; the engine says how the north-star targets fare.
"""

from simdomain.errors import InputError
from simdomain.experiments.store import load_results
from simdomain.scenario import Scenario, load_scenario
from simdomain.simulation import SimulationResult, simulate

__version__ = "0.1.0"

__all__ = ["InputError", "Scenario", "SimulationResult", "__version__", "load_results",
           "load_scenario", "simulate"]
