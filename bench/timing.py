"""Timing helpers shared by the benchmarks: repeated runs, and ratios against a limit."""

from __future__ import annotations

import statistics
import time


def timed(fn, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": len(times)}


def ratio(limit: dict, ours: dict) -> dict:
    """limit/ours on medians, with the range from the extreme pairings."""
    return {
        "median": limit["median_s"] / ours["median_s"],
        "min": limit["min_s"] / ours["max_s"],
        "max": limit["max_s"] / ours["min_s"],
    }
