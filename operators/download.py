"""Download one video and its subtitle tracks with yt-dlp's Python API.

One ``YoutubeDL`` per process fetches each video at a capped height and every requested
subtitle track (on YouTube also the automatic captions and their auto-translations)
into the item's scratch folder. The video file stays there for the frame stage
(``video_path``); the tracks are read into ``raw_tracks``; ``info`` holds title,
duration and extractor.
"""

from __future__ import annotations

import random
import re
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from multihowto.operators.base import Operator, StageError
from multihowto.schemas.config import DownloadConfig
from multihowto.schemas.item import RawTrack, VideoItem

_HTTP = re.compile(r"HTTP Error (\d{3})")
_PERMANENT = (
    ("private video", "private"),
    ("video unavailable", "unavailable"),
    ("has been removed", "removed"),
    ("not available in your country", "geo_blocked"),
    ("sign in to confirm your age", "age_gated"),
    ("unsupported url", "unsupported_url"),
)


def classify_download_error(message: str) -> StageError:
    """Map a yt-dlp error message to a reason code. Transient (retried with backoff):
    429, 5xx, timeouts, truncated bodies. Permanent (never retried): private, removed,
    geo-blocked, age-gated, unsupported, other 4xx."""
    lower = message.lower()
    for needle, reason in _PERMANENT:
        if needle in lower:
            return StageError(reason, message)
    m = _HTTP.search(message)
    if m:
        code = int(m.group(1))
        return StageError(f"http_{code}", message, transient=code == 429 or code >= 500)
    if "connection reset" in lower or "connection aborted" in lower or "remote end closed" in lower:
        return StageError("connection_reset", message, transient=True)
    if "connection refused" in lower:
        return StageError("connection_refused", message, transient=True)
    if "timed out" in lower or "timeout" in lower:
        return StageError("timeout", message, transient=True)
    if "incomplete" in lower or "did not get any data" in lower or "content-length" in lower or "more expected" in lower:
        return StageError("truncated_body", message, transient=True)
    return StageError("download_error", message)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: base * 2**attempt, capped, times [0.5, 1.5)."""
    return min(cap, base * 2**attempt) * (0.5 + rng.random())


class _QuietLogger:
    """yt-dlp logs through this; warnings are kept on the item, debug is dropped."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)

    def error(self, msg: str) -> None:
        pass


class DownloadVideo(Operator[DownloadConfig]):
    """``gate(host)`` is called before each fetch (the run's shared rate limit); the video
    file stays in the item's scratch folder for the frame stage."""

    name = "download"

    def __init__(self, config: DownloadConfig, langs: tuple[str, ...], fetch_subtitles: bool = True,
                 gate: Callable[[str], None] | None = None):
        super().__init__(config)
        self.langs = tuple(langs)
        self.fetch_subtitles = fetch_subtitles
        self.gate = gate

    def ydl_options(self, logger: _QuietLogger) -> dict:
        d = self.config
        opts = {
            "outtmpl": {"default": "video.%(ext)s"},
            "format": d.format,
            "writesubtitles": self.fetch_subtitles,
            "writeautomaticsub": d.write_auto_subs and self.fetch_subtitles,
            "subtitleslangs": list(self.langs),
            "subtitlesformat": d.subtitle_format,
            "allowed_extractors": list(d.allowed_extractors),
            "socket_timeout": d.socket_timeout_s,
            "retries": 0,  # retries happen in one place: fetch()
            "fragment_retries": 0,
            "extractor_retries": 0,
            "noplaylist": True,
            "quiet": True,
            "no_warnings": False,
            "noprogress": True,
            "logger": logger,
            "overwrites": False,
            "continuedl": True,
        }
        if d.cookies_file:
            opts["cookiefile"] = d.cookies_file
        if d.proxy:
            opts["proxy"] = d.proxy
        if d.geo_bypass_country:
            opts["geo_bypass_country"] = d.geo_bypass_country
        if d.rate_limit_bytes:
            opts["ratelimit"] = d.rate_limit_bytes
        return opts

    def setup(self) -> None:
        """One YoutubeDL per process: its HTTP session and extractors are built once
        (measured: a new one per video cost ~25% of the stage)."""
        import yt_dlp

        self.logger = _QuietLogger()
        self.ydl = yt_dlp.YoutubeDL(self.ydl_options(self.logger))
        self.rng = random.Random()
        self.sleep = time.sleep

    def fetch(self, item: VideoItem) -> dict:
        """yt-dlp's extract_info, retrying transient failures with backoff; permanent
        ones raise at once. Attempts and retried reasons are recorded on the item."""
        import yt_dlp

        d = self.config
        host = urllib.parse.urlparse(item.url).hostname or ""
        while True:
            if self.gate is not None:
                self.gate(host)
            item.download_attempts += 1
            try:
                return self.ydl.extract_info(item.url, download=True)
            except yt_dlp.utils.DownloadError as e:
                err = classify_download_error(str(e))
            if not err.transient or len(item.retried) >= d.retries:
                if err.transient:
                    err.reason = f"{err.reason}_after_retries"
                raise err
            item.retried.append(err.reason)
            self.sleep(backoff_delay(len(item.retried) - 1, d.backoff_base_s, d.backoff_max_s, self.rng))

    def process(self, item: VideoItem) -> VideoItem:
        d = self.config
        host = urllib.parse.urlparse(item.url).hostname or ""
        if d.allowed_hosts and host not in d.allowed_hosts:
            raise StageError("host_not_allowed", f"host {host!r} is not in download.allowed_hosts")
        self.logger.warnings.clear()
        # yt-dlp reads the output template from params for every file it names.
        self.ydl.params["outtmpl"]["default"] = str(item.scratch_dir / "video.%(ext)s")
        info = self.fetch(item)
        if info is None:
            raise StageError("download_error", "yt-dlp returned no information")
        if info.get("_type") == "playlist":
            raise StageError("playlist_not_video", "the URL is a playlist, not one video")
        downloads = info.get("requested_downloads") or []
        video_path = downloads[0].get("filepath") if downloads else None
        if not video_path or not Path(video_path).exists():
            raise StageError("no_video_file", "yt-dlp finished without a video file")
        automatic = set(info.get("automatic_captions") or {}) - set(info.get("subtitles") or {})
        for lang, sub in (info.get("requested_subtitles") or {}).items():
            path = sub.get("filepath")
            if path and Path(path).exists() and lang in self.langs:
                item.raw_tracks[lang] = RawTrack(format=Path(path).suffix.lstrip(".").lower(), data=Path(path).read_bytes(),
                                                 kind="asr" if lang in automatic else "manual", tag=lang)
                Path(path).unlink()
        item.video_path = video_path
        item.info = {"title": info.get("title") or "", "duration": info.get("duration"), "extractor": info.get("extractor") or ""}
        item.warnings = len(self.logger.warnings)
        return item
