"""Read subtitle files into raw cues ``(start_s, end_s, raw_text)``.

WebVTT and SRT go through webvtt-py (cue settings, STYLE and NOTE blocks, entities and
inline tags are its job; ``raw_text`` keeps the tags so that rolling auto-captions can be
recognised). YouTube's json3 has no library reader, so it is parsed here.

Every reader raises :class:`CaptionFormatError` with a short reason on bad input and
never returns a cue with ``end < start``.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import webvtt

RawCue = tuple[float, float, str]
FORMATS = ("json3", "vtt", "srt")


class CaptionFormatError(ValueError):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _webvtt_cues(captions) -> list[RawCue]:
    cues = []
    for c in captions:
        start = c.start_time.in_milliseconds() / 1000
        end = c.end_time.in_milliseconds() / 1000
        if end < start:  # a cue that ends before it starts carries no usable timing
            continue
        cues.append((start, end, c.raw_text))
    return cues


def parse_vtt(text: str) -> list[RawCue]:
    try:
        return _webvtt_cues(webvtt.from_string(text.lstrip("\ufeff")))
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError) as e:
        raise CaptionFormatError("malformed_vtt", str(e)) from None
    except (ValueError, IndexError, AttributeError) as e:
        raise CaptionFormatError("malformed_vtt", f"{type(e).__name__}: {e}") from None


def parse_srt(text: str) -> list[RawCue]:
    try:
        return _webvtt_cues(webvtt.from_buffer(io.StringIO(text.lstrip("\ufeff")), format="srt"))
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError) as e:
        raise CaptionFormatError("malformed_srt", str(e)) from None
    except (ValueError, IndexError, AttributeError) as e:
        raise CaptionFormatError("malformed_srt", f"{type(e).__name__}: {e}") from None


def parse_json3(text: str) -> list[RawCue]:
    """YouTube json3: ``{"events": [{"tStartMs", "dDurationMs", "segs": [{"utf8",
    "tOffsetMs"}]}]}``. Append events (``aAppend``) and newline-only events carry no
    words. An event is shown until the next one with words starts, so its end is
    clipped there: ASR windows overlap in json3 but spoken lines do not."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise CaptionFormatError("malformed_json3", str(e)) from None
    events = doc.get("events") if isinstance(doc, dict) else None
    if not isinstance(events, list):
        raise CaptionFormatError("malformed_json3", "no events list")
    lines = []
    for ev in events:
        if not isinstance(ev, dict) or not isinstance(ev.get("segs"), list):
            continue
        try:
            start = float(ev.get("tStartMs", 0)) / 1000
            dur = float(ev.get("dDurationMs", 0)) / 1000
        except (TypeError, ValueError):
            continue
        words = "".join(str(s.get("utf8", "")) for s in ev["segs"] if isinstance(s, dict))
        if not words.strip() or not (math.isfinite(start) and math.isfinite(dur)) or start < 0 or dur < 0:
            continue
        lines.append([start, start + dur, words.replace("\n", " ")])
    lines.sort(key=lambda c: c[0])
    for cur, nxt in zip(lines, lines[1:], strict=False):
        if cur[1] > nxt[0]:
            cur[1] = max(cur[0], nxt[0])
    return [(s, e, t) for s, e, t in lines]


def parse_caption_bytes(fmt: str, data: bytes) -> list[RawCue]:
    """Parse a subtitle file's bytes in format ``fmt`` (json3, vtt or srt)."""
    parser = {"vtt": parse_vtt, "srt": parse_srt, "json3": parse_json3}.get(fmt)
    if parser is None:
        raise CaptionFormatError("unsupported_format", fmt)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CaptionFormatError("not_utf8", str(e)) from None
    return parser(text)


def parse_caption_file(path: str | Path) -> tuple[str, list[RawCue]]:
    """Parse by extension; returns ``(format, raw cues)``."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CaptionFormatError("missing_file", path.name) from None
    return fmt, parse_caption_bytes(fmt, data)
