"""Subtitle tracks are fetched one by one (#15.3) under normalised tags (#15.4): a
loopback page with region- and script-tagged tracks and tracks that 404."""

from __future__ import annotations

import pytest

from multihowto.operators.download import Downloader, DownloadVideo, subtitle_preferences
from multihowto.sample_site.server import serve
from multihowto.schemas.config import DownloadConfig, RegionConfig
from multihowto.schemas.download import DownloadResult
from tests.operators.video_items import small_site_copy, video

CFG = DownloadConfig(allowed_extractors=("generic", "html5"), allowed_networks=("127.0.0.0/8",), retries=1,
                     backoff_base_s=0.01, backoff_max_s=0.02)
TRACKS = {  # tag -> file served (None: 404)
    "en-US": "en-US.vtt", "EN": "EN.vtt", "de-DE": "de-DE.vtt", "de": None, "zh-Hant": "zh-Hant.vtt",
    "zh-Hans": "zh-Hans.vtt", "fr": None, "pt": "pt.vtt",
}


@pytest.fixture()
def site(small_site, tmp_path):
    root = small_site_copy(small_site, tmp_path / "site", langs=())
    for tag, name in TRACKS.items():
        if name:
            (root / "subs" / name).write_text(f"WEBVTT\n\n00:00.000 --> 00:02.000\ntrack {tag}\n", encoding="utf-8")
    tracks = "\n".join(f'<track kind="subtitles" srclang="{tag}" src="subs/{name or tag + ".vtt"}">' for tag, name in TRACKS.items())
    (root / "v.html").write_text(f"""<!doctype html><html><head><title>tags</title></head><body>
<video controls><source src="media/v.mp4" type="video/mp4">
{tracks}
</video></body></html>""")
    return root


def test_tags_are_normalised_and_a_404_loses_one_language(site, tmp_path):
    d = Downloader(CFG, ("en", "de", "fr", "zh", "vi"), fetch_subtitles=True)
    d.setup()
    with serve(site) as base:
        res = d.fetch(f"{base}v.html", "v", tmp_path / "scratch")
    assert res.video_path.read_bytes()[4:8] == b"ftyp"  # the video is kept
    assert {lang: t.tag for lang, t in res.tracks.items()} == {"en": "EN", "de": "de-DE", "zh": "zh-Hans"}
    assert res.tracks["de"].data.endswith(b"track de-DE\n") and res.tracks["zh"].kind == "manual"
    assert res.track_errors == {"fr": "http_404"}  # its only track; de fell back to de-DE
    assert any("track de (de, manual): http_404" in w for w in res.warnings)
    assert res.retried == []  # a 404 is permanent


def test_the_operator_records_tags_and_track_errors(site, tmp_path):
    cfg = RegionConfig(langs=("en", "de", "fr", "zh"), download=CFG)
    with serve(site) as base:
        [item] = DownloadVideo(cfg.download, cfg.langs).process_batch([video(tmp_path, "v", f"{base}v.html")])
    assert item.ok, item.failure
    assert {k: t.tag for k, t in item.raw_tracks.items()} == {"en": "EN", "de": "de-DE", "zh": "zh-Hans"}
    assert item.track_errors == {"fr": "http_404"} and set(item.raw_tracks) == {"en", "de", "zh"}


def test_youtube_style_listing_prefers_manual_and_json3(site, tmp_path):
    """An info dict shaped like yt-dlp's YouTube extractor's: manual tracks and automatic
    captions (with ``-orig`` and auto-translations), each offered in several formats."""
    with serve(site) as base:
        def formats(name):
            return [{"ext": "srv3", "url": f"{base}subs/{name}"}, {"ext": "vtt", "url": f"{base}subs/{name}"},
                    {"ext": "json3", "url": f"{base}subs/{name}"}]
        info = {
            "subtitles": {"zh-Hant": formats("zh-Hant.vtt"), "de-DE": formats("de-DE.vtt")},
            "automatic_captions": {"en-orig": formats("en-US.vtt"), "en": formats("EN.vtt"), "de": formats("de-DE.vtt"),
                                   "zh-Hans": formats("zh-Hans.vtt"), "pt": formats("pt.vtt")},
        }
        d = Downloader(CFG, ("en", "de", "zh"), fetch_subtitles=True)
        d.setup()
        res = DownloadResult(video_path=tmp_path, video_ext=".mp4")
        d.fetch_tracks(info, res)
    got = {lang: (t.tag, t.kind, t.format) for lang, t in res.tracks.items()}
    assert got == {"en": ("en", "asr", "json3"), "de": ("de-DE", "manual", "json3"), "zh": ("zh-Hant", "manual", "json3")}


def test_subtitle_preferences():
    assert subtitle_preferences("json3/vtt/srt/best") == ("json3", "vtt", "srt")
    assert subtitle_preferences("vtt/best") == ("vtt", "json3", "srt")
    assert subtitle_preferences("srv3") == ("json3", "vtt", "srt")  # nothing we read: all we read
