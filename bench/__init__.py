"""Benchmarks and the soak (run as scripts; importable as ``bench.*`` from the repository root)."""
