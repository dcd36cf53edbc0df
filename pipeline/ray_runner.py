"""The one module that talks to Ray.

Each pool of Ray Data actors (``map_batches`` with a callable class) hosts one or more
operators in turn, with its own concurrency: by default many download actors that also
parse, check and align the subtitles, and one frame actor per core
(``concurrency.fuse`` in schemas/config.py sets the layout). Items stream through as a
single object column ``item``; the driver receives finished items in completion order
and hands each to a callback.
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

Step = tuple[type[Operator], tuple]  # an operator class and its constructor args


class _OperatorActor:
    """A Ray Data callable class hosting a chain of operators, each item through them in
    turn (each records its own timing and failures); ``setup`` runs once per actor."""

    def __init__(self, *steps: Step):
        self.ops = [op_cls(*args) for op_cls, args in steps]

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = list(batch["item"])
        for op in self.ops:
            items = op.process_batch(items)
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


Pool = tuple[tuple[Step, ...], int, float]  # the operators an actor runs in turn, actors, CPUs per actor


def stage_plan(cfg: RegionConfig, work_dir: str, cpus: int) -> list[Pool]:
    """The actor pools of a run, in order (see ``ConcurrencyConfig.fuse``)."""
    c = cfg.concurrency
    frame_actors = c.frames or max(1, cpus)
    download = (DownloadVideo, (cfg, work_dir))
    light = [(ParseSubtitles, (cfg,)), (LanguageId, (cfg,)), (AlignTracks, (cfg,))]
    frames = (ExtractFrames, (cfg,))
    features = [(ExtractFeatures, (cfg,))] if cfg.features.enabled else []
    if c.fuse == "all":
        return [((download, *light, frames, *features), frame_actors, 1.0)]
    if c.fuse == "light":
        pools = [((download, *light), c.download, 0.25), ((frames,), frame_actors, 1.0)]
    else:
        pools = [((download,), c.download, 0.1), ((light[0],), c.subtitles, 0.1), ((light[1],), c.langid, 0.25),
                 ((light[2],), c.align, 0.1), ((frames,), frame_actors, 1.0)]
    return pools + [((step,), 1, 1.0) for step in features]


def run_stages(items: list[Item], pools: list[Pool], on_item: Callable[[Item], None], address: str = "local") -> None:
    """Stream ``items`` through ``pools`` (the operators each actor runs in turn, actors,
    CPUs per actor), each an actor pool; ``on_item`` gets each finished item."""
    import ray

    init_ray(address)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = True
    ctx.verbose_progress = False
    ds = ray.data.from_items([{"item": it} for it in items], override_num_blocks=max(1, len(items)))
    for steps, actors, num_cpus in pools:
        ds = ds.map_batches(
            _OperatorActor,
            fn_constructor_args=steps,
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
    run_stages(items, stage_plan(cfg, work_dir, cluster_cpus(cfg.ray_address)), on_item, cfg.ray_address)
