"""Benchmarks: ratios against the naive approach on the same database, printed as a table."""
