"""Shared fixtures: a small sample site built once per session and served on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from multihowto.sample_site.build import build_site
from multihowto.sample_site.server import serve
from multihowto.sample_site.spec import SiteSpec
from multihowto.schemas.config import RegionConfig, SourceConfig

DATA = Path(__file__).parent / "data"

# Property tests: bounded in `make test`; `make fuzz` runs the long profile.
settings.register_profile("ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Six videos carrying every defect: 1 rolling ASR English, 3 a German track in French,
# 4 without sw and cs, 5 a corrupt mp4.
SMALL_SITE = SiteSpec(
    n_videos=6,
    cues_per_video=(5, 7),
    rolling_en=(1,),
    wrong_language=(3, "de", "fr"),
    missing_langs=(4, ("sw", "cs")),
    corrupt_video=5,
)


@pytest.fixture(scope="session")
def small_site(tmp_path_factory) -> Path:
    return build_site(tmp_path_factory.mktemp("site"), SMALL_SITE)


@pytest.fixture()
def site_url(small_site):
    with serve(small_site) as base:
        yield base


@pytest.fixture()
def cfg(tmp_path) -> RegionConfig:
    return RegionConfig(output=str(tmp_path / "out"))


def with_site(cfg: RegionConfig, site: Path, **changes) -> RegionConfig:
    return dataclasses.replace(cfg, source=SourceConfig(kind="sample_site", site_dir=str(site)), **changes)


@pytest.fixture(scope="session")
def built_dataset(small_site, tmp_path_factory):
    """The small site run once through the whole chain on local Ray:
    (config, output folder, run summary)."""
    import ray

    from multihowto.pipeline.run import run_dataset

    out = tmp_path_factory.mktemp("ds") / "local"
    cfg = with_site(RegionConfig(output=str(out), videos_per_unit=2), small_site)
    summary = run_dataset(cfg, log=lambda *_: None)
    yield cfg, out, summary
    ray.shutdown()


@pytest.fixture(scope="module")
def s3():
    """moto's S3-compatible server on 127.0.0.1 with a bucket ``mhowto``; boto3 reaches it
    through the environment (AWS_ENDPOINT_URL), DataLoader workers included."""
    import os

    import boto3
    import ray
    from moto.server import ThreadedMotoServer

    # Ray workers read S3 themselves now: a Ray left running by an earlier test would not
    # have these credentials in its environment, so the next run starts a new one.
    ray.shutdown()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="mhowto")
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
