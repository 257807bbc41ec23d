"""The HTML report: plots and pages built from a results store alone (no torch imports)."""

from initlab.report.render import render_comparison, render_report

__all__ = ["render_comparison", "render_report"]
