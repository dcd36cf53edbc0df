"""``mhowto inspect PATH``: what a built dataset holds, rendered from its
:class:`DatasetSummary` for a terminal, with one sample read by a ranged read of its
tar (a local folder or ``s3://bucket/prefix``; nothing is copied)."""

from __future__ import annotations

import io
import json
import tarfile

from multihowto.pipeline.quoting import quote_terminal as q
from multihowto.pipeline.storage import Storage, as_storage
from multihowto.pipeline.summary import (
    DatasetSummary,
    committed_shards,
    label,
    read_index,
    summarise,
)
from multihowto.schemas.frames import unpack_jpegs
from multihowto.schemas.index import INDEX_SUFFIX, TAR_SUFFIX
from multihowto.schemas.sample import FRAMES_EXT, LANGS, text_ext

# Failed videos listed per reason; the rest are counted.
LIST_PER_REASON = 20


def read_sample(storage: Storage, tar_name: str, offset: int, size: int) -> dict:
    """One sample's members ({ext: bytes}, ``__key__``) from its byte span in a tar."""
    sample: dict = {}
    with tarfile.open(fileobj=io.BytesIO(storage.get_range(tar_name, offset, size))) as tf:
        for member in tf:
            if member.isfile():
                key, _, ext = member.name.partition(".")
                sample["__key__"] = key
                sample[ext] = tf.extractfile(member).read()
    return sample


def first_full_sample(storage) -> dict | None:
    """The first sample with the most languages, found in the indexes and read raw by
    its byte span (no decoder, no pickle)."""
    storage = as_storage(storage)
    best = None  # (languages, tar name, offset, size)
    for index_name in committed_shards(storage):
        index = read_index(storage, index_name, ["langs", "tar_offset", "tar_size"]).to_pylist()
        for row in index:
            if best is None or len(row["langs"]) > best[0]:
                best = (len(row["langs"]), index_name.removesuffix(INDEX_SUFFIX) + TAR_SUFFIX, row["tar_offset"], row["tar_size"])
        if best is not None and best[0] == len(LANGS):
            break
    return read_sample(storage, *best[1:]) if best else None


def render_summary(s: DatasetSummary) -> list[str]:
    """The summary as terminal lines; input values are quoted (no control characters)."""
    out = [
        f"dataset: {q(s.uri)}",
        f"shards: {s.shards}",
        f"clips: {s.clips} ({s.clip_seconds / 60:.1f} min)",
        f"videos: {s.videos['total']} planned, {s.videos['ok']} ok, {s.videos['failed']} failed, {s.videos_with_clips} with clips",
        "",
        "per-language clip coverage:",
    ]
    for lang in LANGS:
        n = s.clips_per_lang[lang]
        missing = ", ".join(f"{q(r)}={c}" for r, c in sorted(s.missing_langs.get(lang, {}).items()))
        out.append(f"  {lang}: {n:5d} clips {100 * n / max(1, s.clips):5.1f}%" + (f"   missing in videos: {missing}" if missing else ""))
    out.append("")
    out.append("LID rejections:")
    rejections = [(lang, r, c) for lang, rs in sorted(s.lid_rejected.items()) for r, c in rs.items()]
    out += [f"  {lang}: {q(r)} x{c}" for lang, r, c in rejections] or ["  none"]
    if s.lid_uncertain:
        out.append("  uncertain (kept, flagged): " + ", ".join(f"{k}={v}" for k, v in sorted(s.lid_uncertain.items())))
    if any(s.track_errors.values()):
        out.append("track errors: " + "; ".join(
            f"{q(lang)}: " + ", ".join(f"{q(r)}={n}" for r, n in sorted(c.items())) for lang, c in sorted(s.track_errors.items()) if c))
    out.append("")
    out.append("failures by reason:")
    out += [f"  {q(r)}: {c}" for r, c in s.failures.most_common()] or ["  none"]
    listed: dict[str, int] = {}
    for v in s.failed_videos:
        listed[v.reason] = listed.get(v.reason, 0) + 1
        if listed[v.reason] <= LIST_PER_REASON:
            out.append(f"    {q(v.video_id)} (at {q(v.stage)}): {q(v.reason)}" + (f": {q(v.detail)}" if v.detail else ""))
    more = sum(max(0, n - LIST_PER_REASON) for n in listed.values())
    if more:
        out.append(f"    ... and {more} more failed videos")
    if s.retries:
        out.append("  retried (transient): " + ", ".join(f"{q(r)}={c}" for r, c in s.retries.most_common()))
    if s.rejected_rows:
        out.append(f"  manifest rows rejected: {len(s.rejected_rows)}")
    if s.totals or any(s.counters.values()):
        out += ["", "other counts:"]
        out += [f"  {q(label(k))}: {v:g}" for k, v in sorted(s.totals.items())]
        out += [f"  {q(label(k))}: " + ", ".join(f"{q(r)}={n:g}" for r, n in sorted(c.items())) for k, c in sorted(s.counters.items()) if c]
    return out


def inspect_dataset(root, endpoint_url: str = "", region: str = "") -> str:
    """A summary of a dataset on local disk or S3 (``s3://bucket/prefix``; the endpoint
    from ``endpoint_url`` or AWS_ENDPOINT_URL when not AWS)."""
    storage = as_storage(root, endpoint_url, region)
    if not committed_shards(storage):
        return f"{q(storage.uri)}: no committed shard (no shard-*.parquet)"
    out = render_summary(summarise(storage))
    sample = first_full_sample(storage)
    if sample is not None:
        meta = json.loads(sample["json"])
        frames = unpack_jpegs(sample[FRAMES_EXT])
        out += ["", f"sample {q(sample['__key__'])}  [{meta['start']:.2f}s - {meta['end']:.2f}s]  {len(frames)} frames"]
        for lang in LANGS:
            text = sample.get(text_ext(lang))
            out.append(f"  {lang}: {q(text.decode('utf-8', errors='replace')) if text else '(missing)'}")
    return "\n".join(out)
