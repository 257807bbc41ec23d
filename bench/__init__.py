"""initlab benchmarks: ``make bench`` / ``python -m bench [--full] [NAME...]``.

Each entry module defines ``NAME``, ``TARGET`` (text) and ``run(quick: bool) -> Result``;
the runner repeats entries, keeps the best of n, and rewrites BENCHMARKS.md. Ratios are
measured side by side in one process run: absolute seconds on a shared machine are noise.
"""
