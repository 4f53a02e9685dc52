"""Synthetic brand data bundles with known truth: from the engine or from independent
order processes, optionally with the dirt of real exports."""
