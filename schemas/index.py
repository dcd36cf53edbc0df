"""Per-shard files next to ``shard-{unit:06d}.tar``.

- ``.parquet``: one row per sample (:data:`INDEX_SCHEMA`). Its presence is the commit
  marker: a shard without its index is not part of the dataset.
- ``.stats.json``: counts by status and reason, per-language coverage, LID verdicts,
  stage timings, and one entry per video of the unit (:func:`new_stats`).

The dataset root holds ``_plan.json`` (the work units), ``README.md`` (the dataset card),
``_report/*.png`` and ``how2_{lang}.json``.
"""

from __future__ import annotations

import pyarrow as pa

from multihowto.schemas.sample import LANGS, PIPELINE_VERSION

INDEX_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("video_id", pa.string()),
        ("clip_index", pa.int32()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("duration", pa.float64()),
        ("langs", pa.list_(pa.string())),
        ("n_frames", pa.int32()),
        ("tar_offset", pa.int64()),  # byte offset of the sample's first tar header
        ("tar_size", pa.int64()),  # bytes up to the end of its last member (padded)
        *[(f"text_{lang}", pa.string()) for lang in LANGS],
    ]
)

PLAN_FILE = "_plan.json"  # the plan's summary and fingerprint (pipeline/plan.py); written last
PLAN_ROWS_FILE = "_plan.parquet"  # unit, video_id, url: sorted by unit
PLAN_REJECTED_FILE = "_plan_rejected.parquet"  # line, reason, value
LEASE_FILE = "_lease.json"  # the run that holds the output (pipeline/lease.py)
REPORT_DIR = "_report"
CARD_FILE = "README.md"
INDEX_SUFFIX = ".parquet"
TAR_SUFFIX = ".tar"
STATS_SUFFIX = ".stats.json"


def shard_files(unit: int) -> dict[str, str]:
    """The names of one unit's files: ``tar``, ``stats`` and ``index`` (the commit marker)."""
    from multihowto.schemas.sample import shard_name

    base = shard_name(unit)
    return {"tar": f"{base}{TAR_SUFFIX}", "stats": f"{base}{STATS_SUFFIX}", "index": f"{base}{INDEX_SUFFIX}"}


def plan_retry_file(batch: int) -> str:
    """The rows of the ``batch``-th ``--retry-failed`` (same columns as the plan's)."""
    return f"_plan_retry-{batch:04d}.parquet"


def how2_file(lang: str) -> str:
    return f"how2_{lang}.json"


def new_stats(shard: str, unit: int) -> dict:
    return {
        "shard": shard,
        "unit": unit,
        "pipeline_version": PIPELINE_VERSION,
        "videos": {"total": 0, "ok": 0, "failed": 0},
        "failures": {},  # reason -> count
        "retries": {},  # transient reason -> retries made (videos may have succeeded after)
        "clips": 0,
        "clips_per_lang": {lang: 0 for lang in LANGS},
        "clip_seconds": 0.0,
        "lid": {"rejected": {}, "uncertain": {}},  # lang -> {reason: count} / lang -> count
        "missing_langs": {},  # lang -> {reason: count}
        "track_errors": {},  # lang -> {reason: count}
        "clips_dropped": {},  # reason -> clips planned by align but not written
        "encodings": {},  # encoding -> tracks decoded from it (UTF-8 not counted)
        "repaired_cues": 0,  # cues mended of double encoding (mojibake)
        "cues_dropped": {},  # reason -> cues dropped from tracks (cue_too_long, ...)
        "requests": 0,  # HTTP requests made by the downloads
        "timings_s": {},  # stage -> summed seconds
        "per_video": [],
    }
