"""Every video's download is bounded in time and bytes (#14.5, #14.6), against servers
that trickle, send no length, lie about it or inflate."""

from __future__ import annotations

import dataclasses

import pytest

from multihowto.operators.base import StageError
from multihowto.operators.download import Downloader
from multihowto.sample_site.server import serve
from multihowto.schemas.config import DownloadConfig
from tests.operators.video_items import page, small_site_copy

MB = 1 << 20
CFG = DownloadConfig(allowed_extractors=("generic", "html5"), allowed_networks=("127.0.0.0/8",), retries=2,
                     backoff_base_s=0.01, backoff_max_s=0.02, socket_timeout_s=5.0, deadline_s=2.0,
                     max_filesize=MB, max_track_bytes=64 << 10)


@pytest.fixture()
def site(small_site, tmp_path):
    root = small_site_copy(small_site, tmp_path / "site")
    for name in ("trickle", "nolength", "liar", "bomb", "huge"):
        (root / f"{name}.html").write_text(page(f"media/{name}.mp4", {"en": "subs/en.vtt"}))
    (root / "tracks.html").write_text(page("media/v.mp4", {"en": "subs/en.vtt", "de": "subs/big.vtt", "fr": "subs/fr.vtt"}))
    return root


FAULTS = {
    "/media/trickle.mp4": {"kind": "trickle", "bytes": 1000, "interval": 0.5},
    "/media/nolength.mp4": {"kind": "nolength", "bytes": 3 * MB},
    "/media/liar.mp4": {"kind": "length", "declared": 10 * MB, "bytes": 1000},  # claims more than it sends
    "/media/bomb.mp4": {"kind": "gzip_bomb", "bytes": 3 * MB},  # a few KB on the wire
    "/media/huge.mp4": {"kind": "length", "declared": 5 * 1024**3, "bytes": 0},
    "/subs/big.vtt": {"kind": "nolength", "bytes": MB, "content_type": "text/vtt"},
}


def fetch(cfg: DownloadConfig, url: str, tmp_path, langs=("en",)):
    d = Downloader(cfg, langs, fetch_subtitles=True)
    d.setup()
    return d, d.fetch(url, "v", tmp_path / "scratch")


def test_a_trickling_server_meets_the_deadline(site, tmp_path):
    log = []
    with serve(site, faults=FAULTS, log=log) as base:
        with pytest.raises(StageError) as e:
            fetch(CFG, f"{base}trickle.html", tmp_path)
    assert e.value.reason == "timeout"  # not retried: the deadline is the video's
    assert [p for _, p in log] == ["/trickle.html", "/media/trickle.mp4"]


def test_a_body_without_length_is_cut_at_the_cap(site, tmp_path):
    with serve(site, faults=FAULTS) as base:
        with pytest.raises(StageError) as e:
            fetch(dataclasses.replace(CFG, deadline_s=60.0), f"{base}nolength.html", tmp_path)
    assert e.value.reason == "file_too_large"
    part = list((tmp_path / "scratch").glob("*"))
    assert sum(p.stat().st_size for p in part) <= MB  # nothing past the cap was kept


def test_a_declared_length_over_the_cap_is_refused_before_reading(site, tmp_path):
    log = []
    with serve(site, faults=FAULTS, log=log) as base:
        for name in ("huge", "liar"):
            with pytest.raises(StageError) as e:
                fetch(dataclasses.replace(CFG, deadline_s=60.0), f"{base}{name}.html", tmp_path)
            assert e.value.reason == "file_too_large" and "Content-Length" in e.value.detail
    assert [p for _, p in log].count("/media/huge.mp4") == 1  # permanent: not retried


def test_a_gzip_bomb_is_cut_at_the_cap_as_it_inflates(site, tmp_path):
    with serve(site, faults=FAULTS) as base:
        with pytest.raises(StageError) as e:
            fetch(dataclasses.replace(CFG, deadline_s=60.0), f"{base}bomb.html", tmp_path)
    assert e.value.reason == "file_too_large" and "more than" in e.value.detail


def test_an_oversized_track_loses_its_language_only(site, tmp_path):
    with serve(site, faults=FAULTS) as base:
        _, res = fetch(dataclasses.replace(CFG, deadline_s=60.0), f"{base}tracks.html", tmp_path, langs=("en", "de", "fr"))
    assert set(res.tracks) == {"en", "fr"} and res.track_errors == {"de": "file_too_large"}
    assert res.video_path.stat().st_size > 1000


def test_a_trickling_track_ends_the_video_at_the_deadline(site, tmp_path):
    faults = {"/subs/fr.vtt": {"kind": "trickle", "bytes": 1000, "interval": 0.5}}
    with serve(site, faults=faults) as base:
        with pytest.raises(StageError) as e:
            fetch(CFG, f"{base}tracks.html", tmp_path, langs=("en", "fr"))
    assert e.value.reason == "timeout"


def test_the_deadline_holds_through_an_http_proxy(site, tmp_path):
    """The proxy (a loopback server answering every proxied request by trickling) is
    where the bytes come from; the allow-list still names the origin."""
    log = []
    with serve(site, faults={"http://": {"kind": "trickle", "bytes": 1000, "interval": 0.5}}, log=log) as proxy:
        cfg = dataclasses.replace(CFG, proxy=proxy, allowed_hosts=("videos.example",), allowed_networks=())
        with pytest.raises(StageError) as e:
            fetch(cfg, "http://videos.example/v.mp4", tmp_path)
    assert e.value.reason == "timeout"
    assert log and all(path.startswith("http://videos.example/") for _, path in log)
