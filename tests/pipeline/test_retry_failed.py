"""--retry-failed re-tries only the failed videos, in new units, adding their clips once."""

import dataclasses
import json
import shutil

import pyarrow.parquet as pq
import pytest

from multihowto.pipeline.inspect_dataset import inspect_dataset
from multihowto.pipeline.run import run_dataset
from multihowto.pipeline.summary import summarise
from multihowto.schemas.config import DownloadConfig, RegionConfig
from tests.conftest import with_site

pytestmark = pytest.mark.slow


def test_retry_failed_adds_the_missing_clips_once(small_site, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(small_site, site)
    (site / "faults.json").write_text(json.dumps({"/v/sample-00.html": {"kind": "500"}}))  # down for the whole run
    cfg = with_site(RegionConfig(output=str(tmp_path / "out"), videos_per_unit=2), site)
    cfg = dataclasses.replace(cfg, download=DownloadConfig(allowed_extractors=("generic", "html5"), retries=1, backoff_base_s=0.01, backoff_max_s=0.05))
    out = tmp_path / "out"
    first = run_dataset(cfg, log=lambda *_: None)
    s = summarise(out)
    assert {v.video_id for v in s.failed_videos} == {"sample-00", "sample-05"}

    (site / "faults.json").unlink()  # the host recovers
    second = run_dataset(cfg, log=lambda *_: None, retry_failed=True)
    assert second.units_done_before == first.units_total and second.units_committed == 1  # both failures, one unit
    s = summarise(out)
    assert s.videos == {"total": 6, "ok": 5, "failed": 1} and s.failures == {"corrupt_video": 1}
    truth = json.loads((site / "truth.json").read_text())
    keys = pq.read_table(sorted(out.glob("shard-*.parquet"))).column("key").to_pylist()
    assert len(keys) == len(set(keys)) == sum(len(t["cues"]) for t in truth.values() if not t["corrupt"])

    third = run_dataset(cfg, log=lambda *_: None, retry_failed=True)  # only the corrupt video is left to retry
    assert third.units_committed == 1 and third.clips == 0
    assert pq.read_table(sorted(out.glob("shard-*.parquet"))).num_rows == len(keys)
    from multihowto.pipeline.manifest import read_manifest
    from multihowto.pipeline.plan import make_plan

    plan_now = make_plan(read_manifest(site / "manifest.csv", cfg.source.url_template, "http://127.0.0.1/"), cfg, out)
    assert plan_now.n_videos == 6  # retried videos are counted once
    plan = json.loads((out / "_plan.json").read_text())
    assert [sorted(ids) for ids in plan["retry_units"].values()] == [["sample-00", "sample-05"], ["sample-05"]]
    assert "videos: 6 planned, 5 ok, 1 failed" in inspect_dataset(out)
