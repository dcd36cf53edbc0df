"""The one module that talks to Ray.

Each operator runs as a pool of Ray Data actors (``map_batches`` with a callable class),
with its own concurrency: many light download actors, one frame actor per core. Items
stream through as a single object column ``item``; the driver receives finished items
in completion order and hands each to a callback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np

from multihowto.operators.align import AlignTracks
from multihowto.operators.base import Item, Operator
from multihowto.operators.download import DownloadVideo
from multihowto.operators.features import ExtractFeatures
from multihowto.operators.frames import ExtractFrames
from multihowto.operators.langid import LanguageId
from multihowto.operators.subtitles import ParseSubtitles
from multihowto.schemas.config import RegionConfig


class _OperatorActor:
    """A Ray Data callable class hosting one operator; ``setup`` runs once per actor."""

    def __init__(self, op_cls: type[Operator], *args):
        self.op = op_cls(*args)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = self.op.process_batch(list(batch["item"]))
        column = np.empty(len(items), dtype=object)
        column[:] = items
        return {"item": column}


def init_ray(address: str) -> None:
    import ray

    if ray.is_initialized():
        return
    env = {"env_vars": {"PYTHONWARNINGS": "ignore"}}
    if address in ("", "local"):
        ray.init(
            address="local",  # always a new instance: never join a cluster left by `ray start`
            num_cpus=os.cpu_count(),
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
            runtime_env=env,
        )
    else:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False, runtime_env=env)


Stage = tuple[type[Operator], tuple, int, float]  # operator class, constructor args, actors, CPUs per actor


def stage_plan(cfg: RegionConfig, work_dir: str, cpus: int) -> list[Stage]:
    """(operator class, constructor args, actors, CPUs per actor) for each stage."""
    c = cfg.concurrency
    stages = [
        (DownloadVideo, (cfg, work_dir), c.download, 0.1),
        (ParseSubtitles, (cfg,), c.subtitles, 0.1),
        (LanguageId, (cfg,), c.langid, 0.25),
        (AlignTracks, (cfg,), c.align, 0.1),
        (ExtractFrames, (cfg,), c.frames or max(1, cpus), 1.0),
    ]
    if cfg.features.enabled:
        stages.append((ExtractFeatures, (cfg,), 1, 1.0))
    return stages


def run_stages(items: list[Item], stages: list[Stage], on_item: Callable[[Item], None], address: str = "local") -> None:
    """Stream ``items`` through ``stages`` (operator class, constructor args, actors,
    CPUs per actor), each an actor pool; ``on_item`` gets each finished item."""
    import ray

    init_ray(address)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = True
    ctx.verbose_progress = False
    ds = ray.data.from_items([{"item": it} for it in items], override_num_blocks=max(1, len(items)))
    for op_cls, args, actors, num_cpus in stages:
        ds = ds.map_batches(
            _OperatorActor,
            fn_constructor_args=(op_cls, *args),
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=num_cpus,
        )
    for row in ds.iter_rows():
        on_item(row["item"])


def cluster_cpus(address: str = "local") -> int:
    import ray

    init_ray(address)
    return int(ray.cluster_resources().get("CPU", 1))


def run_items(items: list[Item], cfg: RegionConfig, work_dir: str, on_item: Callable[[Item], None]) -> None:
    """Run every stage of the pipeline over ``items`` on Ray."""
    stages = stage_plan(cfg, work_dir, cluster_cpus(cfg.ray_address))
    run_stages(items, stages, on_item, cfg.ray_address)
