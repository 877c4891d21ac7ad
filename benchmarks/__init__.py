"""Benchmarks: instance scales, solver comparisons, GAP loader."""
