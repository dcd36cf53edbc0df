"""Time-coded test videos: every source frame shows its own timestamp.

ffmpeg's ``geq`` filter draws ``round(T * 1000)`` (T: the frame's own presentation time
in seconds; so up to 65.5 s) as 16 bits, one black or white cell each in a 4 x 4 grid over a square
frame. The cells are large (a quarter of the side), so the code survives any codec,
the frame stage's scale and crop and its JPEG; ``read_time`` reads it back from the
centres of the cells. Used by the frame-timing tests and bench/frames_timing.py.
"""

from __future__ import annotations

import io
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from multihowto.operators.ffmpeg_binary import ffmpeg_exe
from multihowto.operators.frames import split_jpeg_stream

SIDE = 256  # source frames are square: the frame stage's centre crop keeps every cell
DRAW_TIME = (
    "geq=lum='255*mod(floor(floor(T*1000+0.5)/pow(2\\,floor(X*4/W)+4*floor(Y*4/H)))\\,2)'"
    ":cb=128:cr=128"
)
# A variable frame rate: 25 fps for 2 s, 10 fps for 3 s, then 30 fps (frame N's time).
VFR_PTS = "if(lt(N,50),N/25,if(lt(N,80),2+(N-50)/10,5+(N-80)/30))"

# (name, encoder, container, extra encoder options): what imageio-ffmpeg's ffmpeg has.
CODECS = {
    "h264_mp4": ("libx264", "mp4", ["-preset", "veryfast", "-pix_fmt", "yuv420p"]),
    "mpeg4_avi": ("mpeg4", "avi", ["-q:v", "3"]),
    "vp9_webm": ("libvpx-vp9", "webm", ["-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k"]),
    "mjpeg_mkv": ("mjpeg", "mkv", ["-q:v", "3"]),
}


@dataclass(frozen=True)
class TimecodedVideo:
    path: Path
    times: list[float]  # every source frame's drawn time, in order (read back from a full decode)


def read_time(jpeg: bytes) -> float:
    """The time (seconds, to the millisecond) drawn into a frame."""
    a = np.asarray(Image.open(io.BytesIO(jpeg)).convert("L"), dtype=np.float64)
    cell = a.shape[0] / 4
    code = 0
    for k in range(16):
        y, x = divmod(k, 4)
        patch = a[int((y + 0.3) * cell) : int((y + 0.7) * cell), int((x + 0.3) * cell) : int((x + 0.7) * cell)]
        code |= int(patch.mean() > 128) << k
    return code / 1000


def source_times(path: Path) -> list[float]:
    """The drawn time of every source frame, decoded at full rate without resampling."""
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:V:0", "-fps_mode", "passthrough", "-enc_time_base", "1:90000",
           "-vf", "scale=64:64", "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "2", "-"]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    return [read_time(j) for j in split_jpeg_stream(out)]


def make_timecoded(out: Path, codec: str, rate: str = "25", seconds: float = 8.0, vfr: bool = False,
                   start_s: float = 0.0, with_audio: bool = False) -> TimecodedVideo:
    """Encode a time-coded video with ``CODECS[codec]``: constant ``rate`` for ``seconds``,
    or ``VFR_PTS`` (200 frames, about 9 s) when ``vfr``; the video stream starts at
    ``start_s`` (with an audio track from 0 when ``with_audio``, as muxed downloads have)."""
    encoder, container, opts = CODECS[codec]
    path = out / f"{codec}_{rate.replace('/', '_')}{'_vfr' if vfr else ''}{f'_at{start_s:g}' if start_s else ''}.{container}"
    pts = f"'({VFR_PTS})/TB'" if vfr else "PTS"
    if start_s:
        pts = f"{pts}+{start_s}/TB"
    frames = 200 if vfr else int(round(seconds * Fraction(rate)))  # rate: "25", "30000/1001"
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"color=c=gray:s={SIDE}x{SIDE}:r={rate}"]
    if with_audio:
        cmd += ["-f", "lavfi", "-i", f"sine=d={seconds + start_s}", "-c:a", "aac"]
    cmd += ["-vf", f"settb=1/90000,setpts={pts},{DRAW_TIME}", "-frames:v", str(frames), "-fps_mode", "passthrough",
            "-enc_time_base", "1:1000", "-c:v", encoder, *opts, str(path)]
    subprocess.run(cmd, check=True)
    return TimecodedVideo(path, source_times(path))


def timing_errors(kept: list[bytes], stated: list[float], source: list[float]) -> list[int]:
    """Per kept frame: how many source frames its picture lies from the picture on screen
    at its stated time (0: that very frame). On screen at t: the last source frame drawn
    at or before t (to the millisecond), or the first one before there is any."""
    source_ms = [round(s * 1000) for s in source]
    errors = []
    for jpeg, t in zip(kept, stated, strict=True):
        t_ms = round(t * 1000)
        on_screen = max([k for k, s in enumerate(source_ms) if s <= t_ms], default=0)
        shown = round(read_time(jpeg) * 1000)
        kept_at = min(range(len(source_ms)), key=lambda k: abs(source_ms[k] - shown))
        errors.append(abs(kept_at - on_screen))
    return errors


def error_periods(kept: list[bytes], stated: list[float], source: list[float]) -> list[float]:
    """Per kept frame: how far its picture's time lies from its stated time, in source-frame
    periods (the period in effect at the stated time: from the frame on screen then to the
    next). Under 1 is the bound the frame stage keeps by default."""
    out = []
    for jpeg, t in zip(kept, stated, strict=True):
        on_screen = max([k for k, s in enumerate(source) if s <= t + 0.0005], default=0)
        nxt = on_screen + 1 if on_screen + 1 < len(source) else on_screen
        period = (source[nxt] - source[nxt - 1]) if nxt > 0 else 1.0
        out.append(abs(read_time(jpeg) - t) / period)
    return out


def lateness_s(kept: list[bytes], stated: list[float]) -> list[float]:
    """Per kept frame: its drawn time minus its stated time, in seconds."""
    return [read_time(j) - t for j, t in zip(kept, stated, strict=True)]
