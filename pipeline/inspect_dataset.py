"""``mhowto inspect PATH``: what a built dataset holds, read from its committed shards."""

from __future__ import annotations

import json
from pathlib import Path

import webdataset as wds

from multihowto.pipeline.report import committed_shards, summarise
from multihowto.schemas.frames import unpack_jpegs
from multihowto.schemas.sample import FRAMES_EXT, LANGS, text_ext


def first_full_sample(root: Path) -> dict | None:
    """The first sample with the most languages, read raw (no decoder, no pickle)."""
    best = None
    for index_path in committed_shards(root):
        if not index_path.with_suffix(".tar").exists():
            continue
        for sample in wds.WebDataset(str(index_path.with_suffix(".tar")), shardshuffle=False, empty_check=False):
            n = sum(1 for lang in LANGS if text_ext(lang) in sample)
            if best is None or n > best[0]:
                best = (n, sample)
            if n == len(LANGS):
                return sample
    return best[1] if best else None


def inspect_dataset(root: str | Path) -> str:
    """A summary of a dataset on local disk or S3 (``s3://bucket/prefix``; the endpoint
    from AWS_ENDPOINT_URL when not AWS)."""
    if str(root).startswith("s3://"):
        from multihowto.pipeline.storage import mirror, open_storage
        from multihowto.schemas.index import INDEX_SUFFIX, PLAN_FILE, STATS_SUFFIX

        storage = open_storage(str(root))
        local = mirror(storage, Path("build") / "inspect" / str(root)[5:].replace("/", "_"), (INDEX_SUFFIX, STATS_SUFFIX, PLAN_FILE))
        first = next(iter(committed_shards(local)), None)
        if first is not None:
            tar = first.with_suffix(".tar")
            tar.write_bytes(storage.get_bytes(tar.name))
            for other in committed_shards(local)[1:]:  # only the first shard's tar is fetched
                other.with_suffix(".tar").unlink(missing_ok=True)
        return inspect_dataset(local).replace(f"dataset: {local}", f"dataset: {root}", 1)
    root = Path(root)
    if not committed_shards(root):
        return f"{root}: no committed shard (no shard-*.parquet)"
    s = summarise(root)
    n_videos = s["videos_with_clips"]
    out = [
        f"dataset: {root}",
        f"shards: {s['shards']}",
        f"clips: {s['clips']} ({s['clip_seconds'] / 60:.1f} min)",
        f"videos: {s['videos']['total']} planned, {s['videos']['ok']} ok, {s['videos']['failed']} failed, {n_videos} with clips",
        "",
        "per-language clip coverage:",
    ]
    for lang in LANGS:
        n = s["clips_per_lang"][lang]
        missing = ", ".join(f"{r}={c}" for r, c in sorted(s["missing_langs"].get(lang, {}).items()))
        out.append(f"  {lang}: {n:5d} clips {100 * n / max(1, s['clips']):5.1f}%" + (f"   missing in videos: {missing}" if missing else ""))
    out.append("")
    out.append("LID rejections:")
    rejections = [(lang, r, c) for lang, rs in sorted(s["lid_rejected"].items()) for r, c in rs.items()]
    out += [f"  {lang}: {r} x{c}" for lang, r, c in rejections] or ["  none"]
    if s["lid_uncertain"]:
        out.append("  uncertain (kept, flagged): " + ", ".join(f"{k}={v}" for k, v in sorted(s["lid_uncertain"].items())))
    out.append("")
    out.append("failures by reason:")
    out += [f"  {r}: {c}" for r, c in s["failures"].most_common()] or ["  none"]
    for v in s["failed_videos"]:
        out.append(f"    {v['video_id']} (at {v['failed_at']}): {v['error']}")
    if s["retries"]:
        out.append("  retried (transient): " + ", ".join(f"{r}={c}" for r, c in s["retries"].most_common()))
    if s["rejected_rows"]:
        out.append(f"  manifest rows rejected: {len(s['rejected_rows'])}")
    sample = first_full_sample(root)
    if sample is not None:
        meta = json.loads(sample["json"])
        frames = unpack_jpegs(sample[FRAMES_EXT])
        out += ["", f"sample {sample['__key__']}  [{meta['start']:.2f}s - {meta['end']:.2f}s]  {len(frames)} frames"]
        for lang in LANGS:
            text = sample.get(text_ext(lang))
            out.append(f"  {lang}: {text.decode('utf-8') if text else '(missing)'}")
    return "\n".join(out)
