"""``mhowto doctor``: what yt-dlp will find on this node, and whether a region can run.

Since late 2025 yt-dlp needs an external JavaScript runtime (deno, node, bun or
quickjs) and its challenge-solver scripts (the ``yt-dlp-ejs`` package) for YouTube;
without them formats go missing and every video fails. ``preflight(cfg)`` returns the
problems that would make a region fail on every video (the CLI refuses the region
with exit 2 and names them); ``inspect_node(cfg)`` reports everything it looked at.
"""

from __future__ import annotations

import os
import subprocess
import urllib.parse
from dataclasses import dataclass

import yt_dlp
from yt_dlp.dependencies import yt_dlp_ejs
from yt_dlp.globals import supported_js_runtimes

from multihowto.operators.download import js_runtime_params
from multihowto.operators.ffmpeg_binary import ffmpeg_exe
from multihowto.schemas.config import RegionConfig
from multihowto.schemas.download import parse_host_entry

# Hosts a YouTube profile's allow-list must admit (page and API, media and manifests).
YOUTUBE_HOSTS = {"www.youtube.com": ("www.youtube.com", 443), ".googlevideo.com": ("rr1---sn-a.googlevideo.com", 443)}


@dataclass(frozen=True)
class Finding:
    name: str  # "JS runtime", "ejs solver scripts", "ffmpeg", "cookies file", ...
    ok: bool
    detail: str
    required: bool  # not ok and required: the region cannot run here


def needs_youtube(cfg: RegionConfig) -> bool:
    return any(e.lower().startswith("youtube") for e in cfg.download.allowed_extractors)


def js_runtime_findings(cfg: RegionConfig) -> Finding:
    """The runtimes ``download.js_runtimes`` enables, as yt-dlp's own classes find them."""
    found, missing = [], []
    for name, conf in js_runtime_params(cfg.download.js_runtimes).items():
        info = supported_js_runtimes.value[name](path=conf.get("path")).info
        if info is None:
            missing.append(f"{name} ({conf.get('path') or 'not on PATH'})")
        elif not info.supported:
            missing.append(f"{name} {info.version} at {info.path} (too old for yt-dlp)")
        else:
            found.append(f"{info.name} {info.version} at {info.path}")
    detail = "; ".join(found) if found else "none found (download.js_runtimes: " + ", ".join(missing or ["empty"]) + ")"
    return Finding("JS runtime", bool(found), detail, required=needs_youtube(cfg))


def inspect_node(cfg: RegionConfig) -> list[Finding]:
    d = cfg.download
    youtube = needs_youtube(cfg)
    out = [Finding("yt-dlp", True, yt_dlp.version.__version__, required=False), js_runtime_findings(cfg)]
    if yt_dlp_ejs is not None:
        out.append(Finding("ejs solver scripts", True, f"yt-dlp-ejs {yt_dlp_ejs.version}", required=youtube))
    else:
        out.append(Finding("ejs solver scripts", False, "the yt-dlp-ejs package is not installed (pip install 'yt-dlp[default]')", required=youtube))
    out.append(_ffmpeg())
    if d.cookies_file:
        readable = os.path.isfile(d.cookies_file) and os.access(d.cookies_file, os.R_OK)
        out.append(Finding("cookies file", readable, f"{d.cookies_file} {'readable' if readable else 'not readable'}", required=True))
    else:
        out.append(Finding("cookies file", True, "none set", required=False))
    proxy = urllib.parse.urlsplit(d.proxy) if d.proxy else None
    # the proxy's address only: its URL may carry credentials
    out.append(Finding("proxy", True, f"{proxy.scheme}://{proxy.hostname}:{proxy.port}" if proxy else "none set", required=False))
    out.append(Finding("allowed extractors", bool(d.allowed_extractors), ", ".join(d.allowed_extractors) or "none", required=True))
    entries = [parse_host_entry(e) for e in d.allowed_hosts]
    hosts = ", ".join(d.allowed_hosts) or "any host (global addresses only)"
    if d.allowed_networks:
        hosts += "; networks " + ", ".join(d.allowed_networks)
    blocked = [name for name, (h, port) in YOUTUBE_HOSTS.items()
               if youtube and entries and not any(e.matches(h, port) for e in entries)]
    out.append(Finding("allowed hosts", not blocked,
                       hosts + (f" (YouTube needs {', '.join(blocked)} too)" if blocked else ""), required=youtube))
    return out


def _ffmpeg() -> Finding:
    exe = ffmpeg_exe()
    try:
        first = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=20).stdout.splitlines()[:1]
    except (OSError, subprocess.SubprocessError):
        first = []
    return Finding("ffmpeg", bool(first), f"{exe}: {first[0]}" if first else f"{exe} does not run", required=True)


def preflight(cfg: RegionConfig) -> list[str]:
    """What keeps ``cfg`` from running on this node, one line each (empty: nothing)."""
    return [f"{f.name}: {f.detail}" for f in inspect_node(cfg) if f.required and not f.ok]


def render(cfg: RegionConfig, findings: list[Finding]) -> str:
    lines = [f"[doctor] region {cfg.name}" + (" (YouTube: needs a JS runtime and yt-dlp-ejs)" if needs_youtube(cfg) else "")]
    for f in findings:
        mark = "ok " if f.ok else ("MISSING" if f.required else "-- ")
        lines.append(f"  {mark:7} {f.name}: {f.detail}")
    return "\n".join(lines)
