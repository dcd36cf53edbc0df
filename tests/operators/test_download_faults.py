"""The download policy against the sample site's fault modes on 127.0.0.1."""

import collections
import dataclasses

from multihowto.operators.download import DownloadVideo, backoff_delay
from multihowto.sample_site.server import serve
from multihowto.schemas.config import DownloadConfig
from tests.operators.video_items import video


def test_transient_faults_are_retried_permanent_ones_are_not(cfg, small_site, tmp_path):
    faults = {
        "/v/sample-00.html": {"kind": "429", "times": 2, "retry_after": 1},
        "/v/sample-01.html": {"kind": "500", "times": 1},
        "/media/sample-02.mp4": {"kind": "truncate", "times": 1},
        "/v/sample-03.html": {"kind": "500"},  # never recovers
        "/v/sample-04.html": {"kind": "slow", "seconds": 3, "times": 1},
    }
    cfg = dataclasses.replace(cfg, download=DownloadConfig(
        allowed_extractors=("generic", "html5"), retries=3, backoff_base_s=0.05, backoff_max_s=0.2, socket_timeout_s=1.0,
        allowed_networks=("127.0.0.0/8",)))
    op = DownloadVideo(cfg.download, cfg.langs)
    log = []
    with serve(small_site, faults=faults, log=log) as base:
        ids = ["sample-00", "sample-01", "sample-02", "sample-03", "sample-04", "nope"]
        items = {it.video_id: it for it in op.process_batch([video(tmp_path, v, f"{base}v/{v}.html") for v in ids])}
    seen = collections.Counter(path for _, path in log)
    assert items["sample-00"].ok and items["sample-00"].retried == ["http_429", "http_429"]
    assert items["sample-01"].ok and items["sample-01"].retried == ["http_500"]
    assert items["sample-02"].ok and items["sample-02"].retried == ["truncated_body"]
    assert items["sample-04"].ok and items["sample-04"].retried == ["timeout"]
    # a 5xx that never clears: retried `retries` times, then recorded
    assert items["sample-03"].status == "failed" and items["sample-03"].download_attempts == 4
    assert items["sample-03"].failure.reason.startswith("http_500_after_retries")
    # permanent: not retried
    assert items["nope"].download_attempts == 1 and items["nope"].failure.reason.startswith("http_404")
    # one retry layer: the server saw each faulty path exactly 1 + (retries made) times,
    # and download_attempts counts them truthfully
    for vid, path in [("sample-00", "/v/sample-00.html"), ("sample-01", "/v/sample-01.html"),
                      ("sample-02", "/media/sample-02.mp4"), ("sample-03", "/v/sample-03.html"),
                      ("sample-04", "/v/sample-04.html"), ("nope", "/v/nope.html")]:
        assert seen[path] == 1 + len(items[vid].retried) == items[vid].download_attempts, (vid, seen[path])
    assert seen["/v/sample-03.html"] == 4


def test_a_server_that_hangs_up_without_answering_is_retried(cfg, small_site, tmp_path):
    """A connection closed with no answer (a server dropping a kept-alive connection, or
    going away) is transient: retried, and counted, for the video and for a track."""
    faults = {
        "/media/sample-00.mp4": {"kind": "hangup", "times": 1},
        "/subs/sample-00.de.vtt": {"kind": "hangup", "times": 1},
        "/v/sample-01.html": {"kind": "hangup"},  # never answers
    }
    cfg = dataclasses.replace(cfg, download=DownloadConfig(
        allowed_extractors=("generic", "html5"), retries=2, backoff_base_s=0.01, backoff_max_s=0.02,
        allowed_networks=("127.0.0.0/8",)))
    log = []
    with serve(small_site, faults=faults, log=log) as base:
        items = {it.video_id: it for it in DownloadVideo(cfg.download, cfg.langs).process_batch(
            [video(tmp_path, v, f"{base}v/{v}.html") for v in ("sample-00", "sample-01")])}
    ok, gone = items["sample-00"], items["sample-01"]
    assert ok.ok and ok.retried == ["connection_error", "de:connection_error"] and "de" in ok.raw_tracks
    assert gone.status == "failed" and gone.failure.reason == "connection_error_after_retries"
    assert collections.Counter(path for _, path in log)["/v/sample-01.html"] == 3


def test_a_flaky_track_is_retried_alone(cfg, small_site, tmp_path):
    faults = {"/subs/sample-00.fr.vtt": {"kind": "503", "times": 2}, "/subs/sample-00.ru.vtt": {"kind": "500"}}
    cfg = dataclasses.replace(cfg, download=DownloadConfig(
        allowed_extractors=("generic", "html5"), retries=2, backoff_base_s=0.01, backoff_max_s=0.02,
        allowed_networks=("127.0.0.0/8",)))
    log = []
    with serve(small_site, faults=faults, log=log) as base:
        [item] = DownloadVideo(cfg.download, cfg.langs).process_batch([video(tmp_path, "v", f"{base}v/sample-00.html")])
    seen = collections.Counter(path for _, path in log)
    assert item.ok and item.download_attempts == 1
    assert item.retried == ["fr:http_503", "fr:http_503", "ru:http_500", "ru:http_500"]
    assert "fr" in item.raw_tracks and "ru" not in item.raw_tracks
    assert item.track_errors == {"ru": "http_500_after_retries"}
    assert seen["/subs/sample-00.fr.vtt"] == 3 and seen["/subs/sample-00.ru.vtt"] == 3
    assert seen["/v/sample-00.html"] == 1 and seen["/media/sample-00.mp4"] == 1


def test_host_allow_list(cfg, tmp_path):
    cfg = dataclasses.replace(cfg, download=DownloadConfig(allowed_hosts=("127.0.0.1",)))
    [item] = DownloadVideo(cfg.download, cfg.langs).process_batch([video(tmp_path, "x", "http://example.org/v.html")])
    assert item.status == "failed" and item.failure.reason.startswith("host_not_allowed")
    assert item.requests == 0


def test_backoff_grows_and_is_capped():
    import random

    rng = random.Random(0)
    d = [backoff_delay(a, 1.0, 10.0, rng) for a in range(6)]
    assert 0.5 <= d[0] < 1.5 and 4 <= d[3] < 12 and all(x < 15 for x in d)
