"""The soak's checker: does a finished dataset hold what the run's truth says?

:func:`check_dataset` reads a local output folder only through its files (tars,
parquet indexes, stats, the plan) and returns one line per violation:

- every unit of the plan committed; every ``shard-*.tar`` has its ``.parquet`` and
  ``.stats.json``, every index has its stats; no other file of ours half-written;
- every index key is in its tar, at the offset the index gives; no key twice, in one
  shard or across shards; every tar member belongs to an indexed key;
- every video of the plan has exactly one ``per_video`` entry in the stats;
- a video the truth calls good is ok with exactly its cues' clips (keys ``{id}_00000``
  on, in order), read the tracks the truth lists and misses (with a reason) the
  languages whose tracks failed for good; a bad one failed, with an accepted reason,
  and has no clip;
- the manifest rows the truth says to reject are in ``_plan_rejected.parquet`` with
  their reasons.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from bench.soak_faults import RunTruth
from multihowto.schemas.index import LEASE_FILE, PLAN_FILE, PLAN_REJECTED_FILE
from multihowto.schemas.sample import sample_key


def _tar_members(path: Path) -> tuple[dict[str, int], list[str]]:
    """(key -> offset of its first member header, problems) of one tar."""
    firsts: dict[str, int] = {}
    problems = []
    try:
        with tarfile.open(path) as tf:
            last = None
            for m in tf:
                key = m.name.split(".", 1)[0]
                if key != last and key in firsts:
                    problems.append(f"{path.name}: key {key} appears in two separate runs of members")
                firsts.setdefault(key, m.offset)
                last = key
    except (tarfile.TarError, OSError, EOFError) as e:
        problems.append(f"{path.name}: unreadable tar ({type(e).__name__}: {e})")
    return firsts, problems


def check_dataset(out: Path, truth: RunTruth) -> list[str]:
    """Violations of ``truth`` by the dataset in ``out`` (empty: all held)."""
    out = Path(out)
    v: list[str] = []
    if not (out / PLAN_FILE).exists():
        return [f"{out}: no {PLAN_FILE}: the run never planned"]
    plan = json.loads((out / PLAN_FILE).read_text())
    units = list(range(plan["n_units"])) + [b["first_unit"] + k for b in plan.get("retries", []) for k in range(b["n_units"])]
    names = {p.name for p in out.iterdir()}
    if LEASE_FILE in names:
        v.append(f"{LEASE_FILE} left behind by a finished run")
    for name in sorted(names):
        if name.endswith(".part") or name.startswith("."):
            v.append(f"{name}: a half-written file left in the output")
    for tar in sorted(out.glob("shard-*.tar")):
        if not tar.with_suffix(".parquet").exists():
            v.append(f"{tar.name}: a tar without its index (partial, unindexed shard)")
    for u in units:
        base = f"shard-{u:06d}"
        if f"{base}.parquet" not in names:
            v.append(f"unit {u}: not committed ({base}.parquet missing)")
        elif f"{base}.stats.json" not in names:
            v.append(f"unit {u}: index without its stats")
    indexed_units = {int(p.name[6:12]) for p in out.glob("shard-*.parquet")}
    for u in sorted(indexed_units - set(units)):
        v.append(f"shard-{u:06d}.parquet: a unit the plan does not have")

    keys_seen: Counter = Counter()
    clips_of: dict[str, list[str]] = {}
    for index in sorted(out.glob("shard-*.parquet")):
        try:
            rows = pq.read_table(index, columns=["key", "video_id", "tar_offset"]).to_pylist()
        except Exception as e:  # a damaged index is a violation, not a crash of the checker
            v.append(f"{index.name}: unreadable index ({type(e).__name__})")
            continue
        tar = index.with_suffix(".tar")
        firsts, problems = _tar_members(tar) if tar.exists() else ({}, [])
        v += problems
        if rows and not tar.exists():
            v.append(f"{index.name}: {len(rows)} indexed keys but no tar")
        for row in rows:
            keys_seen[row["key"]] += 1
            clips_of.setdefault(row["video_id"], []).append(row["key"])
            if tar.exists():
                if row["key"] not in firsts:
                    v.append(f"{index.name}: key {row['key']} is not in {tar.name}")
                elif firsts[row["key"]] != row["tar_offset"]:
                    v.append(f"{index.name}: key {row['key']} indexed at {row['tar_offset']}, in the tar at {firsts[row['key']]}")
        for key in sorted(set(firsts) - {r["key"] for r in rows}):
            v.append(f"{tar.name}: key {key} is in the tar but not in its index")
    for key, n in sorted(keys_seen.items()):
        if n > 1:
            v.append(f"key {key} indexed {n} times")

    per_video: dict[str, list[dict]] = {}
    for stats in sorted(out.glob("shard-*.stats.json")):
        try:
            doc = json.loads(stats.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            v.append(f"{stats.name}: unreadable stats ({type(e).__name__})")
            continue
        for entry in doc.get("per_video", []):
            per_video.setdefault(entry["video_id"], []).append(entry)
    for vid, exp in sorted(truth.expect.items()):
        entries = per_video.get(vid, [])
        clips = sorted(clips_of.get(vid, []))
        if len(entries) != 1:
            v.append(f"{vid}: {len(entries)} per_video entries in the stats, expected 1")
            if not entries:
                continue
        entry = entries[-1]
        if exp.ok:
            want = [sample_key(vid, i) for i in range(truth.cues[vid])]
            if entry["status"] != "ok":
                v.append(f"{vid}: expected ok with {len(want)} clips, failed {entry['reason']}: {entry.get('detail', '')[:160]}")
            elif clips != want:
                v.append(f"{vid}: expected clips {want[0]}..{want[-1]} ({len(want)}), got {len(clips)}: {clips[:3]}...")
            for lang in truth.lost_tracks.get(vid, []):
                if entry["status"] == "ok" and lang not in entry.get("missing_langs", {}):
                    v.append(f"{vid}: its {lang} track failed for good, yet {lang} is not among its missing languages")
            for lang in truth.read_tracks.get(vid, []):
                if lang in entry.get("track_errors", {}):
                    v.append(f"{vid}: its {lang} track was not read: {entry['track_errors'][lang]}")
        else:
            if entry["status"] == "ok":
                v.append(f"{vid}: expected to fail ({'|'.join(exp.reasons)}), ended ok with {len(clips)} clips")
            elif not entry.get("reason"):
                v.append(f"{vid}: failed without a reason")
            elif not exp.accepts(entry["reason"]):
                v.append(f"{vid}: failed {entry['reason']}, expected one of {'|'.join(exp.reasons)}: {entry.get('detail', '')[:160]}")
            if clips:
                v.append(f"{vid}: failed but {len(clips)} of its clips are in the dataset")
    for vid in sorted(set(per_video) - set(truth.expect)):
        v.append(f"{vid}: in the stats but not in the run's truth")
    for vid in sorted(set(clips_of) - set(truth.expect)):
        v.append(f"{vid}: clips of a video not in the run's truth")

    rejected = pq.read_table(out / PLAN_REJECTED_FILE).to_pylist() if (out / PLAN_REJECTED_FILE).exists() else []
    got = Counter(r["reason"] for r in rejected)
    want = Counter(truth.rejected)
    if got != want:
        v.append(f"{PLAN_REJECTED_FILE}: rejected rows {dict(sorted(got.items()))}, expected {dict(sorted(want.items()))}")
    return v
