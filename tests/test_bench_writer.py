"""BENCHMARKS.md's rewrite keeps the hand-written part below the marker line."""

from __future__ import annotations

import bench.__main__ as bench_main


def test_rewrite_keeps_the_hand_written_part(tmp_path, monkeypatch):
    out = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(bench_main, "OUT", out)
    assert bench_main._kept_notes() == ""  # no file yet
    out.write_text(f"# Benchmarks\n\n| old table |\n\n{bench_main.KEEP}\n\n## Bounds\n\ntext\n")
    kept = bench_main._kept_notes()
    assert kept.startswith(f"\n{bench_main.KEEP}") and kept.endswith("## Bounds\n\ntext\n")
    assert "old table" not in kept
    out.write_text("# Benchmarks\n\nno marker\n")
    assert bench_main._kept_notes() == ""
