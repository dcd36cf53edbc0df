"""S3 output through boto3 against moto's S3-compatible server on 127.0.0.1 (a real
HTTP connection with real request signing)."""

import dataclasses

import pytest

from multihowto.operators.shards import ShardCommit
from multihowto.pipeline.inspect_dataset import inspect_dataset
from multihowto.pipeline.report import publish_report
from multihowto.pipeline.run import run_dataset
from multihowto.pipeline.storage import S3Storage
from multihowto.schemas.config import RegionConfig
from tests.conftest import with_site

pytestmark = pytest.mark.slow


def test_pipeline_writes_to_s3_and_reads_back(s3, small_site, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # build/work/{region} lands here
    cfg = with_site(RegionConfig(name="s3test", output="s3://mhowto/datasets/run1", s3_endpoint=s3, videos_per_unit=3), small_site)
    summary = run_dataset(cfg, log=lambda *_: None)
    storage = S3Storage(cfg.output, s3)
    names = storage.list()
    assert "_plan.json" in names
    indexes = [n for n in names if n.endswith(".parquet")]
    assert len(indexes) == summary.units_total and all(n.replace(".parquet", ".tar") in names for n in indexes)
    card = publish_report(storage, cfg.name)
    assert "wrong_language" in card and storage.exists("README.md") and storage.exists("how2_en.json")
    text = inspect_dataset("s3://mhowto/datasets/run1")
    assert "dataset: s3://mhowto/datasets/run1" in text and "corrupt_video: 1" in text and "  en: " in text
    # the card and inspect read the remote dataset directly: nothing copied under ./build
    assert not (tmp_path / "build" / "report").exists() and not (tmp_path / "build" / "inspect").exists()
    assert storage.exists("_report/failures.png") and "sample-05" in storage.get_bytes("README.md").decode()
    again = run_dataset(cfg, log=lambda *_: None)
    assert again.units_committed == 0 and again.units_done_before == summary.units_total


def test_a_failure_mid_upload_leaves_no_partial_shard(s3, cfg, tmp_path):
    """A multipart upload of a shard that fails at its second part leaves nothing
    visible: no tar, no index, no open multipart upload; a retry commits it."""
    storage = S3Storage("s3://mhowto/fail", s3, multipart_mb=5)
    big = bytes(range(256)) * (48 * 1024)  # 12 MiB of frames: three 5 MiB parts
    item = {
        "video_id": "big", "status": "ok", "pivot": "en", "tracks": {}, "lid": {}, "missing_langs": {},
        "clips": [{"index": 0, "start": 0.0, "end": 1.0, "texts": {"en": "x"}, "confidence": {"en": 1.0}}],
        "clip_frames": [big], "clip_frame_counts": [1],
    }
    parts = []

    def fail_second_part(params, **kwargs):
        parts.append(params["PartNumber"])
        if params["PartNumber"] == 2:
            raise ConnectionError("injected: connection lost during part 2")

    storage.client.meta.events.register("before-parameter-build.s3.UploadPart", fail_second_part)
    commit = ShardCommit(dataclasses.replace(cfg), storage, tmp_path / "tmp")
    with pytest.raises(Exception, match="injected"):
        commit.commit(0, [item])
    assert 2 in parts
    assert storage.list() == []
    assert not storage.client.list_multipart_uploads(Bucket="mhowto").get("Uploads")
    assert not commit.is_committed(0)
    storage.client.meta.events.unregister("before-parameter-build.s3.UploadPart", fail_second_part)
    commit.commit(0, [item])
    assert commit.is_committed(0) and storage.list() == ["shard-000000.parquet", "shard-000000.stats.json", "shard-000000.tar"]
