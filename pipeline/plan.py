"""Partition a manifest into work units, deterministically and at HowTo100M's scale.

A region owns the rows whose id hash falls in its partition ``i/n``. Its rows are
ordered by a second, independent hash of the id and cut into units of
``videos_per_unit`` (so units are balanced and mix the manifest's order).

The manifest is streamed (pipeline/manifest.py) into Arrow columns in batches, never
into a list of dicts; duplicates are found with one dictionary encoding. What is kept
(schemas/index.py names the files):

- ``_plan.parquet``: ``unit, video_id, url``, sorted by unit, so unit ``u`` is rows
  ``[u * videos_per_unit, (u + 1) * videos_per_unit)``: a worker reads its own rows
  (one row group, a ranged read on S3) and the driver holds only row counts;
- ``_plan_rejected.parquet``: ``line, reason, value`` of every rejected manifest row;
- ``_plan.json``: the fingerprint (which manifest and partition made the plan), the
  counts, and the retry batches (``--retry-failed``), each its own parquet.

The plan is written on the first run and read back after, so a rerun maps every video
to the same unit (and finds its committed shard).
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from multihowto.pipeline.manifest import iter_manifest
from multihowto.schemas.config import RegionConfig
from multihowto.schemas.index import (
    PLAN_FILE,
    PLAN_REJECTED_FILE,
    PLAN_ROWS_FILE,
    plan_retry_file,
    shard_files,
)
from multihowto.schemas.item import UnitTask
from multihowto.schemas.manifest import RejectedRow

PLAN_VERSION = 2
ROW_GROUP = 8192  # plan rows per parquet row group: what a worker reads for its unit
_BATCH = 65536  # manifest rows gathered in Python before they become Arrow columns

PLAN_SCHEMA = pa.schema([("unit", pa.int32()), ("video_id", pa.string()), ("url", pa.string())])
REJECTED_SCHEMA = pa.schema([("line", pa.int64()), ("reason", pa.string()), ("value", pa.string())])


def stable_hash(text: str, salt: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{salt}:{text}".encode(), digest_size=8).digest(), "big")


class PlanMismatch(RuntimeError):
    """The output already holds a plan made from a different manifest or partition."""


@dataclass
class Plan:
    fingerprint: str
    partition: str
    videos_per_unit: int
    n_videos: int  # distinct videos of the region (a retried video counts once)
    n_units: int  # the manifest's units; retry units come after them
    n_rejected: int
    retries: list[dict] = field(default_factory=list)  # {"file", "first_unit", "n_units", "n_videos"}

    def tasks(self) -> list[UnitTask]:
        """Every unit of the plan, the manifest's first, then each retry batch's."""
        out = [
            UnitTask(u, PLAN_ROWS_FILE, u * self.videos_per_unit, min(self.n_videos, (u + 1) * self.videos_per_unit))
            for u in range(self.n_units)
        ]
        for batch in self.retries:
            for k in range(batch["n_units"]):
                start = k * self.videos_per_unit
                stop = min(batch["n_videos"], start + self.videos_per_unit)
                out.append(UnitTask(batch["first_unit"] + k, batch["file"], start, stop))
        return out

    def about(self) -> dict:
        return {
            "version": PLAN_VERSION,
            "fingerprint": self.fingerprint,
            "partition": self.partition,
            "videos_per_unit": self.videos_per_unit,
            "n_videos": self.n_videos,
            "n_units": self.n_units,
            "n_rejected": self.n_rejected,
            "retries": self.retries,
        }


@dataclass
class _Columns:
    """A region's manifest rows as Arrow columns, gathered batch by batch."""

    lines: list = field(default_factory=list)
    ids: list = field(default_factory=list)
    urls: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    _buf: tuple = field(default_factory=lambda: ([], [], []))
    _rej: tuple = field(default_factory=lambda: ([], [], []))

    def add(self, line: int, video_id: str, url: str) -> None:
        self._buf[0].append(line)
        self._buf[1].append(video_id)
        self._buf[2].append(url)
        if len(self._buf[0]) >= _BATCH:
            self.flush()

    def reject(self, line: int, reason: str, value: str) -> None:
        self._rej[0].append(line)
        self._rej[1].append(reason)
        self._rej[2].append(value)
        if len(self._rej[0]) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        if self._buf[0]:
            self.lines.append(pa.array(self._buf[0], pa.int64()))
            self.ids.append(pa.array(self._buf[1], pa.string()))
            self.urls.append(pa.array(self._buf[2], pa.string()))
            self._buf = ([], [], [])
        if self._rej[0]:
            self.rejected.append(pa.table(list(self._rej), schema=REJECTED_SCHEMA))
            self._rej = ([], [], [])


