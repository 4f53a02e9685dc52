"""Reports a strategist can share: one self-contained HTML file per output folder."""

from simdomain.report.html import build_report

__all__ = ["build_report"]
