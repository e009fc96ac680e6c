"""Benchmarks: each prints its figures beside a same-run baseline and ends with one key=value line."""
