"""Download one video and its subtitle tracks with yt-dlp's Python API.

``Downloader`` (one per thread; built once, ``setup()`` once) fetches a video at a
capped height into a scratch folder with yt-dlp, every request passing one guard
(operators/request_guard.py: allow-list, deadline, byte caps). The subtitle tracks are
then fetched through the same guarded ``urlopen`` from what the extractor lists
(``subtitles``, and on YouTube ``automatic_captions`` with their auto-translations), one
by one, so a track that fails loses that language only. Tags are normalised to the
target languages by schemas/langtags.py.

Retries live in one layer, here: every yt-dlp retry option is 0, and a transient
failure (429, 5xx, timeout, truncated body) of the video, or of one track, is tried
again with exponential backoff, each retry recorded once in ``retried``.

``DownloadVideo`` is the thin operator around it.
"""

from __future__ import annotations

import dataclasses
import random
import re
import shutil
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import yt_dlp
from yt_dlp.networking import Request
from yt_dlp.networking.exceptions import HTTPError, IncompleteRead, TransportError
from yt_dlp.utils import determine_ext

from multihowto.operators.base import Operator, StageError
from multihowto.operators.request_guard import ByteBudget, GuardedYoutubeDL, RequestGuard
from multihowto.schemas.config import DownloadConfig
from multihowto.schemas.download import DownloadResult, RawTrack
from multihowto.schemas.item import VideoItem
from multihowto.schemas.langtags import target_lang, track_rank

_HTTP = re.compile(r"HTTP Error (\d{3})")
# yt-dlp's words for a body that ended early (IncompleteRead, ContentTooShortError)
_SHORT = re.compile(r"\d+ bytes read, \d+ more expected|downloaded \d+ bytes, expected \d+ bytes")
# a connection refused, reset, or closed by the server before it answered (a kept-alive
# connection the server dropped, a server restarting): transient, retried
_CONNECTION_LOST = (
    "connection refused",
    "connection reset",
    "failed to establish a new connection",
    "connection aborted",
    "remote end closed connection",
    "remotedisconnected",
    "broken pipe",
)
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
    if any(m in lower for m in _CONNECTION_LOST):
        return StageError("connection_error", message, transient=True)  # a server restarting, a blip
    if "incomplete" in lower or "did not get any data" in lower or "content-length" in lower or _SHORT.search(lower):
        return StageError("truncated_body", message, transient=True)
    return StageError("download_error", message)


def classify_request_error(e: Exception) -> StageError:
    """A reason for an exception from ``urlopen`` or a response's ``read``."""
    if isinstance(e, StageError):
        return e
    if isinstance(e, HTTPError):
        return StageError(f"http_{e.status}", str(e), transient=e.status == 429 or e.status >= 500)
    if isinstance(e, IncompleteRead):
        return StageError("truncated_body", str(e), transient=True)
    if isinstance(e, TransportError):
        timeout = "timed out" in str(e).lower() or "timeout" in str(e).lower()
        return StageError("timeout" if timeout else "connection_error", str(e), transient=True)
    return StageError("download_error", f"{type(e).__name__}: {e}")


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


def allow_origin(cfg: DownloadConfig, base_url: str) -> DownloadConfig:
    """``cfg`` also allowing the ``host:port`` of ``base_url`` (the sample site served
    on 127.0.0.1 for a run): an IP-literal entry, so that loopback address is allowed too,
    and only on that port."""
    parts = urllib.parse.urlsplit(base_url)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return dataclasses.replace(cfg, allowed_hosts=(*cfg.allowed_hosts, f"{host}:{port}"))


def js_runtime_params(entries: tuple[str, ...]) -> dict[str, dict]:
    """``download.js_runtimes`` (``name`` or ``name:path``) as yt-dlp's ``js_runtimes``."""
    out: dict[str, dict] = {}
    for entry in entries:
        name, _, path = entry.partition(":")
        out[name] = {"path": path} if path else {}
    return out


