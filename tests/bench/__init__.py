"""Tests of the benchmarks' own logic; the benchmarks themselves are run by hand."""
