"""compare-vs-loop: the classic MNIST grid (5 inits x 5 seeds), initlab vs two plain peers.

* initlab: ``initlab compare`` as a user runs it (one process: imports, data, the stacked
  trainer, the SQLite store and its checkpoints; no report page).
* dataloader: the seed tutorial's loop (``bench.peers``), one model after another.
* lean: tensors preloaded, index batches, losses kept on the device (``bench.peers``).

The three do the same work: 784-100x4-10 ReLU, batch 128, SGD lr 0.01, ``steps`` steps,
train loss every step, validation and test every ``EVAL_EVERY`` steps, the same initial
weights and thread count. Every process is timed whole; each also reports its training-only
time (initlab: the stack's wall time in the store; peers: their training loops).

Runs are interleaved (initlab, dataloader, lean, then again), ``PAIRS`` rounds; the ratios
are the median over rounds with their min-max. The 1-minute load average is printed before
and after each process, but it counts the benchmark's own previous process too, so what
marks a run "loaded" is the CPU that other processes used meanwhile
(:class:`bench.common.OtherLoad`, more than 0.1 cores on average).

    python bench/compare_vs_loop.py [--quick] [--pairs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import OtherLoad, load_average

NAME = "compare-vs-loop"
TARGET = ">= 5x dataloader, >= 3x lean (whole processes)"

INITS = ("normal:std=0.01", "lecun_normal", "xavier_normal", "he_normal", "orthogonal")
SEEDS, THREADS, EVAL_EVERY, PAIRS = 5, 2, 500, 3
ROOT = Path(__file__).resolve().parents[1]


def _timed(cmd: list[str]) -> tuple[float, str, tuple[float, float, float]]:
    """Wall seconds, stdout, and (load average before, after, other processes' cores)."""
    before = float(load_average())
    with OtherLoad() as others:
        started = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed: {done.stderr.strip()[-500:]}")
    return seconds, done.stdout, (before, float(load_average()), others.cores)


def initlab_run(steps: int, seeds: int) -> dict:
    """``initlab compare`` in its own process; whole, training-only and accuracies."""
    from initlab.results.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "initlab", "compare", "--dataset", "mnist",
               "--arch", "mlp:100x4", "--activation", "relu", "--inits", ",".join(INITS),
               "--seeds", str(seeds), "--optimizer", "sgd", "--lr", "0.01",
               "--batch-size", "128", "--steps", str(steps), "--eval-every", str(EVAL_EVERY),
               "--threads", str(THREADS), "--no-report", "--out", str(out)]  # fmt: skip
        whole, _, load = _timed(cmd)
        with Store.open(out, create=False) as store:
            runs = store.runs()
        accs: dict[str, list[float]] = {}
        for r in runs:
            accs.setdefault(r.config.init, []).append(r.test_accuracy)
        train = sum({r.wall_time for r in runs})  # one value per stack
    return {"whole_s": whole, "train_s": train, "test_acc": accs, "load": load}


def peer_run(peer: str, steps: int, seeds: int) -> dict:
    """A plain peer (``bench.peers``) in its own process."""
    cmd = [sys.executable, "-m", "bench.peers", peer, "--inits", ",".join(INITS),
           "--seeds", str(seeds), "--steps", str(steps), "--eval-every", str(EVAL_EVERY),
           "--threads", str(THREADS)]  # fmt: skip
    whole, stdout, load = _timed(cmd)
    result = json.loads(stdout.strip().splitlines()[-1])
    return {"whole_s": whole, **result, "load": load}


def _canonical_accs(accs: dict[str, list[float]]) -> dict[str, float]:
    import initlab

    return {initlab.get(k).to_spec(): statistics.mean(v) for k, v in accs.items()}


def measure(quick: bool = False, pairs: int = PAIRS) -> dict:
    """Interleaved rounds of the three processes; medians, spreads, accuracies, loads."""
    steps, seeds = (200, SEEDS) if quick else (2000, SEEDS)
    rounds = []
    for i in range(pairs):
        r = {"initlab": initlab_run(steps, seeds)}
        for peer in ("dataloader", "lean"):
            r[peer] = peer_run(peer, steps, seeds)
        rounds.append(r)
        line = ", ".join(f"{k} {v['whole_s']:.1f} s (train {v['train_s']:.1f} s, load avg "
                         f"{v['load'][0]:.2f}-{v['load'][1]:.2f}, others {v['load'][2]:.2f} cores)"
                         for k, v in r.items())  # fmt: skip
        print(f"  round {i + 1}: {line}", flush=True)
    ratios = {}
    for peer in ("dataloader", "lean"):
        for kind in ("whole_s", "train_s"):
            xs = [r[peer][kind] / r["initlab"][kind] for r in rounds]
            ratios[f"{peer}_{kind}"] = (statistics.median(xs), min(xs), max(xs))
    accs = {side: _canonical_accs(rounds[-1][side]["test_acc"]) for side in rounds[-1]}
    loaded = [f"round {i + 1} {side} ({v['load'][2]:.2f} cores)" for i, r in enumerate(rounds)
              for side, v in r.items() if v["load"][2] > OtherLoad.LOADED]  # fmt: skip
    return {"steps": steps, "seeds": seeds, "rounds": rounds, "ratios": ratios,
            "accs": accs, "loaded": loaded}  # fmt: skip


def summary_lines(m: dict) -> list[str]:
    """The ratios, accuracy gaps and load notes, as the table's notes."""
    r = m["ratios"]
    fmt = "{0:.2f}x ({1:.2f}-{2:.2f})".format
    lines = [
        f"{len(INITS)} inits x {m['seeds']} seeds x {m['steps']} steps, {THREADS} threads, "
        f"{len(m['rounds'])} interleaved rounds, median (min-max)",
        f"whole process: vs dataloader {fmt(*r['dataloader_whole_s'])}, vs lean "
        f"{fmt(*r['lean_whole_s'])}",
        f"training only: vs dataloader {fmt(*r['dataloader_train_s'])}, vs lean "
        f"{fmt(*r['lean_train_s'])}",
    ]
    ours, lean = m["accs"]["initlab"], m["accs"]["lean"]
    gaps = {k: 100 * (ours[k] - lean[k]) for k in ours}
    lines.append(
        "test acc initlab - lean (pt): " + ", ".join(f"{k} {v:+.2f}" for k, v in gaps.items())
    )
    loads = [v["load"] for r in m["rounds"] for v in r.values()]
    lines.append(f"1-min load average {min(x[0] for x in loads):.2f}-{max(x[1] for x in loads):.2f} "
                 "(includes this benchmark's own processes)")  # fmt: skip
    lines.append("loaded (others > 0.1 cores): " + (", ".join(m["loaded"]) or "none"))
    return lines


def run(quick: bool = True):
    """Entry for ``python -m bench``."""
    from bench.common import Result

    m = measure(quick)
    med = [statistics.median(r[s]["whole_s"] for r in m["rounds"]) for s in ("initlab", "lean")]
    dl, lean = m["ratios"]["dataloader_whole_s"][0], m["ratios"]["lean_whole_s"][0]
    return Result(med[0], med[1], lean, dl >= 5 and lean >= 3, notes=summary_lines(m))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 steps instead of 2,000")
    parser.add_argument("--pairs", type=int, default=PAIRS, help="interleaved rounds")
    args = parser.parse_args()
    for line in summary_lines(measure(args.quick, args.pairs)):
        print(line)


if __name__ == "__main__":
    main()
