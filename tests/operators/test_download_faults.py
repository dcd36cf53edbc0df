"""The download policy against the sample site's fault modes on 127.0.0.1."""

import dataclasses

from multihowto.operators.download import DownloadVideo, backoff_delay
from multihowto.sample_site.server import serve
from multihowto.schemas.config import DownloadConfig
from tests.operators.test_download import video


def test_transient_faults_are_retried_permanent_ones_are_not(cfg, small_site, tmp_path):
    faults = {
        "/v/sample-00.html": {"kind": "429", "times": 2, "retry_after": 1},
        "/v/sample-01.html": {"kind": "500", "times": 1},
        "/media/sample-02.mp4": {"kind": "truncate", "times": 1},
        "/v/sample-03.html": {"kind": "500"},  # never recovers
        "/v/sample-04.html": {"kind": "slow", "seconds": 3, "times": 1},
    }
    cfg = dataclasses.replace(cfg, download=DownloadConfig(
        allowed_extractors=("generic", "html5"), retries=3, backoff_base_s=0.05, backoff_max_s=0.2, socket_timeout_s=1.0))
    op = DownloadVideo(cfg.download, cfg.langs)
    with serve(small_site, faults=faults) as base:
        ids = ["sample-00", "sample-01", "sample-02", "sample-03", "sample-04", "nope"]
        items = {it.video_id: it for it in op.process_batch([video(tmp_path, v, f"{base}v/{v}.html") for v in ids])}
    assert items["sample-00"].ok and items["sample-00"].retried == ["http_429", "http_429"]
    assert items["sample-01"].ok and items["sample-01"].retried == ["http_500"]
    assert items["sample-02"].ok  # a truncated body is fetched again
    assert items["sample-04"].ok and items["sample-04"].retried == ["timeout"]
    # a 5xx that never clears: retried `retries` times, then recorded
    assert items["sample-03"].status == "failed" and items["sample-03"].download_attempts == 4
    assert items["sample-03"].failure.reason == "http_500_after_retries"
    # permanent: not retried
    assert items["nope"].download_attempts == 1 and items["nope"].failure.reason == "http_404"


def test_host_allow_list(cfg, tmp_path):
    cfg = dataclasses.replace(cfg, download=DownloadConfig(allowed_hosts=("127.0.0.1",)))
    [item] = DownloadVideo(cfg.download, cfg.langs).process_batch([video(tmp_path, "x", "http://example.org/v.html")])
    assert item.status == "failed" and item.failure.reason == "host_not_allowed"


def test_backoff_grows_and_is_capped():
    import random

    rng = random.Random(0)
    d = [backoff_delay(a, 1.0, 10.0, rng) for a in range(6)]
    assert 0.5 <= d[0] < 1.5 and 4 <= d[3] < 12 and all(x < 15 for x in d)
