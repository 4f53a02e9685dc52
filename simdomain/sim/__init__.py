"""The agent-based engine: a population in numpy arrays stepped by SimPy processes."""