def _gather(rows: Iterable, cfg: RegionConfig) -> _Columns:
    i, n = cfg.partition_index
    cols = _Columns()
    for row in rows:
        if isinstance(row, RejectedRow):
            cols.reject(row.line, row.reason, row.value)
        elif n == 1 or stable_hash(row.video_id, "region") % n == i:
            cols.add(row.line, row.video_id, row.url)
    cols.flush()
    return cols


def _region_table(cols: _Columns) -> tuple[pa.Table, pa.Table]:
    """(kept rows sorted into plan order with their unit hash, rejected rows incl. duplicates)."""
    if not cols.ids:
        kept = pa.table({"line": pa.array([], pa.int64()), "video_id": pa.array([], pa.string()), "url": pa.array([], pa.string())})
    else:
        kept = pa.table({"line": pa.chunked_array(cols.lines), "video_id": pa.chunked_array(cols.ids), "url": pa.chunked_array(cols.urls)})
    rejected = [*cols.rejected]
    if kept.num_rows:
        codes = pc.dictionary_encode(kept.column("video_id").combine_chunks()).indices.to_numpy(zero_copy_only=False)
        first = np.zeros(len(codes), dtype=bool)
        first[np.unique(codes, return_index=True)[1]] = True  # the earliest line of each id
        if not first.all():
            dup = kept.filter(pa.array(~first))
            rejected.append(pa.table({"line": dup.column("line"), "reason": pa.array(["duplicate_video_id"] * dup.num_rows, pa.string()),
                                      "value": dup.column("video_id")}, schema=REJECTED_SCHEMA))
            kept = kept.filter(pa.array(first))
    uhash = np.fromiter((stable_hash(v, "unit") for v in kept.column("video_id").to_pylist()), dtype=np.uint64, count=kept.num_rows)
    kept = kept.append_column("uhash", pa.array(uhash, pa.uint64()))
    kept = kept.take(pc.sort_indices(kept, [("uhash", "ascending"), ("video_id", "ascending")]))
    rej = pa.concat_tables(rejected) if rejected else REJECTED_SCHEMA.empty_table()
    rej = rej.take(pc.sort_indices(rej, [("line", "ascending")]))
    return kept, rej


def fingerprint_of(partition: str, ids: pa.ChunkedArray | pa.Array) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(json.dumps(partition).encode())
    for chunk in (ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids]):
        for v in chunk.to_pylist():
            h.update(b"\n" + v.encode())
    return h.hexdigest()


