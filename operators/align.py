"""Align stage: clips from the pivot track, every other language matched by time.

The pivot is ``align.pivot`` (English by default) when its track survived language ID,
else the first surviving track in the order of ``langs``. Clips are the pivot's
segments, merged while shorter than ``min_clip_s`` and split when longer than
``max_clip_s``. Each cue of another track goes to the clip it overlaps most, if that
overlap covers at least ``min_overlap`` of the cue (or of the clip, for a cue that spans
several clips): translations cut differently or shifted by a few hundred ms land in the
right clip. Missing languages are recorded per video with why they are missing.
"""

from __future__ import annotations

import math

from multihowto.operators.base import Operator, StageError
from multihowto.operators.caption_text import join_texts
from multihowto.schemas.config import AlignConfig
from multihowto.schemas.item import Clip, VideoItem

Cue = tuple[float, float, str]


def build_clips(pivot: list[Cue], min_s: float, max_s: float) -> list[dict]:
    """Clips ``{start, end, text}`` from pivot segments, each of length within
    ``[min_s, max_s]`` where the material allows (a lone short video stays short)."""
    merged: list[list] = []
    for start, end, text in pivot:
        if merged and merged[-1][1] - merged[-1][0] < min_s and start - merged[-1][1] < min_s:
            merged[-1][1] = end
            merged[-1][2] = join_texts([merged[-1][2], text])
        else:
            merged.append([start, end, text])
    if len(merged) > 1 and merged[-1][1] - merged[-1][0] < min_s:
        last = merged.pop()
        merged[-1][1] = last[1]
        merged[-1][2] = join_texts([merged[-1][2], last[2]])
    clips = []
    for start, end, text in merged:
        pieces = max(1, int(-(-(end - start) // max_s)))
        if pieces == 1:
            clips.append({"start": start, "end": end, "text": text})
            continue
        words = text.split()
        step = (end - start) / pieces
        for p in range(pieces):
            lo, hi = len(words) * p // pieces, len(words) * (p + 1) // pieces
            clips.append({"start": start + p * step, "end": start + (p + 1) * step, "text": " ".join(words[lo:hi])})
    return clips


def planned_clips(pivot: list[Cue], max_s: float) -> int:
    """An upper bound of the clips ``build_clips`` makes from ``pivot``, counted without
    making them (a cue split in pieces of ``max_s`` counts each piece)."""
    return sum(max(1, math.ceil(max(0.0, end - start) / max_s)) for start, end, _ in pivot)


def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def assign_cues(clips: list[dict], cues: list[Cue], min_overlap: float) -> list[tuple[str, float]]:
    """For each clip, the joined text of the cues assigned to it and the alignment
    confidence (share of the clip's time covered by those cues, capped at 1)."""
    texts: list[list[str]] = [[] for _ in clips]
    covered = [0.0] * len(clips)
    for start, end, text in cues:
        best, best_ov = -1, 0.0
        for i, clip in enumerate(clips):
            ov = overlap(start, end, clip["start"], clip["end"])
            if ov > best_ov:
                best, best_ov = i, ov
        if best < 0:
            continue
        clip = clips[best]
        cue_len = max(end - start, 1e-6)
        clip_len = max(clip["end"] - clip["start"], 1e-6)
        if best_ov / cue_len >= min_overlap or best_ov / clip_len >= min_overlap:
            texts[best].append(text)
            covered[best] += best_ov
    return [
        (join_texts(t), round(min(1.0, covered[i] / max(clips[i]["end"] - clips[i]["start"], 1e-6)), 3))
        for i, t in enumerate(texts)
    ]


class AlignTracks(Operator[AlignConfig]):
    name = "align"

    def __init__(self, config: AlignConfig, langs: tuple[str, ...]):
        super().__init__(config)
        self.langs = tuple(langs)

    def process(self, item: VideoItem) -> VideoItem:
        cfg = self.config
        tracks = item.tracks
        order = [cfg.pivot] + [lang for lang in self.langs if lang != cfg.pivot]
        pivot = next((lang for lang in order if lang in tracks), None)
        if pivot is None:
            raise StageError("no_usable_subtitles", "every track was rejected or unreadable")
        pivot_cues = [tuple(c) for c in tracks[pivot].cues]
        duration = item.info.get("duration")
        if isinstance(duration, int | float) and math.isfinite(duration) and duration > 0:
            # nothing is spoken after the end the source states: no clip is planned there
            pivot_cues = [(s, min(e, duration), t) for s, e, t in pivot_cues if s < duration]
        if planned_clips(pivot_cues, cfg.max_clip_s) > cfg.max_clips_per_video:
            raise StageError("too_many_clips", f"the {pivot} track would give more than {cfg.max_clips_per_video} clips")
        raw = build_clips(pivot_cues, cfg.min_clip_s, cfg.max_clip_s)
        texts: list[dict[str, str]] = [{pivot: c["text"]} for c in raw]
        confidence: list[dict[str, float]] = [{pivot: 1.0} for _ in raw]
        for lang in self.langs:
            if lang == pivot or lang not in tracks:
                continue
            assigned = assign_cues(raw, [tuple(c) for c in tracks[lang].cues], cfg.min_overlap)
            for i, (text, conf) in enumerate(assigned):
                if text:
                    texts[i][lang] = text
                    confidence[i][lang] = conf
        kept = [i for i, t in enumerate(texts) if t.get(pivot)]
        item.clips = [
            Clip(index=n, start=round(raw[i]["start"], 3), end=round(raw[i]["end"], 3), texts=texts[i], confidence=confidence[i])
            for n, i in enumerate(kept)
        ]
        for lang in self.langs:
            if lang in tracks:
                continue
            if lang in item.lid_rejected:
                item.missing_langs[lang] = f"lid_{item.lid_rejected[lang]}"
            elif lang in item.track_errors:
                item.missing_langs[lang] = item.track_errors[lang]
            else:
                item.missing_langs[lang] = "no_track"
        item.pivot = pivot
        if not item.clips:
            raise StageError("no_clips", "the pivot track yielded no clip")
        return item
