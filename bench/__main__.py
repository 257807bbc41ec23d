"""Run the benchmark entries and rewrite BENCHMARKS.md.

python -m bench                 # quick mode, every entry
python -m bench --full          # the full-size experiments
python -m bench init-speed      # some entries only
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from pathlib import Path

from bench.common import load_average, machine

ENTRIES = [
    "bench.compare_vs_loop",
    "bench.compare_vs_numpy",
    "bench.single_model",
    "bench.gemm_efficiency",
    "bench.bf16",
    "bench.probe_overhead",
    "bench.init_speed",
    "bench.sweep_scaling",
    "bench.scaling",
    "bench.profile_trainer",
]
OUT = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
RULES = """\
How these figures are taken:

* Peers: training entries compare with plain PyTorch written two ways (`bench/peers.py`): the
  seed tutorial's (DataLoader, one model after another) and a lean loop (tensors preloaded,
  index batches, losses kept on the device). Both do initlab's work: the same initial
  weights, train loss every step, validation and test at the same steps, the same threads.
* Whole processes (imports, data, store included) and training-only times are both shown;
  runs are interleaved (A B A B, 3 rounds) and the median ratio is given with its min-max.
* Useful FLOPs (`bench/grid.py`): the matmuls only, 2·B·in·out forward and 4·B·in·out
  backward per layer (2·B·in·out for the first layer, which needs no input gradient).
* Load: the 1-minute load average counts the benchmark's own previous process, so a run is
  marked loaded when OTHER processes used more than 0.1 cores meanwhile (/proc/stat minus
  this process and its children). Loaded figures are noise.
"""


def load_entries():
    found = []
    for name in ENTRIES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    return found


KEEP = "<!-- kept by python -m bench: what follows is written by hand -->"


def _kept_notes() -> str:
    """The hand-written part of BENCHMARKS.md (from the :data:`KEEP` line on), which a
    rewrite keeps: analyses such as the bounds behind targets not met."""
    text = OUT.read_text() if OUT.exists() else ""
    return "\n" + text[text.index(KEEP) :] if KEEP in text else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*", help="entry names (default: all)")
    parser.add_argument("--full", action="store_true", help="full-size runs, not quick mode")
    parser.add_argument(
        "--full-for",
        default="",
        metavar="NAMES",
        help="comma-separated entries run in full mode, the others quick",
    )
    parser.add_argument("--no-write", action="store_true", help="do not rewrite BENCHMARKS.md")
    args = parser.parse_args(argv)
    entries = [m for m in load_entries() if not args.names or m.NAME in args.names]
    rows, sections = [], []
    load_before = load_average()
    full_for = {n.strip() for n in args.full_for.split(",") if n.strip()}
    modes = {}
    for module in entries:
        full = args.full or module.NAME in full_for
        modes[module.NAME] = "full" if full else "quick"
        print(f"== {module.NAME} ({modes[module.NAME]})", flush=True)
        try:
            r = module.run(quick=not full)
        except Exception:  # one broken entry must not hide the others
            traceback.print_exc()
            rows.append(f"| {module.NAME} | error | | | {module.TARGET} | see log |")
            continue
        status = "met" if r.met else "NOT met"
        print(
            f"   initlab {r.initlab:.4g}{r.unit}  baseline {r.baseline:.4g}{r.unit}  "
            f"ratio {r.ratio:.2f}  target {module.TARGET}: {status}",
            flush=True,
        )
        for note in r.notes:
            print(f"   {note}")
        sections += r.sections
        rows.append(
            f"| {module.NAME} ({modes[module.NAME]}) | {r.initlab:.4g} {r.unit} | {r.baseline:.4g} {r.unit} | "
            f"{r.ratio:.2f}x | {module.TARGET} ({status}) | {'; '.join(r.notes)} |"
        )
    if not args.no_write and not args.names:
        kept = _kept_notes()
        OUT.write_text(
            "# Benchmarks\n\n"
            f"Written by `python -m bench {' '.join(argv or sys.argv[1:])}` (each entry's mode is "
            "in its row). Ratios are "
            "measured side by side in one run; ratio > 1 favours initlab.\n\n"
            f"Machine: {machine()}\n\n{RULES}\n"
            f"Load average (1 min) {load_before} at the start, {load_average()} at the end: "
            "on a shared machine, other processes slow initlab's multi-threaded kernels most.\n\n"
            "| entry | initlab | baseline | ratio | target | notes |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows)
            + "\n"
            + "".join(f"\n{s}\n" for s in sections)
            + kept
        )
        print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
