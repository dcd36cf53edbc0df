"""Shards stage: one work unit's videos to a committed WebDataset shard.

Runs in the worker that ran the unit. Files are written to the unit's local scratch
folder first (tar through webdataset's TarWriter, then the parquet index and the stats),
then put into the dataset's storage (pipeline/storage.py: a rename on local disk, a
completed upload on S3): the tar, the stats, and the index last. The index is the commit marker, so a crash at any point
leaves either a complete, indexed shard or files that the next run removes and redoes.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds

from multihowto.schemas.frames import pack_jpegs
from multihowto.schemas.index import INDEX_SCHEMA, new_stats, shard_files
from multihowto.schemas.item import Clip, VideoItem
from multihowto.schemas.sample import (
    FEATURES_EXT,
    FRAMES_EXT,
    JSON_EXT,
    LANGS,
    PIPELINE_VERSION,
    sample_key,
    shard_name,
    text_ext,
)

# Tar members carry no wall-clock time, so the same input gives the same bytes. An int:
# a float mtime makes tarfile add a PAX header to every member (twice the parsing).
FIXED_MTIME = 0


def _bump(counter: dict, *keys: str) -> None:
    for k in keys[:-1]:
        counter = counter.setdefault(k, {})
    counter[keys[-1]] = counter.get(keys[-1], 0) + 1


def clip_sample(item: VideoItem, clip: Clip, fps: float) -> dict:
    """The members of one clip's sample, all as bytes."""
    key = sample_key(item.video_id, clip.index)
    langs = [lang for lang in LANGS if clip.texts.get(lang)]
    meta = {
        "key": key,
        "video_id": item.video_id,
        "clip_index": clip.index,
        "start": clip.start,
        "end": clip.end,
        "source": {
            "url": item.url,
            "extractor": item.info.get("extractor", ""),
            "subtitle_formats": {k: t.format for k, t in item.tracks.items()},
            "subtitle_kinds": {k: t.kind for k, t in item.tracks.items()},
            "subtitle_tags": {k: t.tag for k, t in item.tracks.items() if t.tag and t.tag != k},
            "subtitle_encodings": {k: t.encoding for k, t in item.tracks.items() if t.encoding != "utf-8"},
        },
        "pivot": item.pivot,
        "langs": langs,
        "lid": {lang: {k: item.lid[lang].get(k) for k in ("verdict", "label", "score")} for lang in langs if lang in item.lid},
        "align_confidence": {lang: clip.confidence.get(lang) for lang in langs},
        "frame_count": clip.n_frames,
        "fps": fps,
        "pipeline_version": PIPELINE_VERSION,
    }
    sample = {"__key__": key, JSON_EXT: json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")}
    for lang in langs:
        sample[text_ext(lang)] = clip.texts[lang].encode("utf-8")
    sample[FRAMES_EXT] = Path(clip.frames_path).read_bytes() if clip.frames_path else pack_jpegs([])
    if clip.features is not None:
        sample[FEATURES_EXT] = clip.features
    return sample


def index_row(item: VideoItem, clip: Clip, key: str) -> dict:
    langs = [lang for lang in LANGS if clip.texts.get(lang)]
    return {
        "key": key,
        "video_id": item.video_id,
        "clip_index": clip.index,
        "start": clip.start,
        "end": clip.end,
        "duration": round(clip.end - clip.start, 3),
        "langs": langs,
        "n_frames": clip.n_frames,
        **{f"text_{lang}": clip.texts.get(lang) for lang in LANGS},
    }


STALL_ENV = "MHOWTO_STALL_BEFORE_INDEX_S"


def stall_point() -> None:
    """A fault-injection point for the kill tests and the soak: with ``STALL_ENV`` set,
    a commit waits that many seconds between its tar and its index (the window in which a
    killed worker leaves a tar without an index)."""
    seconds = float(os.environ.get(STALL_ENV, "0") or 0)
    if seconds > 0:
        time.sleep(seconds)


class ShardCommit:
    """Write and commit one unit straight into the dataset's storage. Not a per-item
    Operator: it sees a whole unit."""

    name = "shards"

    def __init__(self, fps: float, storage, tmp_dir: str | Path, written_by: dict | None = None):
        self.fps = fps
        self.storage = storage
        self.tmp_dir = Path(tmp_dir)
        # who wrote the shard: the caller's facts (its Ray node) plus the host and pid of
        # the process that writes the tar, taken when it does; in the stats only, never in
        # the tar, so the same input still gives the same shard bytes in every layout
        self.written_by = written_by

    def names(self, unit: int) -> dict[str, str]:
        return shard_files(unit)

    def is_committed(self, unit: int) -> bool:
        return self.storage.exists(self.names(unit)["index"])

    def remove_partial(self, unit: int) -> None:
        """Files of a unit whose index never landed: remove them, the unit is redone."""
        names = self.names(unit)
        if not self.storage.exists(names["index"]):
            for kind in ("tar", "stats"):
                self.storage.delete(names[kind])

    def commit(self, unit: int, items: list[VideoItem]) -> dict:
        """Write the unit's shard, index and stats; returns the stats. A unit with no
        clip (every video failed) has no tar: its empty index and stats commit it."""
        name = shard_name(unit)
        final = self.names(unit)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = {k: self.tmp_dir / n for k, n in final.items()}
        stats = new_stats(name, unit)
        if self.written_by is not None:
            stats["written_by"] = {**self.written_by, "host": socket.gethostname(), "pid": os.getpid()}
        rows = []
        items = sorted(items, key=lambda it: it.video_id)
        for item in items:
            count_video(stats, item)
        if any(item.ok and item.clips for item in items):
            with open(tmp["tar"], "wb") as f:
                writer = wds.TarWriter(f, encoder=False, mtime=FIXED_MTIME)
                for item in items:
                    if not item.ok:
                        continue
                    for clip in item.clips:
                        sample = clip_sample(item, clip, self.fps)
                        # the sample's span, from the header of its first member to the
                        # end of its last one's padding: tarfile's running offset, read
                        # as it writes (not by reading the tar back)
                        start = writer.tarstream.offset
                        writer.write(sample)
                        row = index_row(item, clip, sample["__key__"])
                        row["tar_offset"], row["tar_size"] = start, writer.tarstream.offset - start
                        rows.append(row)
                writer.close()
        for row in rows:
            stats["clips"] += 1
            stats["clip_seconds"] = round(stats["clip_seconds"] + row["duration"], 3)
            for lang in row["langs"]:
                stats["clips_per_lang"][lang] += 1
        pq.write_table(pa.Table.from_pylist(rows, schema=INDEX_SCHEMA), tmp["index"])
        tmp["stats"].write_text(json.dumps(stats, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
        kinds = ("tar", "stats", "index") if rows else ("stats", "index")
        for kind in kinds:  # the index last: it is the commit marker
            if kind == "index":
                stall_point()
            self.storage.put_file(tmp[kind], final[kind])
        return stats


def count_video(stats: dict, item: VideoItem) -> None:
    """Add one video's outcome to its unit's stats."""
    stats["videos"]["total"] += 1
    stats["videos"][item.status] += 1
    if item.failure is not None:
        _bump(stats["failures"], item.failure.reason)
    for lang, verdict in item.lid.items():
        if verdict["verdict"] == "reject":
            _bump(stats["lid"]["rejected"], lang, verdict["reason"])
        elif verdict["verdict"] == "uncertain":
            _bump(stats["lid"]["uncertain"], lang)
    for reason in item.retried:
        _bump(stats["retries"], reason)
    for lang, reason in item.missing_langs.items():
        _bump(stats["missing_langs"], lang, reason)
    for lang, reason in item.track_errors.items():
        _bump(stats["track_errors"], lang, reason)
    for reason, n in item.clips_dropped.items():
        stats["clips_dropped"][reason] = stats["clips_dropped"].get(reason, 0) + n
    for track in item.tracks.values():
        if track.encoding != "utf-8":
            _bump(stats["encodings"], track.encoding)
        if track.repairs:
            stats["repaired_cues"] += track.repairs
        for reason, n in track.dropped_cues.items():
            stats["cues_dropped"][reason] = stats["cues_dropped"].get(reason, 0) + n
    stats["requests"] += item.requests
    for stage, secs in item.timings.items():
        stats["timings_s"][stage] = round(stats["timings_s"].get(stage, 0.0) + secs, 4)
    f = item.failure
    stats["per_video"].append(
        {
            "video_id": item.video_id,
            "url": item.url,
            "status": item.status,
            "reason": f.reason if f else "",
            "detail": f.detail if f else "",
            "failed_at": f.stage if f else "",
            "download_attempts": item.download_attempts,
            "requests": item.requests,
            "clips": len(item.clips) if item.ok else 0,
            "clips_dropped": item.clips_dropped,
            "missing_langs": item.missing_langs,
            "track_errors": item.track_errors,
            "tags": {lang: t.tag for lang, t in item.tracks.items() if t.tag},
            "lid": {lang: v["verdict"] for lang, v in item.lid.items()},
            "lid_scores": {lang: v["score"] for lang, v in item.lid.items() if "score" in v},
        }
    )