def _put_parquet(storage, table: pa.Table, name: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mhowto-plan-") as tmp:
        path = Path(tmp) / name
        pq.write_table(table, path, row_group_size=ROW_GROUP)
        storage.put_file(path, name)


def read_plan(storage) -> Plan | None:
    if not storage.exists(PLAN_FILE):
        return None
    saved = json.loads(storage.get_bytes(PLAN_FILE))
    if saved.get("version") != PLAN_VERSION:
        raise PlanMismatch(f"{storage.uri}/{PLAN_FILE} was written by another plan format (version {saved.get('version')}); "
                           "write to a new output")
    return Plan(**{k: saved[k] for k in ("fingerprint", "partition", "videos_per_unit", "n_videos", "n_units", "n_rejected", "retries")})


def make_plan(manifest: str | Path, cfg: RegionConfig, storage, base_url: str = "") -> Plan:
    """The plan of the manifest file ``manifest`` in ``storage``: made and saved on the
    first run, checked against the manifest and reused after."""
    kept, rejected = _region_table(_gather(iter_manifest(manifest, cfg.source.url_template, base_url), cfg))
    fingerprint = fingerprint_of(cfg.partition, kept.column("video_id"))
    saved = read_plan(storage)
    if saved is not None:
        if saved.fingerprint != fingerprint:
            raise PlanMismatch(
                f"{storage.uri}/{PLAN_FILE} was planned from another manifest or partition "
                f"({saved.n_videos} videos, partition {saved.partition}); write to a new output, or remove the old one"
            )
        return saved
    size = cfg.videos_per_unit
    units = np.arange(kept.num_rows, dtype=np.int64) // size
    rows = pa.table({"unit": pa.array(units.astype(np.int32)), "video_id": kept.column("video_id"), "url": kept.column("url")},
                    schema=PLAN_SCHEMA)
    plan = Plan(fingerprint=fingerprint, partition=cfg.partition, videos_per_unit=size, n_videos=kept.num_rows,
                n_units=math.ceil(kept.num_rows / size), n_rejected=rejected.num_rows)
    _put_parquet(storage, rows, PLAN_ROWS_FILE)
    _put_parquet(storage, rejected, PLAN_REJECTED_FILE)
    storage.put_bytes(json.dumps(plan.about(), indent=1).encode(), PLAN_FILE)  # last: the plan's commit marker
    return plan


def read_unit_rows(storage, task: UnitTask) -> list[tuple[str, str]]:
    """``(video_id, url)`` of one unit, read from its plan file: only the row groups that
    hold rows ``[start, stop)``."""
    out: list[tuple[str, str]] = []
    with storage.open_random(task.plan_file) as f:
        pf = pq.ParquetFile(f)
        first = 0
        for g in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            lo, hi = max(task.start, first), min(task.stop, first + n)
            if lo < hi:
                t = pf.read_row_group(g, columns=["unit", "video_id", "url"]).slice(lo - first, hi - lo)
                if set(t.column("unit").to_pylist()) != {task.unit}:
                    raise ValueError(f"{task.plan_file}: rows {lo}-{hi} are not all in unit {task.unit}")
                out += zip(t.column("video_id").to_pylist(), t.column("url").to_pylist(), strict=True)
            first += n
    return out


def planned_ids(storage) -> list[str]:
    """Every video id of the manifest's plan, in plan order."""
    with storage.open_random(PLAN_ROWS_FILE) as f:
        return pq.ParquetFile(f).read(columns=["video_id"]).column("video_id").to_pylist()


def read_rejected(storage, limit: int | None = None) -> list[dict]:
    """The manifest rows the plan rejected (``line, reason, value``), the first ``limit``."""
    if not storage.exists(PLAN_REJECTED_FILE):
        return []
    with storage.open_random(PLAN_REJECTED_FILE) as f:
        table = pq.ParquetFile(f).read()
    return (table.slice(0, limit) if limit is not None else table).to_pylist()


def latest_status(storage, units: Iterable[int]) -> dict[str, dict]:
    """Each video's entry from the last committed unit that holds it (retry units come
    after the units they retry)."""
    out: dict[str, dict] = {}
    present = set(storage.list("shard-"))
    for unit in sorted(units):
        files = shard_files(unit)
        if files["index"] in present:
            for v in json.loads(storage.get_bytes(files["stats"]))["per_video"]:
                out[v["video_id"]] = v
    return out


def add_retry_units(plan: Plan, storage) -> list[int]:
    """Give every video whose latest status is failed, and that no pending retry unit
    holds yet, to new units after all existing ones; saved in the plan before any work."""
    tasks = plan.tasks()
    present = set(storage.list("shard-"))
    pending_units = [t for t in tasks if t.plan_file != PLAN_ROWS_FILE and shard_files(t.unit)["index"] not in present]
    pending = {vid for t in pending_units for vid, _ in read_unit_rows(storage, t)}
    failed = sorted(v for v, e in latest_status(storage, [t.unit for t in tasks]).items() if e["status"] != "ok" and v not in pending)
    if not failed:
        return []
    with storage.open_random(PLAN_ROWS_FILE) as f:
        rows = pq.ParquetFile(f).read(columns=["video_id", "url"])
    rows = rows.filter(pc.is_in(rows.column("video_id"), value_set=pa.array(failed, pa.string())))
    rows = rows.take(pc.sort_indices(rows, [("video_id", "ascending")]))
    start = max(t.unit for t in tasks) + 1 if tasks else 0
    size = plan.videos_per_unit
    units = start + np.arange(rows.num_rows, dtype=np.int64) // size
    name = plan_retry_file(len(plan.retries) + 1)
    _put_parquet(storage, pa.table({"unit": pa.array(units.astype(np.int32)), "video_id": rows.column("video_id"),
                                    "url": rows.column("url")}, schema=PLAN_SCHEMA), name)
    n_units = math.ceil(rows.num_rows / size)
    plan.retries.append({"file": name, "first_unit": start, "n_units": n_units, "n_videos": rows.num_rows})
    storage.put_bytes(json.dumps(plan.about(), indent=1).encode(), PLAN_FILE)
    return list(range(start, start + n_units))
