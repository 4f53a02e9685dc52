"""Scenario files: typed models, loading, overrides and error messages."""

from simdomain.scenario.io import dump_scenario, load_scenario, read_yaml, validate_scenario
from simdomain.scenario.model import STAGES, Channel, Scenario

__all__ = [
    "STAGES",
    "Channel",
    "Scenario",
    "dump_scenario",
    "load_scenario",
    "read_yaml",
    "validate_scenario",
]
