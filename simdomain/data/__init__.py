"""A brand's own data: the bundle's column contract, loading, checking and cleaning.

The bottom of the pipeline: imports nothing from simdomain but ``errors`` and ``textio``.
"""

from simdomain.data.bundle import Bundle, load_bundle
from simdomain.data.columns import TABLES
from simdomain.data.report import CleaningReport

__all__ = ["TABLES", "Bundle", "CleaningReport", "load_bundle"]
