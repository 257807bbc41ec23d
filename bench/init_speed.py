"""init-speed: ``init_(model, "he_normal")`` of a big MLP vs a loop over kaiming_normal_.

Each side runs in its own subprocess so peak memory (VmHWM) is its own. Target: no slower,
and peak extra memory no more than the largest layer.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.common import Result

NAME = "init-speed"
TARGET = ">= 1.0x speed, extra peak <= largest layer"

_SCRIPT = r"""
import json, sys, time, torch
from torch import nn
import initlab

side, width, depth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024

with torch.device("meta"):
    model = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])
model = model.to_empty(device="cpu")
for p in model.parameters():
    p.data.zero_()  # touch every page so the model itself is in the baseline
before = status("VmRSS")
g = torch.Generator().manual_seed(0)
init_ = initlab.init_  # initlab loads its submodules on first use: not init work
t0 = time.perf_counter()
if side == "initlab":
    init_(model, "he_normal", generator=g)
else:
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=g)
            nn.init.zeros_(m.bias)
elapsed = time.perf_counter() - t0
print(json.dumps({"time": elapsed, "extra": status("VmHWM") - before}))
"""


def _side(side: str, width: int, depth: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, side, str(width), str(depth)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool = True) -> Result:
    width, depth = (3000, 5) if quick else (5000, 10)  # 45M or 250M parameters
    repeat = 3 if quick else 2
    ours = min((_side("initlab", width, depth) for _ in range(repeat)), key=lambda r: r["time"])
    base = min((_side("torch", width, depth) for _ in range(repeat)), key=lambda r: r["time"])
    largest = width * width * 4
    ratio = base["time"] / ours["time"]
    notes = [
        f"{width * width * depth / 1e6:.0f}M params fp32",
        f"extra peak: initlab {ours['extra'] / 2**20:.0f} MiB, loop {base['extra'] / 2**20:.0f} MiB, "
        f"largest layer {largest / 2**20:.0f} MiB",
    ]
    met = ratio >= 0.95 and ours["extra"] <= largest * 1.1
    return Result(ours["time"], base["time"], ratio, met, notes=notes)
