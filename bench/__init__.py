"""Benchmark scripts (run as ``python bench/<name>.py`` from the repo root); not part of the package."""
