"""Subtitles stage: every downloaded track to one clean cue list per language.

It reads the raw files the download stage fetched (``item.raw_tracks``). The item gains
``tracks`` ({lang: Track}, kind ``manual``, ``asr`` or ``asr-rolling``, with the codec
the file was read in, the cues mended of double encoding and the cues dropped by reason)
and ``track_errors`` ({lang: reason}) for the tracks that could not be read. A broken track never fails the video; a video with no
readable track fails with ``no_subtitles``. In source mode (``source.captions``) the
tracks come from released how2 JSON files instead of downloaded files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from multihowto.operators.base import Operator, StageError
from multihowto.operators.caption_formats import (
    DEFAULT_LIMITS,
    CaptionFormatError,
    ParsedCaptions,
    parse_caption_bytes,
    parse_caption_file,
)
from multihowto.operators.caption_text import dedupe_rolling, is_rolling, plain_segments
from multihowto.schemas.config import SubtitlesConfig
from multihowto.schemas.index import how2_file
from multihowto.schemas.item import Track, VideoItem


def read_track(path: str, lang: str = "", cfg: SubtitlesConfig = DEFAULT_LIMITS) -> dict:
    """Parse, de-duplicate (rolling ASR) and normalise one subtitle file whose track
    claims language ``lang`` (may be empty)."""
    return clean_track(parse_caption_file(path, lang, cfg), cfg.drop_sound_tags, cfg.min_cue_s)


def track_from_bytes(fmt: str, data: bytes, lang: str, cfg: SubtitlesConfig = DEFAULT_LIMITS) -> dict:
    """A downloaded track's bytes (format ``fmt``, claiming ``lang``) to its track
    dict; bad input raises CaptionFormatError with the reason."""
    return clean_track(parse_caption_bytes(fmt, data, lang, cfg), cfg.drop_sound_tags, cfg.min_cue_s)


def clean_track(parsed: ParsedCaptions, drop_sound_tags: bool = True, min_cue_s: float = 0.05) -> dict:
    raw = parsed.cues
    rolling = parsed.format == "vtt" and is_rolling(raw)
    segments = dedupe_rolling(raw, drop_sound_tags) if rolling else plain_segments(raw, drop_sound_tags, min_cue_s)
    if not segments:
        raise CaptionFormatError("empty_track", "no cue with text")
    return {
        "cues": [[round(s.start, 3), round(s.end, 3), s.text] for s in segments],
        "format": parsed.format,
        "kind": "asr-rolling" if rolling else "manual",
        "encoding": parsed.encoding,
        "repairs": parsed.repairs,
        "dropped_cues": parsed.dropped,
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


def how2_track(entry: dict, drop_sound_tags: bool = True, cfg: SubtitlesConfig = DEFAULT_LIMITS) -> dict:
    """One video's entry of a how2 file as a track, within ``cfg``'s cue caps;
    malformed entries raise CaptionFormatError."""
    try:
        triples = list(zip(entry["start"], entry["end"], entry["text"], strict=True))
        timed = [(float(s), float(e), str(t)) for s, e, t in triples[: cfg.max_cues + 1]]
    except (KeyError, TypeError, ValueError) as e:
        raise CaptionFormatError("malformed_how2", f"{type(e).__name__}: {e}") from None
    if len(triples) > cfg.max_cues:
        raise CaptionFormatError("too_many_cues", f"{len(triples)} cues > subtitles.max_cues={cfg.max_cues}")
    cues = [c for c in timed if math.isfinite(c[0]) and c[0] <= c[1] <= c[0] + cfg.max_cue_s]
    long = sum(1 for s, e, _ in timed if math.isfinite(s) and e > s + cfg.max_cue_s)
    segments = plain_segments(cues, drop_sound_tags)
    if not segments:
        raise CaptionFormatError("cue_too_long" if long else "empty_track", "no cue with text")
    return {"cues": [[round(s.start, 3), round(s.end, 3), s.text] for s in segments], "format": "how2", "kind": "manual",
            "encoding": "utf-8", "repairs": 0, "dropped_cues": {"cue_too_long": long} if long else {}}


class ParseSubtitles(Operator[SubtitlesConfig]):
    """Raw tracks (``item.raw_tracks``) to clean ``item.tracks``; in source mode
    (``captions``: a folder of released how2 files) the tracks come from there."""

    name = "subtitles"

    def __init__(self, config: SubtitlesConfig, langs: tuple[str, ...], captions: str = ""):
        super().__init__(config)
        self.langs = tuple(langs)
        self.captions = captions

    def setup(self) -> None:
        self.how2 = load_how2(self.captions, self.langs) if self.captions else None

    def release(self, item: VideoItem) -> None:
        item.raw_tracks = {}  # the parsed tracks replace the raw files

    def process(self, item: VideoItem) -> VideoItem:
        if self.how2 is not None:
            return self._from_how2(item)
        cfg = self.config
        for lang, raw in sorted(item.raw_tracks.items()):
            try:
                track = track_from_bytes(raw.format, raw.data, lang, cfg)
            except CaptionFormatError as e:
                item.track_errors[lang] = e.reason
                continue
            if raw.kind == "asr" and track["kind"] == "manual":
                track["kind"] = "asr"
            item.tracks[lang] = Track(tag=raw.tag, **track)
        if not item.tracks:
            detail = ", ".join(f"{k}={v}" for k, v in item.track_errors.items()) or "the video has no subtitle track"
            raise StageError("no_subtitles", detail)
        return item

    def _from_how2(self, item: VideoItem) -> VideoItem:
        for lang, doc in self.how2.items():
            entry = doc.get(item.video_id)
            if entry is None:
                continue
            try:
                item.tracks[lang] = Track(**how2_track(entry, self.config.drop_sound_tags, self.config))
            except CaptionFormatError as e:
                item.track_errors[lang] = e.reason
        if not item.tracks:
            raise StageError("no_subtitles", "the video is in none of the caption files")
        return item
