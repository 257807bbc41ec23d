"""Plain records of experiments, their SQLite store and summaries (no torch imports here)."""
