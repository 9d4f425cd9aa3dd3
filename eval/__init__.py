"""Evaluation: STS suites, reports, benchmarks."""
