"""yt-dlp against the sample site on 127.0.0.1: the video and all its tracks."""

from multihowto.operators.download import DownloadVideo, classify_download_error
from multihowto.schemas.sample import LANGS


def test_downloads_video_and_every_track(cfg, site_url, tmp_path):
    op = DownloadVideo(cfg, str(tmp_path / "work"))
    [item] = op.process_batch([{"video_id": "sample-00", "url": site_url + "v/sample-00.html"}])
    assert item["status"] == "ok", item.get("error")
    assert item["video_path"].endswith(".mp4")
    assert set(item["subtitle_files"]) == set(LANGS)
    assert item["info"]["extractor"] == "html5"


def test_missing_languages_are_simply_absent(cfg, site_url, tmp_path):
    op = DownloadVideo(cfg, str(tmp_path / "work"))
    [item] = op.process_batch([{"video_id": "sample-04", "url": site_url + "v/sample-04.html"}])
    assert set(LANGS) - set(item["subtitle_files"]) == {"sw", "cs"}


def test_not_found_is_recorded(cfg, site_url, tmp_path):
    op = DownloadVideo(cfg, str(tmp_path / "work"))
    [item] = op.process_batch([{"video_id": "nope", "url": site_url + "v/nope.html"}])
    assert item["status"] == "failed" and item["failed_at"] == "download"
    assert item["error"].startswith("http_404")
    assert "127.0.0.1" not in item["error"]  # URLs are stripped from recorded errors


def test_error_classification():
    assert classify_download_error("ERROR: HTTP Error 429: Too Many Requests").transient
    assert classify_download_error("ERROR: HTTP Error 503: oops").reason == "http_503"
    assert classify_download_error("ERROR: [youtube] x: Private video").reason == "private"
    assert not classify_download_error("ERROR: Video unavailable").transient
    assert classify_download_error("read timed out").reason == "timeout"


def test_one_actor_many_videos_keeps_files_apart(cfg, site_url, tmp_path):
    op = DownloadVideo(cfg, str(tmp_path / "work"))
    items = op.process_batch([
        {"video_id": "first", "url": site_url + "v/sample-00.html"},
        {"video_id": "gone", "url": site_url + "v/missing.html"},
        {"video_id": "second", "url": site_url + "v/sample-04.html"},
    ])
    assert [i["status"] for i in items] == ["ok", "failed", "ok"]
    for item in (items[0], items[2]):
        folder = tmp_path / "work" / item["video_id"]
        assert item["video_path"].startswith(str(folder))
        assert all(p.startswith(str(folder)) for p in item["subtitle_files"].values())
    assert len(items[2]["subtitle_files"]) == 7
