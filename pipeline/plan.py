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
from dataclasses import dataclass
from pathlib import Path

from multihowto.pipeline.manifest import Manifest
from multihowto.schemas.config import RegionConfig
from multihowto.schemas.index import PLAN_FILE


def stable_hash(text: str, salt: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{salt}:{text}".encode(), digest_size=8).digest(), "big")


class PlanMismatch(RuntimeError):
    """The output already holds a plan made from a different manifest or partition."""


@dataclass
class Plan:
    units: dict[int, list[dict]]  # unit -> rows
    rejected: list[dict]
    fingerprint: str

    @property
    def n_videos(self) -> int:
        return sum(len(v) for v in self.units.values())


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
    else:
        ordered = sorted(mine, key=lambda r: (stable_hash(r["video_id"], "unit"), r["video_id"]))
        size = cfg.videos_per_unit
        units = {u: ordered[u * size : (u + 1) * size] for u in range(max(1, math.ceil(len(ordered) / size)))}
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
    return Plan(units=dict(sorted(units.items())), rejected=manifest.rejected, fingerprint=fingerprint)
