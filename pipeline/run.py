"""``mhowto dataset``: plan, run the stages on Ray, commit shards, write the report.

Resumable by construction: a unit whose parquet index exists is done and skipped;
files of a unit without its index are removed and the unit redone. Downloads never
outlive their video's download stage (operators/download.py).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from multihowto.operators.base import Item
from multihowto.operators.shards import ShardCommit
from multihowto.pipeline.manifest import Manifest, read_manifest
from multihowto.pipeline.plan import add_retry_units, make_plan
from multihowto.pipeline.storage import LocalStorage, open_storage
from multihowto.schemas.config import RegionConfig


@dataclass
class RunSummary:
    units_total: int
    units_done_before: int
    units_committed: int
    videos: int
    clips: int
    seconds: float


@contextlib.contextmanager
def open_source(cfg: RegionConfig) -> Iterator[Manifest]:
    """The region's manifest; for ``sample_site`` the site is built if needed and served
    on 127.0.0.1 for as long as the context is open."""
    src = cfg.source
    if src.kind == "sample_site":
        from multihowto.sample_site.build import build_site
        from multihowto.sample_site.server import serve

        site = build_site(Path(src.site_dir))
        with serve(site) as base_url:
            yield read_manifest(site / "manifest.csv", src.url_template, base_url)
    elif src.manifest.startswith("s3://"):
        folder, _, name = src.manifest.rpartition("/")
        local = Path("build") / "work" / cfg.name / name
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(open_storage(folder, cfg.s3_endpoint, cfg.s3_region).get_bytes(name))
        yield read_manifest(local, src.url_template)
    else:
        yield read_manifest(src.manifest, src.url_template)


def local_root(cfg: RegionConfig, storage) -> Path:
    """Where downloads and temporary shard files go: inside a local output, else under
    build/work/{region} (S3 outputs)."""
    return storage.root if isinstance(storage, LocalStorage) else Path("build") / "work" / cfg.name


def run_dataset(cfg: RegionConfig, log=print, retry_failed: bool = False) -> RunSummary:
    """Run the region's plan; ``retry_failed`` first gives the videos that failed in
    committed units to new retry units (their clips are added, none doubled)."""
    started = time.perf_counter()
    storage = open_storage(cfg.output, cfg.s3_endpoint, cfg.s3_region)
    local = local_root(cfg, storage)
    work_dir = local / "_work"
    committer = ShardCommit(cfg, storage, local / ".tmp")
    with open_source(cfg) as manifest:
        plan = make_plan(manifest, cfg, storage)
        if retry_failed:
            new = add_retry_units(plan, storage, cfg.videos_per_unit)
            log(f"[retry] {sum(len(plan.units[u]) for u in new)} failed videos in {len(new)} new units")
        done = [u for u in plan.units if committer.is_committed(u)]
        todo = {u: rows for u, rows in plan.units.items() if u not in done}
        log(
            f"[plan] {plan.n_videos} videos in {len(plan.units)} units; "
            f"{len(done)} already committed, {len(todo)} to do; "
            f"{len(plan.rejected)} manifest rows rejected"
        )
        committed, clips, n_videos = 0, 0, sum(len(r) for r in todo.values())
        if todo:
            for unit in todo:
                committer.remove_partial(unit)
            from multihowto.pipeline.ray_runner import run_items

            pending: dict[int, list[Item]] = {u: [] for u in todo}
            items = [
                {"video_id": r["video_id"], "url": r["url"], "unit": u, "status": "ok"}
                for u, rows in todo.items()
                for r in rows
            ]
            bar = tqdm(total=len(items), desc="videos", unit="video", dynamic_ncols=True)

            def on_item(item: Item) -> None:
                nonlocal committed, clips
                unit = item["unit"]
                pending[unit].append(item)
                bar.update(1)
                if len(pending[unit]) == len(todo[unit]):
                    stats = committer.commit(unit, pending.pop(unit))
                    committed += 1
                    clips += stats["clips"]
                    bar.set_postfix(units=f"{committed}/{len(todo)}", clips=clips)

            run_items(items, cfg, str(work_dir), on_item)
            bar.close()
            if pending:
                raise RuntimeError(f"units never completed: {sorted(pending)}")
    shutil.rmtree(local / ".tmp", ignore_errors=True)
    shutil.rmtree(work_dir, ignore_errors=True)
    return RunSummary(
        units_total=len(plan.units),
        units_done_before=len(done),
        units_committed=committed,
        videos=n_videos,
        clips=clips,
        seconds=round(time.perf_counter() - started, 1),
    )
