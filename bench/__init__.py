"""Benchmarks: ShopHook against the usual AWS pattern, measured in the same run.
`make bench` (or `python -m bench [name ...]`) prints each table and writes it
to bench/results/<name>.json. Timings are printed, never asserted."""
