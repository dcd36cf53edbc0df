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

from multihowto.operators.base import Item, Operator, StageError
from multihowto.operators.caption_text import join_texts
from multihowto.schemas.config import RegionConfig

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


class AlignTracks(Operator[RegionConfig]):
    name = "align"

    def process(self, item: Item) -> Item:
        cfg = self.config.align
        tracks = item.get("tracks", {})
        order = [cfg.pivot] + [lang for lang in self.config.langs if lang != cfg.pivot]
        pivot = next((lang for lang in order if lang in tracks), None)
        if pivot is None:
            raise StageError("no_usable_subtitles", "every track was rejected or unreadable")
        clips = build_clips([tuple(c) for c in tracks[pivot]["cues"]], cfg.min_clip_s, cfg.max_clip_s)
        for clip in clips:
            clip["texts"] = {pivot: clip.pop("text")}
            clip["confidence"] = {pivot: 1.0}
        for lang in self.config.langs:
            if lang == pivot or lang not in tracks:
                continue
            for clip, (text, conf) in zip(clips, assign_cues(clips, [tuple(c) for c in tracks[lang]["cues"]], cfg.min_overlap), strict=True):
                if text:
                    clip["texts"][lang] = text
                    clip["confidence"][lang] = conf
        clips = [c for c in clips if c["texts"].get(pivot)]
        for i, clip in enumerate(clips):
            clip["index"] = i
            clip["start"] = round(clip["start"], 3)
            clip["end"] = round(clip["end"], 3)
        missing = {}
        for lang in self.config.langs:
            if lang in tracks:
                continue
            if lang in item.get("lid_rejected", {}):
                missing[lang] = f"lid_{item['lid_rejected'][lang]}"
            elif lang in item.get("track_errors", {}):
                missing[lang] = item["track_errors"][lang]
            else:
                missing[lang] = "no_track"
        item["pivot"] = pivot
        item["clips"] = clips
        item["missing_langs"] = missing
        if not clips:
            raise StageError("no_clips", "the pivot track yielded no clip")
        return item
