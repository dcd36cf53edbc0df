"""Subtitles stage: every downloaded track to one clean cue list per language.

The item gains ``tracks``: {lang: {"cues": [[start, end, text], ...], "format": ...,
"kind": "manual" | "asr-rolling" | "asr"}} and ``track_errors``: {lang: reason} for the
tracks that could not be read. A broken track never fails the video; a video with no
readable track fails with ``no_subtitles``.
"""

from __future__ import annotations

from multihowto.operators.base import Item, Operator, StageError
from multihowto.operators.caption_formats import CaptionFormatError, parse_caption_file
from multihowto.operators.caption_text import dedupe_rolling, is_rolling, plain_segments
from multihowto.schemas.config import RegionConfig


def read_track(path: str, drop_sound_tags: bool = True, min_cue_s: float = 0.05) -> dict:
    """Parse, de-duplicate (rolling ASR) and normalise one subtitle file."""
    fmt, raw = parse_caption_file(path)
    rolling = fmt == "vtt" and is_rolling(raw)
    segments = dedupe_rolling(raw, drop_sound_tags) if rolling else plain_segments(raw, drop_sound_tags, min_cue_s)
    if not segments:
        raise CaptionFormatError("empty_track", "no cue with text")
    return {
        "cues": [[round(s.start, 3), round(s.end, 3), s.text] for s in segments],
        "format": fmt,
        "kind": "asr-rolling" if rolling else "manual",
    }


class ParseSubtitles(Operator[RegionConfig]):
    name = "subtitles"

    def process(self, item: Item) -> Item:
        cfg = self.config.subtitles
        tracks, errors = {}, {}
        for lang, path in sorted(item.get("subtitle_files", {}).items()):
            try:
                track = read_track(path, cfg.drop_sound_tags, cfg.min_cue_s)
            except CaptionFormatError as e:
                errors[lang] = e.reason
                continue
            if item.get("subtitle_kinds", {}).get(lang) == "asr" and track["kind"] == "manual":
                track["kind"] = "asr"
            tracks[lang] = track
        item["tracks"] = tracks
        item["track_errors"] = errors
        if not tracks:
            detail = ", ".join(f"{k}={v}" for k, v in errors.items()) or "the video has no subtitle track"
            raise StageError("no_subtitles", detail)
        return item
