"""Partition a manifest into work units, deterministically.

A region owns the rows whose id hash falls in its partition ``i/n``. Its rows are
ordered by a second, independent hash of the id and cut into units of
``videos_per_unit`` (so units are balanced and mix the manifest's order). The plan is
written to ``{output}/_plan.json`` on the first run and read back after, so a rerun
maps every video to the same unit (and finds its committed shard).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from multihowto.pipeline.manifest import Manifest
from multihowto.schemas.config import RegionConfig
from multihowto.schemas.index import PLAN_FILE, shard_files


def stable_hash(text: str, salt: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{salt}:{text}".encode(), digest_size=8).digest(), "big")


class PlanMismatch(RuntimeError):
    """The output already holds a plan made from a different manifest or partition."""


@dataclass
class Plan:
    units: dict[int, list[dict]]  # unit -> rows (the manifest's units, then retry units)
    rejected: list[dict]
    fingerprint: str
    retry_units: dict[int, list[str]] = field(default_factory=dict)  # unit -> video ids

    @property
    def n_videos(self) -> int:
        """Distinct videos (a retried video is in its unit and in a retry unit)."""
        return len({r["video_id"] for rows in self.units.values() for r in rows})


def make_plan(manifest: Manifest, cfg: RegionConfig, storage) -> Plan:
    """The plan of this manifest in ``storage`` (a Storage, or a local folder)."""
    from multihowto.pipeline.storage import LocalStorage

    if isinstance(storage, str | Path):
        storage = LocalStorage(storage)
    i, n = cfg.partition_index
    mine = [r for r in manifest.rows if stable_hash(r["video_id"], "region") % n == i]
    fingerprint = hashlib.blake2b(
        json.dumps([cfg.partition, sorted(r["video_id"] for r in mine)]).encode(), digest_size=12
    ).hexdigest()
    by_id = {r["video_id"]: r for r in mine}
    if storage.exists(PLAN_FILE):
        saved = json.loads(storage.get_bytes(PLAN_FILE))
        if saved["fingerprint"] != fingerprint:
            raise PlanMismatch(
                f"{storage.uri}/{PLAN_FILE} was planned from another manifest or partition "
                f"({saved['n_videos']} videos, partition {saved['partition']}); "
                "write to a new output, or remove the old one"
            )
        units = {int(u): [by_id[v] for v in ids] for u, ids in saved["units"].items()}
        retry_units = {int(u): ids for u, ids in saved.get("retry_units", {}).items()}
        units.update({u: [by_id[v] for v in ids] for u, ids in retry_units.items()})
    else:
        ordered = sorted(mine, key=lambda r: (stable_hash(r["video_id"], "unit"), r["video_id"]))
        size = cfg.videos_per_unit
        units = {u: ordered[u * size : (u + 1) * size] for u in range(max(1, math.ceil(len(ordered) / size)))}
        retry_units = {}
        storage.put_bytes(
            json.dumps(
                {
                    "fingerprint": fingerprint,
                    "partition": cfg.partition,
                    "n_units": len(units),
                    "n_videos": len(mine),
                    "rejected_rows": manifest.rejected,
                    "units": {str(u): [r["video_id"] for r in rows] for u, rows in units.items()},
                },
                indent=1,
            ).encode(),
            PLAN_FILE,
        )
    return Plan(units=dict(sorted(units.items())), rejected=manifest.rejected, fingerprint=fingerprint, retry_units=retry_units)


def latest_status(storage, units) -> dict[str, dict]:
    """Each video's entry from the last committed unit that holds it (retry units come
    after the units they retry)."""
    out: dict[str, dict] = {}
    for unit in sorted(units):
        files = shard_files(unit)
        if storage.exists(files["index"]):
            for v in json.loads(storage.get_bytes(files["stats"]))["per_video"]:
                out[v["video_id"]] = v
    return out


def add_retry_units(plan: Plan, storage, videos_per_unit: int) -> list[int]:
    """Give every video whose latest status is failed, and that no pending retry unit
    holds yet, to new units after all existing ones; saved in the plan before any work."""
    pending = {v for u, ids in plan.retry_units.items() if not storage.exists(shard_files(u)["index"]) for v in ids}
    failed = sorted(v for v, e in latest_status(storage, plan.units).items() if e["status"] != "ok" and v not in pending)
    if not failed:
        return []
    rows = {r["video_id"]: r for rows in plan.units.values() for r in rows}
    start = max(plan.units) + 1
    new = {start + i: failed[i * videos_per_unit : (i + 1) * videos_per_unit] for i in range(math.ceil(len(failed) / videos_per_unit))}
    saved = json.loads(storage.get_bytes(PLAN_FILE))
    saved.setdefault("retry_units", {}).update({str(u): ids for u, ids in new.items()})
    storage.put_bytes(json.dumps(saved, indent=1).encode(), PLAN_FILE)
    plan.retry_units.update(new)
    plan.units.update({u: [rows[v] for v in ids] for u, ids in new.items()})
    return sorted(new)
