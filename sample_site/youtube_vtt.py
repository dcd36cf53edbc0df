"""Writers for the subtitle files the sample site serves.

Plain tracks go through webvtt-py's writer. YouTube's rolling ASR captions have a shape
no library writes, so it is written here, following what YouTube serves for
``--write-auto-subs --sub-format vtt``:

- a header with ``Kind: captions`` and ``Language:``;
- each spoken line is a cue of two lines: the previous line as plain text (a single
  space for the first), then the new words, each after the first preceded by an inline
  ``<hh:mm:ss.mmm>`` word timestamp and wrapped in ``<c>``;
- it is followed by a 10 ms "hold" cue that shows the finished line alone;
- cue settings ``align:start position:0%`` on every cue.
"""

from __future__ import annotations

from pathlib import Path

import webvtt


def vtt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def write_vtt(path: Path, cues: list[tuple[float, float, str]]) -> None:
    """A plain WebVTT file, one caption per (start, end, text)."""
    captions = [webvtt.Caption(start=vtt_time(s), end=vtt_time(e), text=t) for s, e, t in cues]
    webvtt.WebVTT(captions=captions).save(str(path))


def word_times(start: float, end: float, words: list[str]) -> list[float]:
    """Onset of each word, spread over the first 80% of the line by character count
    (ASR lines end in a short pause)."""
    span = (end - start) * 0.8
    total = sum(len(w) + 1 for w in words)
    onsets, acc = [], 0
    for w in words:
        onsets.append(round(start + span * acc / total, 3))
        acc += len(w) + 1
    return onsets


def rolling_vtt_text(cues: list[tuple[float, float, str]], lang: str = "en") -> str:
    """The text of a YouTube-style rolling auto-caption track for these spoken lines.

    Each line is shown from its start until the next line starts (or its own end for the
    last), with a 10 ms hold cue after it: the timing YouTube gives ASR tracks."""
    settings = "align:start position:0%"
    out = ["WEBVTT", "Kind: captions", f"Language: {lang}", ""]
    previous = " "
    for i, (start, end, text) in enumerate(cues):
        words = text.lower().split()
        onsets = word_times(start, end, words)
        stop = cues[i + 1][0] - 0.01 if i + 1 < len(cues) else end
        timed = words[0] + "".join(
            f"<{vtt_time(t)}><c> {w}</c>" for t, w in zip(onsets[1:], words[1:], strict=True)
        )
        out += [f"{vtt_time(start)} --> {vtt_time(stop)} {settings}", previous, timed, ""]
        finished = " ".join(words)
        out += [f"{vtt_time(stop)} --> {vtt_time(stop + 0.01)} {settings}", finished, " ", ""]
        previous = finished
    return "\n".join(out)


def write_rolling_vtt(path: Path, cues: list[tuple[float, float, str]], lang: str = "en") -> None:
    Path(path).write_text(rolling_vtt_text(cues, lang), encoding="utf-8")
