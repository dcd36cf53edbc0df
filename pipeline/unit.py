"""One work unit, start to finish, in one worker process.

:class:`UnitRunner` reads the unit's rows from the plan, downloads its videos on a small
thread pool (network waits overlap; each thread has its own downloader), takes each
downloaded video through subtitles, language ID, alignment, frames (and features) on
the calling thread as soon as it arrives, and writes the unit's tar, index and stats
straight into the dataset's storage, the index last. It returns only a small summary
of the unit. Nothing here knows the executor: the Ray module (pipeline/ray_runner.py)
calls it in its workers, and tests call it directly.

Bounded: at most ``concurrency.download`` videos are downloading or downloaded and
waiting at once; a video's frames wait on local disk (its scratch folder), not in
memory, until the shard is written; the unit's scratch folder is removed at the end.
"""

from __future__ import annotations

import queue
import shutil
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from multihowto.operators.align import AlignTracks
from multihowto.operators.base import Operator
from multihowto.operators.download import DownloadVideo
from multihowto.operators.features import ExtractFeatures
from multihowto.operators.frames import ExtractFrames
from multihowto.operators.langid import LanguageId
from multihowto.operators.shards import ShardCommit
from multihowto.operators.subtitles import ParseSubtitles
from multihowto.pipeline.plan import read_unit_rows
from multihowto.pipeline.storage import open_storage
from multihowto.schemas.config import RegionConfig
from multihowto.schemas.item import UnitTask, VideoItem


def unit_result(stats: dict) -> dict:
    """What a unit sends back to the driver: counts only (a few hundred bytes)."""
    return {
        "unit": stats["unit"],
        "videos": stats["videos"]["total"],
        "ok": stats["videos"]["ok"],
        "failed": stats["videos"]["failed"],
        "clips": stats["clips"],
        "failures": stats["failures"],
        "retries": sum(stats["retries"].values()),
    }


class UnitRunner:
    """Runs units of one region; built once per worker process (models and downloaders
    are set up once and reused for every unit it runs)."""

    def __init__(self, cfg: RegionConfig, scratch_root: str | Path, gate: Callable[[str], None] | None = None,
                 rebase: tuple[str, str] | None = None, node_id: str = ""):
        self.cfg = cfg
        self.node_id = node_id  # recorded in each shard's stats, with the writing process
        self.rebase = rebase  # (planned origin, live origin): a source served anew each run
        self.scratch_root = Path(scratch_root)
        self.storage = open_storage(cfg.output, cfg.s3_endpoint, cfg.s3_region)
        threads = max(1, cfg.concurrency.download)
        self.downloaders: queue.Queue[DownloadVideo] = queue.Queue()
        for _ in range(threads):
            self.downloaders.put(DownloadVideo(cfg.download, cfg.langs, not cfg.source.captions, gate))
        self.threads = threads
        self.stages: list[Operator] = [
            ParseSubtitles(cfg.subtitles, cfg.langs, cfg.source.captions),
            LanguageId(cfg.langid, cfg.langs),
            AlignTracks(cfg.align, cfg.langs),
            ExtractFrames(cfg.frames),
        ]
        if cfg.features.enabled:
            self.stages.append(ExtractFeatures(cfg.features, cfg.frames.fps))

    def _download(self, item: VideoItem) -> VideoItem:
        op = self.downloaders.get()
        try:
            return op.process_one(item)
        finally:
            self.downloaders.put(op)

    def _finish(self, item: VideoItem) -> VideoItem:
        for stage in self.stages:
            item = stage.process_one(item)
        return item

    def run(self, task: UnitTask) -> dict:
        """Run ``task`` and commit its shard; returns :func:`unit_result`."""
        unit_dir = self.scratch_root / f"unit-{task.unit:06d}"
        shutil.rmtree(unit_dir, ignore_errors=True)  # an earlier attempt's leftovers
        committer = ShardCommit(self.cfg.frames.fps, self.storage, unit_dir / "_shard", {"node": self.node_id})
        committer.remove_partial(task.unit)
        try:
            items = []
            for video_id, url in read_unit_rows(self.storage, task):
                if self.rebase and url.startswith(self.rebase[0]):
                    url = self.rebase[1] + url[len(self.rebase[0]):]
                scratch = unit_dir / video_id
                scratch.mkdir(parents=True, exist_ok=True)
                items.append(VideoItem(video_id=video_id, url=url, unit=task.unit, scratch=str(scratch)))
            done: list[VideoItem] = []
            todo = iter(items)
            with ThreadPoolExecutor(self.threads, thread_name_prefix=f"download-{task.unit}") as pool:
                running: set[Future] = set()

                def refill() -> None:
                    while len(running) < self.threads:
                        item = next(todo, None)
                        if item is None:
                            return
                        running.add(pool.submit(self._download, item))

                refill()
                while running:
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        done.append(self._finish(fut.result()))
                    refill()
            return unit_result(committer.commit(task.unit, done))
        finally:
            shutil.rmtree(unit_dir, ignore_errors=True)
