"""Shards stage: one work unit's videos to a committed WebDataset shard.

Files are written to a local temporary folder first (tar through webdataset's
TarWriter, then the parquet index and the stats), then put into the dataset's storage
(pipeline/storage.py: a rename on local disk, a completed upload on S3): the tar, the
stats, and the index last. The index is the commit marker, so a crash at any point
leaves either a complete, indexed shard or files that the next run removes and redoes.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds

from multihowto.operators.base import Item, error_reason
from multihowto.schemas.config import RegionConfig
from multihowto.schemas.index import INDEX_SCHEMA, new_stats, shard_files
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


def clip_sample(item: Item, clip: dict, frames_blob: bytes, n_frames: int, fps: float,
                features_blob: bytes | None = None) -> dict:
    """The members of one clip's sample, all as bytes."""
    key = sample_key(item["video_id"], clip["index"])
    langs = [lang for lang in LANGS if clip["texts"].get(lang)]
    lid = item.get("lid", {})
    meta = {
        "key": key,
        "video_id": item["video_id"],
        "clip_index": clip["index"],
        "start": clip["start"],
        "end": clip["end"],
        "source": {
            "url": item.get("url", ""),
            "extractor": item.get("info", {}).get("extractor", ""),
            "subtitle_formats": {k: v["format"] for k, v in item.get("tracks", {}).items()},
            "subtitle_kinds": {k: v["kind"] for k, v in item.get("tracks", {}).items()},
        },
        "pivot": item.get("pivot"),
        "langs": langs,
        "lid": {lang: {k: lid[lang].get(k) for k in ("verdict", "label", "score")} for lang in langs if lang in lid},
        "align_confidence": {lang: clip["confidence"].get(lang) for lang in langs},
        "frame_count": n_frames,
        "fps": fps,
        "pipeline_version": PIPELINE_VERSION,
    }
    sample = {"__key__": key, JSON_EXT: json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8")}
    for lang in langs:
        sample[text_ext(lang)] = clip["texts"][lang].encode("utf-8")
    sample[FRAMES_EXT] = frames_blob
    if features_blob is not None:
        sample[FEATURES_EXT] = features_blob
    return sample


def tar_spans(tar_path: Path) -> dict[str, tuple[int, int]]:
    """key -> (offset of its first header, bytes to the end of its last member)."""
    spans: dict[str, list[int]] = {}
    with tarfile.open(tar_path) as tf:
        for m in tf:
            key = m.name.split(".", 1)[0]
            end = m.offset_data + ((m.size + 511) // 512) * 512
            if key in spans:
                spans[key][1] = end
            else:
                spans[key] = [m.offset, end]
    return {k: (a, b - a) for k, (a, b) in spans.items()}


class ShardCommit:
    """Write and commit one unit. Not a per-item Operator: it sees a whole unit."""

    name = "shards"

    def __init__(self, config: RegionConfig, storage, tmp_dir: str | Path | None = None):
        from multihowto.pipeline.storage import LocalStorage

        self.config = config
        self.storage = LocalStorage(storage) if isinstance(storage, str | Path) else storage
        default_tmp = self.storage.root / ".tmp" if isinstance(self.storage, LocalStorage) else Path("build/tmp")
        self.tmp_dir = Path(tmp_dir) if tmp_dir else default_tmp

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

    def commit(self, unit: int, items: list[Item]) -> dict:
        """Write the unit's shard, index and stats; returns the stats."""
        name = shard_name(unit)
        final = self.names(unit)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        tmp = {k: self.tmp_dir / n for k, n in final.items()}
        stats = new_stats(name, unit)
        rows = []
        fps = self.config.frames.fps
        with open(tmp["tar"], "wb") as f:
            writer = wds.TarWriter(f, encoder=False, mtime=FIXED_MTIME)
            for item in sorted(items, key=lambda it: it["video_id"]):
                self._count(stats, item)
                if item.get("status") != "ok":
                    continue
                features = item.get("clip_features") or [None] * len(item["clips"])
                for clip, blob, n, feat in zip(item["clips"], item["clip_frames"], item["clip_frame_counts"], features, strict=True):
                    sample = clip_sample(item, clip, blob, n, fps, feat)
                    writer.write(sample)
                    langs = [lang for lang in LANGS if clip["texts"].get(lang)]
                    rows.append(
                        {
                            "key": sample["__key__"],
                            "video_id": item["video_id"],
                            "clip_index": clip["index"],
                            "start": clip["start"],
                            "end": clip["end"],
                            "duration": round(clip["end"] - clip["start"], 3),
                            "langs": langs,
                            "n_frames": n,
                            **{f"text_{lang}": clip["texts"].get(lang) for lang in LANGS},
                        }
                    )
                    stats["clips"] += 1
                    stats["clip_seconds"] = round(stats["clip_seconds"] + clip["end"] - clip["start"], 3)
                    for lang in langs:
                        stats["clips_per_lang"][lang] += 1
            writer.close()
        spans = tar_spans(tmp["tar"])
        for row in rows:
            row["tar_offset"], row["tar_size"] = spans[row["key"]]
        table = pa.Table.from_pylist(rows, schema=INDEX_SCHEMA)
        pq.write_table(table, tmp["index"])
        tmp["stats"].write_text(json.dumps(stats, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
        for kind in ("tar", "stats", "index"):  # the index last: it is the commit marker
            self.storage.put_file(tmp[kind], final[kind])
        return stats

    @staticmethod
    def _count(stats: dict, item: Item) -> None:
        stats["videos"]["total"] += 1
        ok = item.get("status") == "ok"
        stats["videos"]["ok" if ok else "failed"] += 1
        if not ok:
            _bump(stats["failures"], error_reason(item))
        for lang, verdict in item.get("lid", {}).items():
            if verdict["verdict"] == "reject":
                _bump(stats["lid"]["rejected"], lang, verdict["reason"])
            elif verdict["verdict"] == "uncertain":
                _bump(stats["lid"]["uncertain"], lang)
        for reason in item.get("retried", []):
            _bump(stats["retries"], reason)
        for lang, reason in item.get("missing_langs", {}).items():
            _bump(stats["missing_langs"], lang, reason)
        for lang, reason in item.get("track_errors", {}).items():
            _bump(stats["track_errors"], lang, reason)
        for stage, secs in item.get("timings", {}).items():
            stats["timings_s"][stage] = round(stats["timings_s"].get(stage, 0.0) + secs, 4)
        stats["per_video"].append(
            {
                "video_id": item["video_id"],
                "url": item.get("url", ""),
                "status": item.get("status"),
                "error": item.get("error") or "",
                "failed_at": item.get("failed_at") or "",
                "download_attempts": item.get("download_attempts", 0),
                "clips": len(item.get("clips") or []) if ok else 0,
                "missing_langs": item.get("missing_langs", {}),
                "lid": {lang: v["verdict"] for lang, v in item.get("lid", {}).items()},
                "lid_scores": {lang: v["score"] for lang, v in item.get("lid", {}).items() if "score" in v},
            }
        )