def subtitle_preferences(subtitle_format: str) -> tuple[str, ...]:
    """``json3/vtt/srt/best`` as formats in order; ``best`` adds every format we read."""
    prefs: list[str] = []
    for part in subtitle_format.lower().split("/"):
        for fmt in (SUBTITLE_FORMATS if part == "best" else (part,)):
            if fmt in SUBTITLE_FORMATS and fmt not in prefs:
                prefs.append(fmt)
    return tuple(prefs) or SUBTITLE_FORMATS


SUBTITLE_FORMATS = ("json3", "vtt", "srt")  # what operators/caption_formats.py reads
# Protocols yt-dlp downloads natively (through the guarded urlopen). Others (rtmp, live
# HLS through ffmpeg...) would let a program other than this one fetch URLs.
NATIVE_PROTOCOLS = ("http", "https", "m3u8", "m3u8_native", "http_dash_segments", "http_dash_segments_generator")


class Downloader:
    """One video and its tracks per ``fetch``; see the module doc. Not thread-safe: one per
    thread. ``gate(host)`` is called before every HTTP request (a rate limit)."""

    def __init__(self, cfg: DownloadConfig, langs: tuple[str, ...], fetch_subtitles: bool = True,
                 gate: Callable[[str], None] | None = None):
        self.cfg = cfg
        self.langs = tuple(langs)
        self.fetch_subtitles = fetch_subtitles
        self.gate = gate
        self.sleep = time.sleep
        self.rng = random.Random()
        self.last: DownloadResult | None = None  # the latest fetch's record, failed or not

    def ydl_options(self, logger: _QuietLogger) -> dict:
        d = self.cfg
        opts = {
            "outtmpl": {"default": "video.%(ext)s"},
            "format": d.format,
            "writesubtitles": False,  # tracks are fetched one by one in fetch_tracks
            "writeautomaticsub": False,
            "allowed_extractors": list(d.allowed_extractors),
            "socket_timeout": d.socket_timeout_s,
            # retries happen in one layer, ours (counted in DownloadResult.retried)
            "retries": 0,
            "fragment_retries": 0,
            "extractor_retries": 0,
            "file_access_retries": 0,
            "skip_unavailable_fragments": False,  # a lost fragment fails, it is not skipped
            "external_downloader": {"default": "native"},  # no ffmpeg/aria2c fetching URLs
            "hls_prefer_native": True,
            "js_runtimes": js_runtime_params(d.js_runtimes),
            "remote_components": [],  # nothing fetched at run time (the solver is a package)
            "noplaylist": True,
            "quiet": True,
            "no_warnings": False,
            "noprogress": True,
            # yt-dlp formats a progress line for every block read even when it prints
            # none; report at most once an hour (measured: ~7% of a loopback download)
            "progress_delta": 3600,
            "logger": logger,
            "overwrites": True,
            "continuedl": False,  # every attempt starts from an empty scratch folder
            "cachedir": False,
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
        """One YoutubeDL per downloader: its HTTP session and extractors are built once
        (measured: a new one per video cost ~25% of the stage)."""
        self.logger = _QuietLogger()
        self.guard = RequestGuard(self.cfg, self.gate)
        self.ydl = GuardedYoutubeDL(self.ydl_options(self.logger), self.guard)

    def fetch(self, url: str, video_id: str, scratch_dir: Path) -> DownloadResult:
        """Download ``url`` into ``scratch_dir`` (the video file is left there) and its
        tracks into the result. Raises StageError for the video; a track's failure is
        recorded in ``track_errors``. ``self.last`` keeps the record either way."""
        d = self.cfg
        result = self.last = DownloadResult(video_path=Path(), video_ext="")
        self.logger.warnings.clear()
        self.guard.begin(d.deadline_s, ByteBudget(d.max_filesize, "video"))
        try:
            info = self._retrying(lambda: self._fetch_video(url, Path(scratch_dir), result), result, "")
            result.info = {
                "title": info.get("title") or "",
                "duration": info.get("duration"),
                "extractor": info.get("extractor") or "",
            }
            if self.fetch_subtitles:
                self.fetch_tracks(info, result)
            self.guard.check_time()
        finally:
            self.guard.end()
            result.requests = self.guard.requests
            result.warnings.extend(self.logger.warnings)
        return result

    def _retrying(self, attempt: Callable, result: DownloadResult, label: str):
        """``attempt()``, again after a transient failure with backoff, at most
        ``retries`` more times; each retry appended to ``result.retried`` (prefixed by
        ``label``: ``de:http_429`` for a track)."""
        retries = 0
        while True:
            try:
                return attempt()
            except StageError as e:
                err = e
            if not err.transient or retries >= self.cfg.retries:
                if err.transient:
                    err.reason = f"{err.reason}_after_retries"
                raise err
            retries += 1
            result.retried.append(f"{label}{err.reason}")
            delay = backoff_delay(retries - 1, self.cfg.backoff_base_s, self.cfg.backoff_max_s, self.rng)
            if delay >= self.guard.remaining():
                raise self.guard.fail(StageError("timeout", f"the deadline passes before retry {retries} ({err.reason})"))
            self.sleep(delay)

    def _fetch_video(self, url: str, scratch_dir: Path, result: DownloadResult) -> dict:
        result.attempts += 1
        shutil.rmtree(scratch_dir, ignore_errors=True)
        scratch_dir.mkdir(parents=True, exist_ok=True)
        # yt-dlp reads the output template from params for every file it names.
        self.ydl.params["outtmpl"]["default"] = str(scratch_dir / "video.%(ext)s")
        self.guard.stop, self.guard.refused = None, []
        self.guard.budget = ByteBudget(self.cfg.max_filesize, "video")  # per attempt
        try:
            info = self.ydl.extract_info(url, download=False)
            self._check_info(info)
            info = self.ydl.process_ie_result(info, download=True)
        except StageError as e:  # ours, raised through yt-dlp
            raise self.guard.stop or e from None
        except Exception as e:  # yt-dlp's DownloadError, or what it let through
            if self.guard.stop is not None:
                raise self.guard.stop from None
            if self.guard.refused:
                raise StageError("host_not_allowed", self.guard.refused[0]) from None
            if isinstance(e, yt_dlp.utils.DownloadError):
                raise classify_download_error(str(e)) from None
            raise
        if self.guard.stop is not None:  # swallowed by an extractor, still the video's end
            raise self.guard.stop
        result.warnings.extend(f"host_not_allowed: {why}" for why in self.guard.refused)
        downloads = info.get("requested_downloads") or []
        video_path = downloads[0].get("filepath") if downloads else None
        if not video_path or not Path(video_path).exists():
            raise StageError("no_video_file", "yt-dlp finished without a video file")
        result.video_path = Path(video_path)
        result.video_ext = Path(video_path).suffix or ".mp4"
        return info

    @staticmethod
    def _check_info(info: dict | None) -> None:
        if info is None:
            raise StageError("download_error", "yt-dlp returned no information")
        if info.get("_type") == "playlist":
            raise StageError("playlist_not_video", "the URL is a playlist, not one video")
        if info.get("is_live"):
            raise StageError("live_stream", "a live stream has no end to download")
        for fmt in info.get("requested_formats") or [info]:
            protocol = fmt.get("protocol") or "https"
            if protocol not in NATIVE_PROTOCOLS:
                raise StageError("unsupported_protocol", f"format {fmt.get('format_id')} needs {protocol!r}")

    # -- subtitle tracks ---------------------------------------------------------------
    def fetch_tracks(self, info: dict, result: DownloadResult) -> None:
        """Per target language: the best-ranked track (schemas/langtags.py) in the first
        preferred format that fetches; when it fails, the next candidate. A language whose
        every candidate failed gets its first reason in ``track_errors``."""
        prefs = subtitle_preferences(self.cfg.subtitle_format)
        sources = [("manual", info.get("subtitles") or {})]
        if self.cfg.write_auto_subs:
            sources.append(("asr", info.get("automatic_captions") or {}))
        candidates: dict[str, list[tuple]] = {}
        for kind, tracks in sources:
            for tag, formats in tracks.items():
                lang = target_lang(tag)
                if lang in self.langs:
                    candidates.setdefault(lang, []).append((track_rank(tag, kind), tag, kind, formats or []))
        for lang in self.langs:
            errors = []
            for _, tag, kind, formats in sorted(candidates.get(lang, []), key=lambda c: c[0]):
                chosen = _choose_format(formats, prefs)
                if chosen is None:
                    errors.append("no_supported_format")
                    continue
                fmt, track_url = chosen
                try:
                    data = self._retrying(lambda u=track_url: self._fetch_track(u), result, f"{lang}:")
                except StageError as e:
                    if e.reason == "timeout" and self.guard.stop is not None:
                        raise  # the video's deadline, not this track's
                    errors.append(e.reason)
                    result.warnings.append(f"track {tag} ({lang}, {kind}): {e.reason}")
                    continue
                result.tracks[lang] = RawTrack(format=fmt, data=data, kind=kind, tag=tag)
                break
            if lang not in result.tracks and errors:
                result.track_errors[lang] = errors[0]

    def _fetch_track(self, url: str) -> bytes:
        self.ydl.track_budget = ByteBudget(self.cfg.max_track_bytes, "subtitle track")
        try:
            res = self.ydl.urlopen(Request(url))
            try:
                return res.read()
            finally:
                res.close()
        except Exception as e:
            err = classify_request_error(e)
            if err.reason == "file_too_large":
                self.guard.stop = None  # a track over its cap loses that track only
            raise err from None
        finally:
            self.ydl.track_budget = None


def _choose_format(formats: list[dict], prefs: tuple[str, ...]) -> tuple[str, str] | None:
    """(format, url) of the first preferred format a track is offered in."""
    by_ext = {}
    for f in formats:
        url = f.get("url")
        ext = (f.get("ext") or (determine_ext(url) if url else "") or "").lower()
        if url and ext not in by_ext:
            by_ext[ext] = url
    for fmt in prefs:
        if fmt in by_ext:
            return fmt, by_ext[fmt]
    return None


class DownloadVideo(Operator[DownloadConfig]):
    """The download stage: one ``Downloader`` (one per thread: it is not thread-safe).
    The video file stays in the item's scratch folder for the frame stage; the item gains
    ``video_path``, ``raw_tracks``, ``track_errors``, ``info``, ``download_attempts``,
    ``retried``, ``requests`` and ``warnings``. ``gate(host)`` is the run's rate limit."""

    name = "download"

    def __init__(self, config: DownloadConfig, langs: tuple[str, ...], fetch_subtitles: bool = True,
                 gate: Callable[[str], None] | None = None):
        super().__init__(config)
        self.langs = tuple(langs)
        self.fetch_subtitles = fetch_subtitles
        self.gate = gate

    def setup(self) -> None:
        self.downloader = Downloader(self.config, self.langs, self.fetch_subtitles, gate=self.gate)
        self.downloader.setup()

    def process(self, item: VideoItem) -> VideoItem:
        try:
            res = self.downloader.fetch(item.url, item.video_id, item.scratch_dir)
        finally:  # a failed fetch still says what it tried
            last = self.downloader.last
            if last is not None:
                item.download_attempts, item.retried, item.requests = last.attempts, list(last.retried), last.requests
        item.video_path = str(res.video_path)
        item.raw_tracks = dict(res.tracks)
        item.track_errors = dict(res.track_errors)
        item.info = res.info
        item.warnings = len(res.warnings)
        return item
