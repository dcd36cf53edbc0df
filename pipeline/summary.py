"""One summary of a built dataset, computed once and rendered by every view.

``summarise(storage)`` reads the committed shards (those with a parquet index) of a
local folder or an S3 prefix, one shard at a time: its stats json and two columns of its
index (``video_id``, ``duration``; a ranged read on S3). The dataset card
(pipeline/report.py), ``mhowto inspect`` (pipeline/inspect_dataset.py) and the browser
render the :class:`DatasetSummary` it returns; none of them counts anything itself.

Memory grows with the number of videos (one small entry each, less for a video that is
ok), not with clips or text. Stats fields that this module does not know by name are
summed generically (``totals`` for numbers, ``counters`` for dicts of counts), so a new
per-shard counter shows up without a change here.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pyarrow.parquet as pq

from multihowto.pipeline.storage import Storage, as_storage
from multihowto.schemas.index import INDEX_SUFFIX, STATS_SUFFIX

# Clip lengths are counted in fixed bins, shard by shard; longer clips land in the last.
DURATION_EDGES = np.arange(0.0, 30.5, 0.5)
# Accepted tracks' LID scores, counted in 100 bins over [0, 1] (a bounded summary of
# any number of tracks).
LID_SCORE_EDGES = np.linspace(0.0, 1.0, 101)

# Stats fields read by name below; every other field is summed generically.
KNOWN_STATS = frozenset({
    "shard", "unit", "pipeline_version", "videos", "failures", "retries", "clips", "clips_per_lang",
    "clip_seconds", "lid", "missing_langs", "track_errors", "timings_s", "per_video",
    "written_by",  # the process that wrote the shard: provenance, not a counter
})


@dataclass(frozen=True)
class FailedVideo:
    """A video whose latest attempt failed: where (``stage``), why (``reason``, a stable
    code) and the detail (free text from the input or a library: untrusted)."""

    video_id: str
    stage: str
    reason: str
    detail: str


@dataclass(frozen=True)
class RejectedRow:
    """A manifest row the plan refused; ``value`` is the raw input (untrusted)."""

    line: int
    reason: str
    value: str


@dataclass
class DatasetSummary:
    uri: str = ""
    shards: int = 0
    videos: Counter = field(default_factory=Counter)  # total, ok, failed (each video's latest status)
    videos_with_clips: int = 0
    failures: Counter = field(default_factory=Counter)  # reason -> failed videos
    failed_videos: list[FailedVideo] = field(default_factory=list)
    retries: Counter = field(default_factory=Counter)  # transient reason -> retries made
    clips: int = 0
    clip_seconds: float = 0.0
    clips_per_lang: Counter = field(default_factory=Counter)
    lid_rejected: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # lang -> reason -> tracks
    lid_uncertain: Counter = field(default_factory=Counter)  # lang -> tracks kept but flagged
    lid_score_edges: list[float] = field(default_factory=lambda: LID_SCORE_EDGES.tolist())
    lid_score_counts: dict[str, list[int]] = field(default_factory=dict)  # lang -> accepted tracks per score bin
    missing_langs: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # lang -> reason -> videos
    track_errors: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # lang -> reason -> videos
    timings_s: Counter = field(default_factory=Counter)  # stage -> seconds summed over videos
    rejected_rows: list[RejectedRow] = field(default_factory=list)
    duration_edges: list[float] = field(default_factory=lambda: DURATION_EDGES.tolist())
    duration_counts: list[int] = field(default_factory=lambda: [0] * (len(DURATION_EDGES) - 1))
    totals: Counter = field(default_factory=Counter)  # any other numeric stats field, summed
    counters: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))  # any other dict of counts

    def to_dict(self) -> dict:
        """Plain JSON-ready data (dataclasses and Counters as dicts and lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _plain(value):
    if isinstance(value, FailedVideo | RejectedRow):
        return asdict(value)
    if isinstance(value, dict):  # Counter and defaultdict included
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def committed_shards(storage) -> list[str]:
    """Index names of the committed shards (the index is the commit marker), in shard order."""
    return [n for n in as_storage(storage).list("shard-") if n.endswith(INDEX_SUFFIX)]


def stats_name(index_name: str) -> str:
    return index_name.removesuffix(INDEX_SUFFIX) + STATS_SUFFIX


def read_stats(storage: Storage, index_name: str) -> dict:
    """The stats json of the shard whose index is ``index_name``."""
    return json.loads(storage.get_bytes(stats_name(index_name)))


def read_index(storage: Storage, index_name: str, columns: list[str]):
    """Only ``columns`` of one shard's index (on S3: the footer and those column chunks,
    by ranged reads)."""
    with storage.open_random(index_name) as f:
        return pq.ParquetFile(f).read(columns=columns)


# What the generic counters mean, for the card, inspect and the browser.
LABELS = {
    "requests": "HTTP requests made by the downloads",
    "clips_dropped": "clips planned but not written (by reason)",
    "cues_dropped": "subtitle cues dropped (by reason)",
    "encodings": "tracks decoded from an encoding other than UTF-8",
    "repaired_cues": "subtitle cues repaired of double encoding (mojibake)",
}


def label(key: str) -> str:
    """A counter's readable name (its key when it has none)."""
    return LABELS.get(key, key)


def read_rejected_rows(storage: Storage) -> list[RejectedRow]:
    """The manifest rows the plan rejected, as the plan recorded them."""
    from multihowto.pipeline.plan import read_rejected

    return [RejectedRow(int(r["line"]), str(r["reason"]), str(r["value"])) for r in read_rejected(storage)]


def failure_of(entry: dict) -> FailedVideo:
    """A failed per-video stats entry as a FailedVideo: ``reason``/``detail`` fields
    when the entry has them, else its ``error`` string ``"reason: detail"``."""
    if "reason" in entry:
        reason, detail = entry.get("reason") or "", entry.get("detail") or ""
    else:
        reason, _, detail = (entry.get("error") or "").partition(":")
    return FailedVideo(str(entry["video_id"]), entry.get("failed_at") or entry.get("stage") or "",
                       reason.strip() or "unknown", detail.strip())


def _add_counts(into: Counter, value, path: str = "") -> None:
    """Sum a number or a (nested) dict of numbers into ``into``; nested keys joined by '/'."""
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        into[path] += value
    elif isinstance(value, dict):
        for k, v in value.items():
            _add_counts(into, v, f"{path}/{k}" if path else str(k))


def summarise(storage) -> DatasetSummary:
    """The summary of the committed shards of ``storage`` (a Storage, a local path or
    an ``s3://`` URI)."""
    storage = as_storage(storage)
    s = DatasetSummary(uri=storage.uri)
    durations = np.zeros(len(DURATION_EDGES) - 1, dtype=np.int64)
    scores: dict[str, np.ndarray] = {}
    latest: dict[str, dict | None] = {}  # video -> None if ok, else its failed entry
    with_clips: set[str] = set()
    for index_name in committed_shards(storage):
        index = read_index(storage, index_name, ["video_id", "duration"])
        with_clips.update(index.column("video_id").unique().to_pylist())
        clipped = np.clip(index.column("duration").to_numpy(), 0.0, DURATION_EDGES[-1] - 1e-9)
        durations += np.histogram(clipped, bins=DURATION_EDGES)[0]
        st = read_stats(storage, index_name)
        s.shards += 1
        s.retries.update(st.get("retries", {}))
        s.clips += st.get("clips", 0)
        s.clip_seconds += st.get("clip_seconds", 0.0)
        s.clips_per_lang.update(st.get("clips_per_lang", {}))
        lid = st.get("lid", {})
        for lang, reasons in lid.get("rejected", {}).items():
            s.lid_rejected[lang].update(reasons)
        s.lid_uncertain.update(lid.get("uncertain", {}))
        for lang, reasons in st.get("missing_langs", {}).items():
            s.missing_langs[lang].update(reasons)
        for lang, reasons in st.get("track_errors", {}).items():
            s.track_errors[lang].update(reasons)
        s.timings_s.update(st.get("timings_s", {}))
        for key, value in st.items():
            if key in KNOWN_STATS:
                continue
            if isinstance(value, dict):
                _add_counts(s.counters[key], value)
            elif isinstance(value, int | float) and not isinstance(value, bool) and value:
                s.totals[key] += value
        shard_scores: dict[str, list[float]] = defaultdict(list)
        for v in st.get("per_video", []):
            # shards come in unit order, so a retry unit's entry replaces the earlier one
            latest[v["video_id"]] = None if v.get("status") == "ok" else {
                k: v.get(k) for k in ("video_id", "status", "error", "failed_at", "reason", "detail", "stage") if k in v}
            verdicts = v.get("lid", {})
            for lang, score in v.get("lid_scores", {}).items():
                if verdicts.get(lang) != "reject":
                    shard_scores[lang].append(score)
        for lang, values in shard_scores.items():
            counts = np.histogram(np.clip(values, 0.0, 1.0), bins=LID_SCORE_EDGES)[0]
            scores[lang] = scores[lang] + counts if lang in scores else counts
    failed = [e for e in latest.values() if e is not None]
    s.videos = Counter(total=len(latest), ok=len(latest) - len(failed), failed=len(failed))
    s.videos_with_clips = len(with_clips)
    s.failed_videos = [failure_of(e) for e in failed]
    s.failures = Counter(f.reason for f in s.failed_videos)
    s.duration_counts = durations.tolist()
    s.lid_score_counts = {lang: counts.tolist() for lang, counts in sorted(scores.items())}
    s.rejected_rows = read_rejected_rows(storage)
    return s
