"""``mhowto dataset``: plan, dispatch the units, watch them commit, write the report.

The driver only plans and counts: each unit is run and committed by a worker
(pipeline/unit.py, on Ray through pipeline/ray_runner.py), which sends back a few
hundred bytes of counts. Resumable by construction: a unit whose parquet index exists
is done and skipped; a unit without its index is redone by the worker that takes it
(which first removes what an earlier attempt left).

One run at a time holds an output (pipeline/lease.py). An output must be empty or a
dataset of ours (it holds our ``_plan.json``): nothing else in it is ever touched. Each
run's scratch files live in a folder of their own, outside the output.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from multihowto.operators.download import allow_origin
from multihowto.pipeline.lease import OutputLease
from multihowto.pipeline.manifest import check_manifest
from multihowto.pipeline.plan import add_retry_units, make_plan
from multihowto.pipeline.storage import LocalStorage, is_temporary_of, locate, open_storage
from multihowto.schemas.config import RegionConfig
from multihowto.schemas.index import LEASE_FILE, PLAN_FILE, shard_files


@dataclass
class RunSummary:
    units_total: int
    units_done_before: int
    units_committed: int
    videos: int
    clips: int
    seconds: float
    units_failed: dict[int, str] = field(default_factory=dict)  # unit -> error (not committed)
    failures: Counter = field(default_factory=Counter)
    driver_bytes: int = 0  # what the driver received from the workers, pickled


class OutputNotOurs(RuntimeError):
    """The output folder holds files but no dataset of ours."""


# The sample site is served on a new port each run, so its pages are planned under this
# stable origin (a reserved name that never resolves) and fetched from the live one.
SITE_ORIGIN = "http://sample-site.invalid/"


@dataclass(frozen=True)
class Source:
    manifest: str  # a local manifest file
    base_url: str  # relative URLs in the manifest are joined to it when planning
    cfg: RegionConfig  # the profile, with what serving the source adds (the site's address)
    live_base: str = ""  # where ``base_url`` is served in this run (the sample site)


@contextlib.contextmanager
def open_source(cfg: RegionConfig) -> Iterator[Source]:
    """The region's manifest; for ``sample_site`` the site is built if needed and served
    on 127.0.0.1 for as long as the context is open, and its address is allowed."""
    src = cfg.source
    if src.kind == "sample_site":
        from multihowto.sample_site.build import build_site
        from multihowto.sample_site.server import serve

        site = build_site(Path(src.site_dir))
        with serve(site) as base_url:
            live = dataclasses.replace(cfg, download=allow_origin(cfg.download, base_url))
            yield Source(str(site / "manifest.csv"), SITE_ORIGIN, live, base_url)
    elif src.manifest.startswith("s3://"):
        storage, name = locate(src.manifest, cfg.s3_endpoint, cfg.s3_region)
        with tempfile.TemporaryDirectory(prefix="mhowto-manifest-") as tmp:
            local = Path(tmp) / name
            with storage.open_read(name) as body, open(local, "wb") as f:
                shutil.copyfileobj(body, f)  # streamed: a manifest of millions of rows never sits in memory
            check_manifest(local)
            yield Source(str(local), "", cfg)
    else:
        yield Source(src.manifest, "", cfg)


def check_output(storage, ours: tuple[str, ...] = ()) -> None:
    """Refuse an output that holds files but no plan of ours: its files are the user's.
    ``ours``: names the caller itself put there (the recipe's stamp)."""
    if storage.exists(PLAN_FILE):
        return

    def mine(name: str) -> bool:  # the caller's files, and a lease (or its temporary) a killed run left
        return name in ours or name == LEASE_FILE or is_temporary_of(name, LEASE_FILE)

    if isinstance(storage, LocalStorage):
        present = sorted(p.name for p in storage.root.iterdir() if not mine(p.name))[:5]
    else:
        present = [n for n in storage.list("") if not mine(n)][:5]
    if present:
        raise OutputNotOurs(
            f"{storage.uri} is not empty and holds no {PLAN_FILE} of a multihowto dataset "
            f"(found: {', '.join(present)}); choose an empty or new output"
        )


def scratch_root(run_id: str) -> str:
    """The run's own scratch folder, on each worker's local disk."""
    return str(Path(tempfile.gettempdir()) / "mhowto-scratch" / run_id)


def run_dataset(cfg: RegionConfig, log=print, retry_failed: bool = False, progress: bool = True,
                ours: tuple[str, ...] = ()) -> RunSummary:
    """Run the region's plan; ``retry_failed`` first gives the videos that failed in
    committed units to new retry units (their clips are added, none doubled). ``ours``:
    files the caller put in the output before the first run (see ``check_output``)."""
    from multihowto.pipeline import ray_runner

    started = time.perf_counter()
    if cfg.source.kind == "manifest" and not cfg.source.manifest.startswith("s3://"):
        check_manifest(cfg.source.manifest)  # a bad manifest is refused before anything is created
    storage = open_storage(cfg.output, cfg.s3_endpoint, cfg.s3_region)
    check_output(storage, ours)
    with OutputLease(storage) as lease, open_source(cfg) as source:
        if lease.taken_from:  # a dead run's scratch on this node goes with its lease
            shutil.rmtree(scratch_root(lease.taken_from), ignore_errors=True)
        cfg = source.cfg
        plan = make_plan(source.manifest, cfg, storage, source.base_url)
        if retry_failed:
            new = add_retry_units(plan, storage)
            log(f"[retry] {plan.retries[-1]['n_videos'] if new else 0} failed videos in {len(new)} new units")
        tasks = plan.tasks()
        present = set(storage.list("shard-"))
        todo = [t for t in tasks if shard_files(t.unit)["index"] not in present]
        done_before = len(tasks) - len(todo)
        log(
            f"[plan] {plan.n_videos} videos in {len(tasks)} units; {done_before} already committed, "
            f"{len(todo)} to do; {plan.n_rejected} manifest rows rejected"
        )
        summary = RunSummary(units_total=len(tasks), units_done_before=done_before, units_committed=0,
                             videos=sum(t.stop - t.start for t in todo), clips=0, seconds=0.0)
        if not tasks:
            log("[plan] the manifest holds no video for this region: nothing to do")
        if todo:
            bar = tqdm(total=summary.videos, desc="videos", unit="video", dynamic_ncols=True, disable=not progress)

            def on_result(task, result, error) -> None:
                if lease.lost.is_set():
                    raise RuntimeError(f"{storage.uri}: another run took the output's lease; stopping")
                if result is None:
                    summary.units_failed[task.unit] = error
                    bar.update(task.stop - task.start)
                else:
                    summary.units_committed += 1
                    summary.clips += result["clips"]
                    summary.failures.update(result["failures"])
                    bar.update(result["videos"])
                bar.set_postfix(units=f"{summary.units_committed}/{len(todo)}", clips=summary.clips,
                                failed=sum(summary.failures.values()), refresh=False)

            run_id = lease.run_id
            try:
                rebase = (source.base_url, source.live_base) if source.live_base else None
                received = ray_runner.run_units(cfg, todo, run_id, scratch_root(run_id), on_result, rebase)
            finally:
                bar.close()
                shutil.rmtree(scratch_root(run_id), ignore_errors=True)
            summary.driver_bytes = received["bytes"]
    summary.seconds = round(time.perf_counter() - started, 1)
    return summary
