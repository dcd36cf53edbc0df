"""What one video's download hands to the next stage, and the allow-list entry format.

``DownloadResult`` is the record ``operators/download.py:Downloader.fetch`` returns: the
video stays a file in the caller's scratch folder (never read into memory here), the
subtitle tracks are bytes (each capped by ``download.max_track_bytes``).

An allow-list entry (``download.allowed_hosts``) is one of
``host`` (ports 80 and 443), ``host:port``, ``.suffix`` or ``.suffix:port`` (any
subdomain of ``suffix``, not ``suffix`` itself), an IP literal (``127.0.0.1``,
``[::1]:8080``); an IP literal also allows that address when it is not a global one.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

TrackKind = Literal["manual", "asr"]
DEFAULT_PORTS = (80, 443)
_HOST = re.compile(r"^\.?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class RawTrack:
    """One subtitle track as served: ``format`` (json3, vtt, srt), its bytes, whether the
    site's own (``manual``) or automatic (``asr``), and the tag the site gave it."""

    format: str
    data: bytes
    kind: TrackKind
    tag: str


@dataclass
class DownloadResult:
    video_path: Path
    video_ext: str  # with its dot: ".mp4"
    tracks: dict[str, RawTrack] = field(default_factory=dict)  # target language -> track
    track_errors: dict[str, str] = field(default_factory=dict)  # language lost -> reason
    info: dict = field(default_factory=dict)  # title, duration, extractor
    attempts: int = 0  # whole-video attempts (1 + retries made for the video)
    retried: list[str] = field(default_factory=list)  # one reason per retry made
    requests: int = 0  # HTTP requests sent (redirect hops included)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HostEntry:
    """One parsed allow-list entry; ``port`` None means the default ports 80 and 443."""

    host: str
    port: int | None
    suffix: bool
    ip: bool

    def matches(self, host: str, port: int) -> bool:
        if self.suffix:
            ok = host.endswith(self.host)  # self.host keeps its leading dot
        else:
            ok = host == self.host
        return ok and (port == self.port if self.port is not None else port in DEFAULT_PORTS)


def parse_host_entry(entry: str) -> HostEntry:
    """Parse one ``download.allowed_hosts`` entry; ValueError says what is wrong (quoting
    at most 80 characters of it)."""
    shown = entry[:80]
    text = entry.strip().lower()
    port: int | None = None
    if text.startswith("["):  # [v6]:port or [v6]
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{shown!r}: unclosed '['")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{shown!r}: expected ':port' after ']'")
            port = _port(rest[1:], shown)
    elif text.count(":") == 1:
        host, p = text.split(":")
        port = _port(p, shown)
    else:
        host = text
    try:
        ip = ipaddress.ip_address(host)
        return HostEntry(ip.compressed, port, suffix=False, ip=True)
    except ValueError:
        pass
    if not _HOST.match(host) or host == ".":
        raise ValueError(f"{shown!r}: expected host, host:port, .domain.suffix or an IP literal")
    return HostEntry(host, port, suffix=host.startswith("."), ip=False)


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{entry!r}: port must be 1-65535")
    return int(text)
