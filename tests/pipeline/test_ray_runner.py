"""The actor pools a run asks Ray for, by ``concurrency.fuse``."""

import dataclasses

import pytest

from multihowto.pipeline.ray_runner import stage_plan
from multihowto.schemas.config import (
    ConcurrencyConfig,
    ConfigError,
    FeaturesConfig,
    RegionConfig,
    validate,
)


def names(pools):
    return [([op.name for op, _ in steps], actors, cpus) for steps, actors, cpus in pools]


def test_each_layout_puts_the_stages_in_their_pools():
    cfg = RegionConfig(concurrency=ConcurrencyConfig(download=6, subtitles=2, langid=3, align=1, frames=0))
    assert names(stage_plan(cfg, "/tmp/w", cpus=4)) == [
        (["download", "subtitles", "langid", "align"], 6, 0.25), (["frames"], 4, 1.0)]
    fused = dataclasses.replace(cfg, concurrency=dataclasses.replace(cfg.concurrency, fuse="all", frames=3))
    assert names(stage_plan(fused, "/tmp/w", cpus=4)) == [(["download", "subtitles", "langid", "align", "frames"], 3, 1.0)]
    apart = dataclasses.replace(cfg, concurrency=dataclasses.replace(cfg.concurrency, fuse="none"))
    assert [(n, a) for n, a, _ in names(stage_plan(apart, "/tmp/w", cpus=4))] == [
        (["download"], 6), (["subtitles"], 2), (["langid"], 3), (["align"], 1), (["frames"], 4)]
    with_features = dataclasses.replace(fused, features=FeaturesConfig(enabled=True, model_path="m.pt"))
    assert names(stage_plan(with_features, "/tmp/w", cpus=4))[0][0][-1] == "features"


def test_an_unknown_layout_is_refused():
    with pytest.raises(ConfigError, match="concurrency.fuse"):
        validate(RegionConfig(concurrency=ConcurrencyConfig(fuse="some")))
