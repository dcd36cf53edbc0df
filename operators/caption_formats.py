"""Read subtitle files into raw cues ``(start_s, end_s, raw_text)``.

WebVTT and SRT go through webvtt-py (cue settings, STYLE and NOTE blocks, entities and
inline tags are its job; ``raw_text`` keeps the tags so that rolling auto-captions can be
recognised); SRT cue numbers are optional, as in players. YouTube's json3 has no library
reader, so it is parsed here.

:func:`parse_caption_bytes` is the entry point for a downloaded track. It decodes the
bytes (BOM, UTF-8, or a code page detected for the claimed language:
operators/caption_encoding.py), mends double-encoded text, and enforces the caps of
``subtitles`` in the region profile, each a countable reason:

- ``track_too_large``: more than ``max_track_bytes`` bytes, refused before decoding;
- ``too_many_cues``: more than ``max_cues`` cues, refused before the parser builds them
  (every WebVTT/SRT cue has a ``-->``, so counting those bounds the cues);
- a cue longer than ``max_cue_s`` is dropped and counted (``cue_too_long``): such
  timing is broken (a typo'd hour, a cue "until the end"), and clipping it would pin
  its text to a time it does not belong to; a track left with no cue fails with that
  reason. So no timing read here can make later stages plan more than
  ``max_cues * max_cue_s`` seconds of clips per track.

Every reader raises :class:`CaptionFormatError` with a short reason on bad input and
never returns a cue with ``end < start``.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import webvtt

from multihowto.operators.caption_encoding import (
    UndecodableError,
    decode_caption_bytes,
    repair_text,
    still_mojibake,
)
from multihowto.schemas.config import SubtitlesConfig

RawCue = tuple[float, float, str]
FORMATS = ("json3", "vtt", "srt")
DEFAULT_LIMITS = SubtitlesConfig()


class CaptionFormatError(ValueError):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class ParsedCaptions:
    """One subtitle file, read: its cues and how they were read."""

    format: str
    cues: list[RawCue]
    encoding: str = "utf-8"  # the codec the bytes were decoded with (Python's name)
    repairs: int = 0  # cues whose text was mended of double encoding (ftfy)
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> cues dropped


def _bound_cues(text: str, max_cues: int | None) -> None:
    """Refuse a WebVTT/SRT text with more than ``max_cues`` timing lines, before parsing."""
    if max_cues is not None:
        arrows = text.count("-->")
        if arrows > max_cues:
            raise CaptionFormatError("too_many_cues", f"{arrows} cue timings > subtitles.max_cues={max_cues}")


def _webvtt_cues(captions) -> list[RawCue]:
    cues = []
    for c in captions:
        start = c.start_time.in_milliseconds() / 1000
        end = c.end_time.in_milliseconds() / 1000
        if end < start:  # a cue that ends before it starts carries no usable timing
            continue
        cues.append((start, end, c.raw_text))
    return cues


def parse_vtt(text: str, max_cues: int | None = None) -> list[RawCue]:
    _bound_cues(text, max_cues)
    try:
        return _webvtt_cues(webvtt.from_string(text.lstrip("\ufeff")))
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError) as e:
        raise CaptionFormatError("malformed_vtt", str(e)) from None
    except (ValueError, IndexError, AttributeError) as e:
        raise CaptionFormatError("malformed_vtt", f"{type(e).__name__}: {e}") from None


def _number_cues(text: str) -> str:
    """Give every SRT timing line that lacks one a cue number. Many SRT writers omit
    them and players do not need them, but webvtt-py's reader does. (The ``srt``
    package reads such files, but its regex backtracks quadratically on long runs of
    blank lines or digits: minutes for a hostile 5 MiB file.)"""
    out: list[str] = []
    for line in text.strip().split("\n"):  # as webvtt-py splits: on \n only
        if "-->" in line and not (out and out[-1].strip().isdigit()):
            out.append(str(len(out) + 1))  # webvtt-py checks that it is a number, not which
        out.append(line)
    return "\n".join(out)


def parse_srt(text: str, max_cues: int | None = None) -> list[RawCue]:
    """SRT through webvtt-py; cue numbers optional, as players accept them."""
    _bound_cues(text, max_cues)
    try:
        return _webvtt_cues(webvtt.from_buffer(io.StringIO(_number_cues(text.lstrip("\ufeff"))), format="srt"))
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError) as e:
        raise CaptionFormatError("malformed_srt", str(e)) from None
    except (ValueError, IndexError, AttributeError) as e:
        raise CaptionFormatError("malformed_srt", f"{type(e).__name__}: {e}") from None


def parse_json3(text: str, max_cues: int | None = None) -> list[RawCue]:
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
    if max_cues is not None and len(events) > max_cues:
        raise CaptionFormatError("too_many_cues", f"{len(events)} events > subtitles.max_cues={max_cues}")
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


PARSERS = {"vtt": parse_vtt, "srt": parse_srt, "json3": parse_json3}


def parse_caption_bytes(fmt: str, data: bytes, lang: str = "", cfg: SubtitlesConfig = DEFAULT_LIMITS) -> ParsedCaptions:
    """Parse a subtitle file's bytes in format ``fmt`` (json3, vtt or srt) whose track
    claims language ``lang`` (guides encoding detection; may be empty), within the
    caps of ``cfg``. Raises CaptionFormatError with the reason."""
    parser = PARSERS.get(fmt)
    if parser is None:
        raise CaptionFormatError("unsupported_format", fmt)
    if len(data) > cfg.max_track_bytes:
        raise CaptionFormatError("track_too_large", f"{len(data)} bytes > subtitles.max_track_bytes={cfg.max_track_bytes}")
    try:
        text, encoding = decode_caption_bytes(data, lang)
    except UndecodableError as e:
        raise CaptionFormatError("undecodable", str(e)) from None
    cues = parser(text, max_cues=cfg.max_cues)
    if len(cues) > cfg.max_cues:  # a second guard; the parsers refuse before building this many
        raise CaptionFormatError("too_many_cues", f"{len(cues)} cues > subtitles.max_cues={cfg.max_cues}")
    kept, repairs, dropped = [], 0, Counter()
    for start, end, raw in cues:
        if end - start > cfg.max_cue_s:
            dropped["cue_too_long"] += 1
            continue
        raw, repaired = repair_text(raw)
        repairs += repaired
        if still_mojibake(raw):
            dropped["mojibake"] += 1
            continue
        kept.append((start, end, raw))
    if cues and not kept:
        reason, n = dropped.most_common(1)[0]
        why = f"longer than subtitles.max_cue_s={cfg.max_cue_s}" if reason == "cue_too_long" else "mojibake ftfy cannot mend"
        raise CaptionFormatError(reason, f"all {len(cues)} cues dropped, {n} {why}")
    return ParsedCaptions(fmt, kept, encoding, repairs, dict(dropped))


def parse_caption_file(path: str | Path, lang: str = "", cfg: SubtitlesConfig = DEFAULT_LIMITS) -> ParsedCaptions:
    """Parse by extension (``.vtt``, ``.srt``, ``.json3``); caps as for bytes, the size
    checked before the file is read."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    try:
        size = path.stat().st_size
        if size > cfg.max_track_bytes:
            raise CaptionFormatError("track_too_large", f"{path.name}: {size} bytes > subtitles.max_track_bytes={cfg.max_track_bytes}")
        data = path.read_bytes()
    except FileNotFoundError:
        raise CaptionFormatError("missing_file", path.name) from None
    return parse_caption_bytes(fmt, data, lang, cfg)
