"""``initlab criticality``: the mean-field phase diagram of an activation, as HTML and JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from initlab.errors import ConfigError

FACTORS = (0.5, 0.8, 0.9, 0.95, 0.99, 1.01, 1.05, 1.1, 1.2, 1.5)  # x the critical sigma_w^2


def _range(text: str, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(t) for t in text.split(","))
    except ValueError:
        lo = hi = float("nan")
    if not (0 <= lo < hi and math.isfinite(hi)):
        raise ConfigError(f"Bad {name} {text!r}: give LO,HI with 0 <= LO < HI, e.g. 0.5,4.")
    return lo, hi


@click.command("criticality")
@click.option("--activation", default="tanh", show_default=True, help="Activation spec.")
@click.option("--sigma-b2", default=0.05, show_default=True, type=float,
              help="Bias variance for the recommended sigma_w.")  # fmt: skip
@click.option("--sigma-w2-range", default="0.5,4", show_default=True, help="LO,HI of sigma_w^2.")
@click.option("--sigma-b2-range", default="0,0.3", show_default=True, help="LO,HI of sigma_b^2.")
@click.option("--grid", default=24, show_default=True, type=int, help="Cells per axis.")
@click.option("--out", "out_dir", default="runs/criticality", show_default=True,
              type=click.Path(file_okay=False), help="Folder for criticality.html and .json.")  # fmt: skip
def criticality(activation, sigma_b2, sigma_w2_range, sigma_b2_range, grid, out_dir) -> None:
    """Phase diagram (ordered / chaotic, critical line, xi_c), the critical sigma_w for
    --sigma-b2 and the predicted trainable depth ~ 6 xi_c (Schoenholz et al. 2017)."""
    # lazy: numpy/torch numerics and matplotlib, kept out of CLI startup (initlab --help)
    import numpy as np

    from initlab.report.criticality_page import PAGE, phase_figure, write_page
    from initlab.theory import critical_point, phase_diagram, xi_c

    if not 2 <= grid <= 200:
        raise ConfigError(f"--grid must be between 2 and 200, got {grid}.")
    if sigma_b2 < 0:
        raise ConfigError(f"--sigma-b2 must be a variance >= 0, got {sigma_b2}.")
    w_lo, w_hi = _range(sigma_w2_range, "--sigma-w2-range")
    b_lo, b_hi = _range(sigma_b2_range, "--sigma-b2-range")
    point = critical_point(activation, sigma_b2=sigma_b2)
    diagram = phase_diagram(activation, np.linspace(max(w_lo, 1e-3), w_hi, grid),
                            np.linspace(b_lo, b_hi, grid))  # fmt: skip
    sw2s = [f * point.sigma_w2 for f in FACTORS]
    xis = [float(x) for x in xi_c(point.activation, sw2s, sigma_b2)]
    depth_rows = [[f"{f:g}", f"{s:.4g}", f"{x:.3g}", f"{6 * x:.0f}"]
                  for f, s, x in zip(FACTORS, sw2s, xis, strict=True)]  # fmt: skip
    result = {
        "activation": point.activation,
        "sigma_b2": sigma_b2,
        "critical_sigma_w2": point.sigma_w2,
        "recommended_sigma_w": math.sqrt(point.sigma_w2),
        "q_star": point.q_star if math.isfinite(point.q_star) else None,
        "trainable_depth": [
            {"sigma_w2": s, "xi_c": x, "six_xi_c": 6 * x} for s, x in zip(sw2s, xis, strict=True)
        ],  # fmt: skip
        "phase_diagram": diagram,
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "criticality.json").write_text(json.dumps(result, indent=1) + "\n")
    summary = [
        ("activation", point.activation),
        ("sigma_b^2", f"{sigma_b2:g}"),
        ("critical sigma_w^2 (chi_1 = 1)", f"{point.sigma_w2:.5g}"),
        ("recommended sigma_w", f"{math.sqrt(point.sigma_w2):.5g}"),
        ("q*", f"{point.q_star:.4g}"),
        ("predicted trainable depth", "~ 6 xi_c: unbounded at the critical point (mean field); "
         "finite width and finite sigma_w^2 offsets limit it (table)"),
    ]  # fmt: skip
    page = write_page(
        out / PAGE, f"Edge of chaos: {point.activation}", summary,
        [("xi_c over the phase diagram; white: the critical line", phase_figure(diagram, (point.sigma_w2, sigma_b2)))],
        [("Trainable depth ~ 6 xi_c near the critical point", ["x sigma_w^2*", "sigma_w^2", "xi_c", "6 xi_c"], depth_rows)],
    )  # fmt: skip
    console = Console()
    console.print(f"[bold]{escape(point.activation)}[/] at sigma_b^2 = {sigma_b2:g}: critical "
                  f"sigma_w^2 = {point.sigma_w2:.5g} (sigma_w = {math.sqrt(point.sigma_w2):.5g}), "
                  f"q* = {point.q_star:.4g}")  # fmt: skip
    for row in depth_rows:
        console.print(f"  sigma_w^2 = {row[1]:>8} ({row[0]} x critical): xi_c = {row[2]:>6}, "
                      f"trainable depth ~ 6 xi_c = {row[3]}")  # fmt: skip
    console.print(f"wrote {escape(str(page))} and criticality.json")


COMMANDS = [criticality]
