"""``make demo``: the seed experiments in a few minutes on 2 cores, bundled data only.

1. The classic init comparison (MNIST, 784-100x4-10 ReLU, SGD lr 0.01) for N(0, 0.01),
   sqrt(1/n) and He, 2 seeds, a short run.
2. The activation-histogram grid (sigmoid, tanh, ReLU x four weight scales) in the same run
   folder, so one report holds curves, the summary table and the histograms.
3. The short (``--quick``) version of every other demo preset (``initlab run --list``), each
   into ``runs/demo/NAME`` with its own report.

Ends by printing the path of the main HTML report.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from initlab.cli.progress import progress_bar
from initlab.cli.tables import print_any_result, print_comparison
from initlab.experiments.compare import compare
from initlab.experiments.presets import presets, run_preset
from initlab.probe.experiment import histogram_grid
from initlab.report.render import render_report
from initlab.results.store import Store


def main(out: str = "runs/demo") -> Path:
    """Run the three demo parts into ``out`` and return the path of the main HTML report."""
    console = Console()
    folder = Path(out)
    console.print("[bold]1/3[/] classic comparison: MNIST 784-100x4-10 ReLU, SGD lr 0.01")
    with progress_bar("training 3 inits x 2 seeds") as bar:
        result = compare(
            out=folder, progress=bar, report=False, name="initlab demo", dataset="mnist",
            arch="mlp:100x4", activation="relu", inits="normal:std=0.01,lecun_normal,he_normal",
            seeds=2, optimizer="sgd", lr=0.01, batch_size=128, steps=600, eval_every=200,
        )  # fmt: skip
    print_comparison(result, console)
    console.print("[bold]2/3[/] activation histograms: 5 x 100 layers, 1,000 N(0,1) inputs")
    runs = histogram_grid(
        ["normal:std=1", "normal:std=0.01", "lecun_normal", "he_normal"],
        ["sigmoid", "tanh", "relu"],
    )
    with Store.open(folder) as store:
        if not store.probes():
            store.put_probes(runs)
        store.put_meta(
            "diagnosis",
            [f"{r.activation} / {r.init}: {f.message}" for r in runs for f in r.probe.findings],
        )
    report = render_report(folder)
    _other_presets(folder, console)
    console.print(f"report: {report.resolve()}")
    return report


# Already in the main page: the classic comparison (1) and the histogram grid (2).
IN_MAIN_PAGE = ("saito-init-compare", "activation-histograms")


def _other_presets(folder: Path, console: Console) -> None:
    others = [p for p in presets() if p.in_demo and p.name not in IN_MAIN_PAGE]
    for i, p in enumerate(others, start=1):
        console.print(f"[bold]3.{i}/{len(others)}[/] preset {p.name} (quick): {p.summary}")
        with progress_bar(f"preset {p.name}") as bar:
            result = run_preset(p.name, folder / p.name, quick=True, progress=bar)
        print_any_result(result, console)


if __name__ == "__main__":
    main(*sys.argv[1:2])
