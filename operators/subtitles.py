"""Subtitles stage: every downloaded track to one clean cue list per language.

It reads the raw files the download stage carried in the item (``subtitles``: {lang:
{"format", "data"}}), so it can run on any node. The item gains ``tracks``: {lang: {"cues": [[start, end, text], ...], "format": ...,
"kind": "manual" | "asr-rolling" | "asr"}} and ``track_errors``: {lang: reason} for the
tracks that could not be read. A broken track never fails the video; a video with no
readable track fails with ``no_subtitles``. In source mode (``source.captions``) the
tracks come from released how2 JSON files instead of downloaded files.
"""

from __future__ import annotations

import json
from pathlib import Path

from multihowto.operators.base import Item, Operator, StageError
from multihowto.operators.caption_formats import (
    CaptionFormatError,
    parse_caption_bytes,
    parse_caption_file,
)
from multihowto.operators.caption_text import dedupe_rolling, is_rolling, plain_segments
from multihowto.schemas.config import RegionConfig
from multihowto.schemas.index import how2_file


def read_track(path: str, drop_sound_tags: bool = True, min_cue_s: float = 0.05) -> dict:
    """Parse, de-duplicate (rolling ASR) and normalise one subtitle file."""
    fmt, raw = parse_caption_file(path)
    return clean_track(fmt, raw, drop_sound_tags, min_cue_s)


def clean_track(fmt: str, raw: list, drop_sound_tags: bool = True, min_cue_s: float = 0.05) -> dict:
    rolling = fmt == "vtt" and is_rolling(raw)
    segments = dedupe_rolling(raw, drop_sound_tags) if rolling else plain_segments(raw, drop_sound_tags, min_cue_s)
    if not segments:
        raise CaptionFormatError("empty_track", "no cue with text")
    return {
        "cues": [[round(s.start, 3), round(s.end, 3), s.text] for s in segments],
        "format": fmt,
        "kind": "asr-rolling" if rolling else "manual",
    }


def load_how2(folder: str | Path, langs: tuple[str, ...]) -> dict[str, dict]:
    """Released captions: ``how2_{lang}.json`` per language, or HowTo100M's
    ``caption.json`` for English. Each maps video_id -> {"text", "start", "end"}."""
    folder = Path(folder)
    out = {}
    for lang in langs:
        path = folder / how2_file(lang)
        if not path.exists() and lang == "en" and (folder / "caption.json").exists():
            path = folder / "caption.json"
        if path.exists():
            out[lang] = json.loads(path.read_text(encoding="utf-8"))
    return out


def how2_track(entry: dict, drop_sound_tags: bool = True) -> dict:
    """One video's entry of a how2 file as a track; malformed entries raise
    CaptionFormatError."""
    try:
        triples = list(zip(entry["start"], entry["end"], entry["text"], strict=True))
        cues = [(float(s), float(e), str(t)) for s, e, t in triples if float(e) >= float(s)]
    except (KeyError, TypeError, ValueError) as e:
        raise CaptionFormatError("malformed_how2", f"{type(e).__name__}: {e}") from None
    segments = plain_segments(cues, drop_sound_tags)
    if not segments:
        raise CaptionFormatError("empty_track", "no cue with text")
    return {"cues": [[round(s.start, 3), round(s.end, 3), s.text] for s in segments], "format": "how2", "kind": "manual"}


class ParseSubtitles(Operator[RegionConfig]):
    name = "subtitles"
    drops = ("subtitles",)  # the raw files: parsed tracks replace them

    def setup(self) -> None:
        folder = self.config.source.captions
        self.how2 = load_how2(folder, tuple(self.config.langs)) if folder else None

    def process(self, item: Item) -> Item:
        if self.how2 is not None:
            return self._from_how2(item)
        cfg = self.config.subtitles
        tracks, errors = {}, {}
        for lang, sub in sorted(item.get("subtitles", {}).items()):
            try:
                raw = parse_caption_bytes(sub["format"], sub["data"])
                track = clean_track(sub["format"], raw, cfg.drop_sound_tags, cfg.min_cue_s)
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

    def _from_how2(self, item: Item) -> Item:
        tracks, errors = {}, {}
        for lang, doc in self.how2.items():
            entry = doc.get(item["video_id"])
            if entry is None:
                continue
            try:
                tracks[lang] = how2_track(entry, self.config.subtitles.drop_sound_tags)
            except CaptionFormatError as e:
                errors[lang] = e.reason
        item["tracks"] = tracks
        item["track_errors"] = errors
        if not tracks:
            raise StageError("no_subtitles", "the video is in none of the caption files")
        return item
