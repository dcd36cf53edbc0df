"""yt-dlp against the sample site on 127.0.0.1: the video and all its tracks."""

import dataclasses
from pathlib import Path

import pytest

from multihowto.operators.download import DownloadVideo, classify_download_error
from multihowto.schemas.sample import LANGS
from tests.operators.video_items import video


@pytest.fixture()
def cfg(cfg):
    """The shared config, allowed to reach the loopback site (refused by default)."""
    return dataclasses.replace(cfg, download=dataclasses.replace(cfg.download, allowed_networks=("127.0.0.0/8",)))


def test_loopback_is_refused_unless_allowed(cfg, site_url, tmp_path):
    cfg = dataclasses.replace(cfg, download=dataclasses.replace(cfg.download, allowed_networks=()))
    [item] = DownloadVideo(cfg.download, cfg.langs).process_batch([video(tmp_path, "sample-00", site_url + "v/sample-00.html")])
    assert item.status == "failed" and item.failure.reason.startswith("host_not_allowed")
    assert item.requests == 0


def test_downloads_video_and_every_track(cfg, site_url, tmp_path):
    op = DownloadVideo(cfg.download, cfg.langs)
    [item] = op.process_batch([video(tmp_path, "sample-00", site_url + "v/sample-00.html")])
    assert item.ok, item.failure
    assert Path(item.video_path).suffix == ".mp4" and Path(item.video_path).read_bytes()[4:8] == b"ftyp"  # a real mp4
    assert set(item.raw_tracks) == set(LANGS)
    assert item.raw_tracks["zh"].format == "vtt" and item.raw_tracks["zh"].data.startswith(b"WEBVTT")
    assert item.info["extractor"] == "html5"
    assert item.raw_tracks["de"].kind == "manual" and item.raw_tracks["de"].tag == "de"
    assert item.track_errors == {} and item.download_attempts == 1 and item.retried == []
    assert item.requests == 1 + 1 + len(LANGS)  # page, video, one per track
    assert [p.name for p in item.scratch_dir.iterdir()] == ["video.mp4"]  # the video waits for the frame stage


def test_missing_languages_are_simply_absent(cfg, site_url, tmp_path):
    op = DownloadVideo(cfg.download, cfg.langs)
    [item] = op.process_batch([video(tmp_path, "sample-04", site_url + "v/sample-04.html")])
    assert set(LANGS) - set(item.raw_tracks) == {"sw", "cs"}


def test_not_found_is_recorded(cfg, site_url, tmp_path):
    op = DownloadVideo(cfg.download, cfg.langs)
    [item] = op.process_batch([video(tmp_path, "nope", site_url + "v/nope.html")])
    assert item.status == "failed" and item.failure.stage == "download"
    assert item.failure.reason.startswith("http_404")
    assert "127.0.0.1" not in item.failure.detail  # URLs are stripped from recorded errors
    assert not any(item.scratch_dir.iterdir())  # a failed download leaves no files either


def test_error_classification():
    assert classify_download_error("ERROR: HTTP Error 429: Too Many Requests").transient
    assert classify_download_error("ERROR: HTTP Error 503: oops").reason == "http_503"
    assert classify_download_error("ERROR: [youtube] x: Private video").reason == "private"
    assert not classify_download_error("ERROR: Video unavailable").transient
    assert classify_download_error("read timed out").reason == "timeout"
    refused = classify_download_error("Got error: Conn(host='h', port=1): Failed to establish a new connection: [Errno 111] Connection refused")
    assert refused.reason == "connection_error" and refused.transient


def test_one_actor_many_videos_keeps_files_apart(cfg, site_url, small_site, tmp_path):
    def small_site_truth():
        import json

        return json.loads((small_site / "truth.json").read_text())

    op = DownloadVideo(cfg.download, cfg.langs)
    items = op.process_batch([
        video(tmp_path, "first", site_url + "v/sample-00.html"),
        video(tmp_path, "gone", site_url + "v/missing.html"),
        video(tmp_path, "second", site_url + "v/sample-04.html"),
    ])
    assert [i.status for i in items] == ["ok", "failed", "ok"]
    site = small_site_truth()
    assert len(Path(items[0].video_path).read_bytes()) != len(Path(items[2].video_path).read_bytes())  # each its own file
    assert items[0].raw_tracks["en"].data != items[2].raw_tracks["en"].data
    assert site["sample-00"]["cues"][0]["texts"]["de"].encode() in items[0].raw_tracks["de"].data
    assert len(items[2].raw_tracks) == 7


def test_nothing_is_rendered_for_printing_unless_a_print_template_asks(cfg, site_url, tmp_path, capsys):
    """GuardedYoutubeDL skips yt-dlp's table rendering when nothing is printed, and
    leaves yt-dlp's own printing in place when a template asks for it."""
    from multihowto.operators.download import Downloader

    rendered = []

    def spy(d):
        real = d.ydl.render_formats_table
        d.ydl.render_formats_table = lambda info: rendered.append(info.get("id")) or real(info)

    quiet = Downloader(cfg.download, cfg.langs)
    quiet.setup()
    spy(quiet)
    assert quiet.fetch(site_url + "v/sample-00.html", "sample-00", tmp_path / "a").video_path.exists()
    assert rendered == []

    printing = Downloader(cfg.download, cfg.langs)
    printing.setup()
    printing.ydl.params["forceprint"] = {"video": ["%(title)s|%(formats_table)s"]}
    spy(printing)
    printing.fetch(site_url + "v/sample-00.html", "sample-00", tmp_path / "b")
    assert rendered  # yt-dlp's own _forceprint ran
    out = capsys.readouterr().out
    assert "|" in out and "mp4" in out  # the title and the formats table were printed
