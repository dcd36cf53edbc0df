"""Download one video and its subtitle tracks with yt-dlp's Python API.

One ``YoutubeDL`` per actor fetches each video at a capped height and every requested
subtitle track (on YouTube also the automatic captions and their auto-translations)
into ``{work_dir}/{video_id}/``. The files are read into the item and deleted: it gains
``video_bytes`` (and ``video_ext``), ``subtitles`` ({lang: {"format", "data"}}),
``subtitle_kinds`` ({lang: manual|asr}) and ``info`` (title, duration, extractor), so
the later stages can run on any node of a cluster.
"""

from __future__ import annotations

import random
import re
import shutil
import time
import urllib.parse
from pathlib import Path

from multihowto.operators.base import Item, Operator, StageError
from multihowto.schemas.config import RegionConfig

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
    if "timed out" in lower or "timeout" in lower:
        return StageError("timeout", message, transient=True)
    if "incomplete" in lower or "did not get any data" in lower or "content-length" in lower:
        return StageError("truncated_body", message, transient=True)
    return StageError("download_error", message)


class TokenBucket:
    """At most ``rate`` requests per second per host on average, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int, clock=time.monotonic, sleep=time.sleep):
        self.rate, self.burst = rate, burst
        self.clock, self.sleep = clock, sleep
        self.state: dict[str, tuple[float, float]] = {}  # host -> (tokens, last time)

    def acquire(self, host: str) -> float:
        """Take a token for ``host``, waiting if none is left; returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, last = self.state.get(host, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        waited = 0.0
        if tokens < 1:
            waited = (1 - tokens) / self.rate
            self.sleep(waited)
            tokens, now = 1.0, now + waited
        self.state[host] = (tokens - 1, now)
        return waited


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


class DownloadVideo(Operator[RegionConfig]):
    name = "download"

    def __init__(self, config: RegionConfig, work_dir: str):
        super().__init__(config)
        self.work_dir = work_dir

    def ydl_options(self, logger: _QuietLogger) -> dict:
        d = self.config.download
        opts = {
            "outtmpl": {"default": self.outtmpl("_")},
            "format": d.format,
            "writesubtitles": not self.config.source.captions,
            "writeautomaticsub": d.write_auto_subs and not self.config.source.captions,
            "subtitleslangs": list(self.config.langs),
            "subtitlesformat": d.subtitle_format,
            "allowed_extractors": list(d.allowed_extractors),
            "socket_timeout": d.socket_timeout_s,
            "retries": d.retries,
            "extractor_retries": d.retries,
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

    def outtmpl(self, video_id: str) -> str:
        return str(Path(self.work_dir) / video_id / "video.%(ext)s")

    def setup(self) -> None:
        """One YoutubeDL per actor: its HTTP session and extractors are built once
        (measured: a new one per video cost ~25% of the stage)."""
        import yt_dlp

        self.logger = _QuietLogger()
        self.ydl = yt_dlp.YoutubeDL(self.ydl_options(self.logger))
        d = self.config.download
        self.bucket = TokenBucket(d.host_rate_per_s, d.host_burst)
        self.rng = random.Random()
        self.sleep = time.sleep

    def fetch(self, item: Item) -> dict:
        """yt-dlp's extract_info, retrying transient failures with backoff; permanent
        ones raise at once. Attempts and retried reasons are recorded on the item."""
        import yt_dlp

        d = self.config.download
        host = urllib.parse.urlparse(item["url"]).hostname or ""
        item["download_attempts"], item["retried"] = 0, []
        while True:
            self.bucket.acquire(host)
            item["download_attempts"] += 1
            try:
                return self.ydl.extract_info(item["url"], download=True)
            except yt_dlp.utils.DownloadError as e:
                err = classify_download_error(str(e))
            if not err.transient or len(item["retried"]) >= d.retries:
                if err.transient:
                    err.reason = f"{err.reason}_after_retries"
                raise err
            item["retried"].append(err.reason)
            self.sleep(backoff_delay(len(item["retried"]) - 1, d.backoff_base_s, d.backoff_max_s, self.rng))

    def process(self, item: Item) -> Item:
        d = self.config.download
        host = urllib.parse.urlparse(item["url"]).hostname or ""
        if d.allowed_hosts and host not in d.allowed_hosts:
            raise StageError("host_not_allowed", f"host {host!r} is not in download.allowed_hosts")
        try:
            return self._download(item)
        finally:  # read into the item or failed: either way nothing stays on this node's disk
            shutil.rmtree(Path(self.work_dir) / item["video_id"], ignore_errors=True)

    def _download(self, item: Item) -> Item:
        self.logger.warnings.clear()
        # yt-dlp reads the output template from params for every file it names.
        self.ydl.params["outtmpl"]["default"] = self.outtmpl(item["video_id"])
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
        subs = {}
        kinds = {}
        for lang, sub in (info.get("requested_subtitles") or {}).items():
            path = sub.get("filepath")
            if path and Path(path).exists() and lang in self.config.langs:
                subs[lang] = {"format": Path(path).suffix.lstrip(".").lower(), "data": Path(path).read_bytes()}
                kinds[lang] = "asr" if lang in automatic else "manual"
        # The files travel in the item (through Ray's object store to whichever node runs
        # the next stages); process() removes them from this node's disk.
        item["video_bytes"] = Path(video_path).read_bytes()
        item["video_ext"] = Path(video_path).suffix or ".mp4"
        item["subtitles"] = subs
        item["subtitle_kinds"] = kinds
        item["info"] = {
            "title": info.get("title") or "",
            "duration": info.get("duration"),
            "extractor": info.get("extractor") or "",
        }
        item["download_warnings"] = len(self.logger.warnings)
        return item
