"""profile: where a step of the stacked trainer spends its time (torch.profiler, CPU).

The classic grid (25 models, 784-100x4-10 ReLU, batch 128, SGD): the profiler runs over
steps 6..55 only (started and stopped from ``on_step``, so setup and the final evaluation
are left out); the table is its top operators by self CPU time, put into BENCHMARKS.md.
"""

from __future__ import annotations

from bench.common import Result, StepWindow
from bench.grid import ARCH, BATCH, FLOPS_PER_STEP, INITS, LR, SEEDS

NAME = "profile"
TARGET = "report (top operators of a step)"
STEPS, SKIP, TOP = 50, 5, 12


def _train(data, steps: int, on_step=None) -> None:
    from initlab.train import Member, train_members

    members = [Member(i, s) for i in INITS for s in range(SEEDS)]
    train_members(members, data=data, arch=ARCH, activation="relu", optimizer="sgd", lr=LR,
                  batch_size=BATCH, steps=steps, eval_every=None, target_loss=0.5,
                  on_step=on_step)  # fmt: skip


def measure() -> tuple[list[tuple[str, float, int]], float]:
    """(name, self ms per step, calls per step) of the top operators, and ms per step."""
    from torch.profiler import ProfilerActivity, profile

    from initlab.data import load

    data = load("mnist")
    last = SKIP + STEPS
    timed = StepWindow(SKIP, last)
    _train(data, last + 1, timed)
    per_step = timed.per_step * 1e3
    prof = profile(activities=[ProfilerActivity.CPU])

    def window(step: int, total: int) -> None:
        if step == SKIP:
            prof.start()
        elif step == last:
            prof.stop()

    _train(data, last + 1, window)
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    top = [(e.key, e.self_cpu_time_total / 1e3 / STEPS, round(e.count / STEPS)) for e in rows]
    return top[:TOP], per_step


def run(quick: bool = True) -> Result:
    """Entry for ``python -m bench`` (the same in both modes)."""
    top, per_step = measure()
    total = sum(ms for _, ms, _ in top)
    lines = ["| operator | self ms per step | calls per step |", "|---|---|---|"]
    lines += [f"| `{name}` | {ms:.2f} | {calls} |" for name, ms, calls in top]
    gflops = FLOPS_PER_STEP * len(INITS) * SEEDS / per_step / 1e6
    section = (f"## Profile of a stacked step\n\n25 models, {STEPS} steps (no setup, no "
               f"evaluation); unprofiled {per_step:.1f} ms per step, "
               f"{gflops:.1f} useful GFLOP/s. Top {TOP} operators by self CPU time:\n\n"
               + "\n".join(lines))  # fmt: skip
    notes = [f"{per_step:.1f} ms per step; the top {TOP} operators take {total:.1f} ms of it "
             "(profiled)"]  # fmt: skip
    return Result(per_step, total, 1.0, True, unit="ms", notes=notes, sections=[section])
