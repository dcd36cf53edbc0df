"""yt-dlp against the sample site on 127.0.0.1: the video and all its tracks."""

import dataclasses

import pytest

from multihowto.operators.download import DownloadVideo, classify_download_error
from multihowto.schemas.sample import LANGS


@pytest.fixture()
def cfg(cfg):
    """The shared config, allowed to reach the loopback site (refused by default)."""
    return dataclasses.replace(cfg, download=dataclasses.replace(cfg.download, allowed_networks=("127.0.0.0/8",)))


def test_loopback_is_refused_unless_allowed(cfg, site_url, tmp_path):
    cfg = dataclasses.replace(cfg, download=dataclasses.replace(cfg.download, allowed_networks=()))
    [item] = DownloadVideo(cfg, str(tmp_path / "work")).process_batch([{"video_id": "sample-00", "url": site_url + "v/sample-00.html"}])
    assert item["status"] == "failed" and item["error"].startswith("host_not_allowed")
    assert item["download_requests"] == 0


def test_downloads_video_and_every_track(cfg, site_url, tmp_path):
    op = DownloadVideo(cfg, str(tmp_path / "work"))
    [item] = op.process_batch([{"video_id": "sample-00", "url": site_url + "v/sample-00.html"}])
    assert item["status"] == "ok", item.get("error")
    assert item["video_ext"] == ".mp4" and item["video_bytes"][4:8] == b"ftyp"  # a real mp4
    assert set(item["subtitles"]) == set(LANGS)
    assert item["subtitles"]["zh"]["format"] == "vtt" and item["subtitles"]["zh"]["data"].startswith(b"WEBVTT")
    assert item["info"]["extractor"] == "html5"
    assert item["subtitle_kinds"]["de"] == "manual" and item["subtitle_tags"]["de"] == "de"
    assert item["track_errors"] == {} and item["download_attempts"] == 1 and item["retried"] == []
    assert item["download_requests"] == 1 + 1 + len(LANGS)  # page, video, one per track
    assert not (tmp_path / "work" / "sample-00").exists()  # nothing left on this node's disk


def test_missing_languages_are_simply_absent(cfg, site_url, tmp_path):
    op = DownloadVideo(cfg, str(tmp_path / "work"))
    [item] = op.process_batch([{"video_id": "sample-04", "url": site_url + "v/sample-04.html"}])
    assert set(LANGS) - set(item["subtitles"]) == {"sw", "cs"}


def test_not_found_is_recorded(cfg, site_url, tmp_path):
    op = DownloadVideo(cfg, str(tmp_path / "work"))
    [item] = op.process_batch([{"video_id": "nope", "url": site_url + "v/nope.html"}])
    assert item["status"] == "failed" and item["failed_at"] == "download"
    assert item["error"].startswith("http_404")
    assert "127.0.0.1" not in item["error"]  # URLs are stripped from recorded errors
    assert not (tmp_path / "work" / "nope").exists()  # a failed download leaves no files either


def test_error_classification():
    assert classify_download_error("ERROR: HTTP Error 429: Too Many Requests").transient
    assert classify_download_error("ERROR: HTTP Error 503: oops").reason == "http_503"
    assert classify_download_error("ERROR: [youtube] x: Private video").reason == "private"
    assert not classify_download_error("ERROR: Video unavailable").transient
    assert classify_download_error("read timed out").reason == "timeout"


def test_one_actor_many_videos_keeps_files_apart(cfg, site_url, small_site, tmp_path):
    def small_site_truth():
        import json

        return json.loads((small_site / "truth.json").read_text())

    op = DownloadVideo(cfg, str(tmp_path / "work"))
    items = op.process_batch([
        {"video_id": "first", "url": site_url + "v/sample-00.html"},
        {"video_id": "gone", "url": site_url + "v/missing.html"},
        {"video_id": "second", "url": site_url + "v/sample-04.html"},
    ])
    assert [i["status"] for i in items] == ["ok", "failed", "ok"]
    site = small_site_truth()
    assert len(items[0]["video_bytes"]) != len(items[2]["video_bytes"])  # each its own file
    assert items[0]["subtitles"]["en"]["data"] != items[2]["subtitles"]["en"]["data"]
    assert site["sample-00"]["cues"][0]["texts"]["de"].encode() in items[0]["subtitles"]["de"]["data"]
    assert len(items[2]["subtitles"]) == 7
