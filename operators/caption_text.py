"""Caption text: normalisation and YouTube rolling auto-caption de-duplication.

YouTube's ASR WebVTT shows each spoken line twice: as the new line of a two-line cue
(its words after the first carry inline ``<hh:mm:ss.mmm>`` timestamps inside ``<c>``)
and again, as the top line of the next cue; 10 ms "hold" cues repeat it once more.
Taking every cue's text verbatim repeats each word two or three times (the complaint of
HowTo100M/MIL-NCE users). :func:`dedupe_rolling` keeps each line once, timed from its
own cue.

Normalisation also strips the markup other tools leave in the text: ASS/SSA override
blocks in SRT (``{\\an8}``, ``{\\i1}``, ``{\\pos(10,20)}``; ``\\N`` and ``\\n`` are line
breaks, ``\\h`` a space), WebVTT ruby readings (``<ruby>漢<rt>kan</rt></ruby>`` keeps
漢), the tags of voice, class and language spans (their text kept), and control
characters (NUL and the rest of C0/C1 but tab and newline, which become spaces).
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

from multihowto.operators.caption_formats import RawCue

INLINE_TS = re.compile(r"<\d{1,2}:\d{2}:\d{2}[.,]\d{3}>|<\d{2}:\d{2}[.,]\d{3}>")
_TAG = re.compile(r"<[^>]*>")
# A ruby reading (<rt>) or fallback parenthesis (<rp>) with its text; its end tag may be
# implied by </ruby> or the end of the line, as in HTML.
_RUBY_ANNOTATION = re.compile(r"<(rt|rp)(?:[\s.][^>]*)?>.*?(?:</\1\s*>|(?=</ruby\s*>)|$)", re.IGNORECASE | re.DOTALL)
_ASS_OVERRIDE = re.compile(r"\{\\[^}]*\}")  # {\an8}, {\i1}, {\pos(10,20)}, {\fad(200,200)\c&HFFFFFF&}
_ASS_BREAK = re.compile(r"\\[Nn]")
_ASS_HARD_SPACE = re.compile(r"\\h")
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x9f\ufeff]")  # \t \n \v \f \r \x1c-\x1f: whitespace, collapsed below
_SOUND = re.compile(r"\[[^\]]{0,40}\]|\((?:music|applause|laughter|laughs|inaudible)\)|[♪♫♬]+", re.IGNORECASE)
_SPEAKER = re.compile(r"^\s*(?:>>+|-\s+|[A-Z][A-Z .'-]{1,30}:\s)")
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
HOLD_CUE_S = 0.02


def _join(a: str, b: str) -> str:
    """Join two pieces of text; CJK on both sides of the seam gets no space."""
    if not a:
        return b
    if not b:
        return a
    if _CJK.match(a[-1]) and _CJK.match(b[0]):
        return a + b
    return f"{a} {b}"


def normalise_line(raw: str, drop_sound_tags: bool = True) -> str:
    """One caption line to clean text: tags, ASS overrides, ruby readings and inline
    timestamps removed, entities decoded, control characters dropped, speaker marks and
    (optionally) sound tags dropped, whitespace collapsed, Unicode NFC."""
    text = _ASS_OVERRIDE.sub("", raw)
    text = _ASS_HARD_SPACE.sub(" ", _ASS_BREAK.sub(" ", text))
    text = _RUBY_ANNOTATION.sub("", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = _CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    if drop_sound_tags:
        text = _SOUND.sub(" ", text)
    text = _SPEAKER.sub("", text)
    return " ".join(text.split())


def normalise_text(raw: str, drop_sound_tags: bool = True) -> str:
    """A whole cue (possibly several lines; ASS ``\\N`` breaks too) to one line of clean text."""
    out = ""
    for line in _ASS_BREAK.sub("\n", raw).split("\n"):
        out = _join(out, normalise_line(line, drop_sound_tags))
    return out


def join_texts(texts: list[str]) -> str:
    out = ""
    for t in texts:
        out = _join(out, t)
    return out


def is_rolling(cues: list[RawCue]) -> bool:
    """A track is rolling ASR when its cues carry inline word timestamps, or when at
    least a quarter of them are hold cues of at most 20 ms."""
    if any(INLINE_TS.search(raw) for _, _, raw in cues):
        return True
    holds = sum(1 for s, e, _ in cues if e - s <= HOLD_CUE_S)
    return len(cues) >= 4 and holds * 4 >= len(cues)


@dataclass
class Segment:
    start: float
    end: float
    text: str


def dedupe_rolling(cues: list[RawCue], drop_sound_tags: bool = True) -> list[Segment]:
    """Turn rolling auto-caption cues into non-overlapping segments, each spoken line
    once. Hold cues are skipped; of a speech cue only its last non-blank line is new; a
    line that repeats or grows the previous one extends it instead of repeating it."""
    segments: list[Segment] = []
    for start, end, raw in sorted(cues, key=lambda c: (c[0], c[1])):
        if end - start <= HOLD_CUE_S:
            continue
        lines = [line for line in raw.split("\n") if line.strip()]
        if not lines:
            continue
        text = normalise_line(lines[-1], drop_sound_tags)
        if not text:
            continue
        prev = segments[-1] if segments else None
        if prev is not None and (text == prev.text or text.startswith(prev.text + " ")):
            prev.text = text
            prev.end = max(prev.end, end)
            continue
        if prev is not None and prev.end > start:
            prev.end = start
        segments.append(Segment(start, end, text))
    return [s for s in segments if s.end > s.start]


def plain_segments(cues: list[RawCue], drop_sound_tags: bool = True, min_cue_s: float = 0.0) -> list[Segment]:
    """Cues of a manual track as segments: text normalised, empty and too-short cues
    dropped, exact consecutive repeats merged."""
    out: list[Segment] = []
    for start, end, raw in sorted(cues, key=lambda c: (c[0], c[1])):
        text = normalise_text(raw, drop_sound_tags)
        if not text or end - start < min_cue_s:
            continue
        if out and out[-1].text == text and start - out[-1].end < 0.5:
            out[-1].end = max(out[-1].end, end)
            continue
        out.append(Segment(start, end, text))
    return out
