"""Benchmarks, run by hand as scripts (not part of the test suite)."""
