"""The probe keeps O(layers x bins) numbers, never the activations: measured peak memory.

A subprocess builds a 50-layer, 1024-wide ReLU MLP and feeds a batch of 512. Its peak
resident memory (``VmHWM``) is read after plain forwards, after ``probe``, and after a
naive hook that stores every layer output (the thing the probe must not do; its growth also
shows the measurement sees activation-sized memory). Twice: with glibc's default heap (what a
user gets, fragmentation included) and with large blocks forced onto mmap
(``MALLOC_MMAP_THRESHOLD_``), where freed memory leaves the process at once and peak RSS
follows live bytes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, torch
    from torch import nn
    import initlab
    from initlab.probe import probe

    def peak():
        # VmHWM: this process's own peak RSS. Not getrusage's ru_maxrss, which Linux carries
        # over from the parent through fork + exec (pytest's own size would hide the growth).
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024  # KiB

    depth, width, batch = 50, 1024, 512
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), nn.ReLU()]
    model = nn.Sequential(*layers)
    initlab.init_(model, "he_normal", generator=torch.Generator().manual_seed(0))
    x = torch.randn(batch, width, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for _ in range(2):
            model(x)
    base = peak()
    report = probe(model, x)
    after_probe = peak()
    stored = []
    for m in model:
        m.register_forward_hook(lambda m, i, o: stored.append(o))
    with torch.no_grad():
        model(x)
    print(json.dumps({
        "probe_extra": after_probe - base,
        "naive_extra": peak() - after_probe,
        "all_activations": sum(t.numel() * t.element_size() for t in stored),
        "layers": len(report.layers),
    }))
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("allocator", ["default", "mmap"])
def test_probe_extra_peak_memory_under_a_quarter_of_all_activations(allocator):
    env = dict(os.environ)
    if allocator == "mmap":
        env["MALLOC_MMAP_THRESHOLD_"] = "65536"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    m = json.loads(done.stdout.strip().splitlines()[-1])
    mib = {k: v / 2**20 for k, v in m.items() if k != "layers"}
    print(f"{allocator}: probe extra {mib['probe_extra']:.1f} MiB, naive store {mib['naive_extra']:.1f} MiB, "
          f"all activations {mib['all_activations']:.1f} MiB")  # fmt: skip
    assert m["layers"] == 100
    assert m["all_activations"] == 100 * 512 * 1024 * 4
    # the measurement does see activation-sized memory ...
    assert m["naive_extra"] > 0.75 * m["all_activations"]
    # ... and the probe adds less than a quarter of it
    assert m["probe_extra"] < 0.25 * m["all_activations"]
