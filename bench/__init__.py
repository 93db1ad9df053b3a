"""Benchmarks of every layer, each a ratio against an anchor measured side by side in the same
run: `python -m bench` (full, for people) or `python -m bench --quick` (CI, under 2 minutes)."""
