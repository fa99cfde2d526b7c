"""storctl's benchmark suite: each figure a ratio against a baseline of the same run.

`python -m bench [--quick] [--only NAME,...] [--store sqlite|postgres|both]` runs the
benchmarks (one module each), prints a table per benchmark and writes
`bench/results.json`. See docs/performance.md for what each one measures.
"""
