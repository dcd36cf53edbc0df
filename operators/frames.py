"""Frames stage: one ffmpeg decode per video, frames cut per clip.

ffmpeg (command built with ffmpeg-python) samples the video at ``fps``, scales the short
side to ``size``, centre-crops a square and JPEG-encodes each sampled frame itself
(mjpeg to a pipe: measured in bench/, this costs what a bare decode costs, where
encoding in Python cost about 12% more). Frame i stands for time ``i / fps``; it belongs
to every clip with ``start <= t < end``. A clip shorter than a frame period gets the
frame nearest its middle. Each clip's frames are packed as ``frames.npz``
(schemas/frames.py) into the video's scratch folder (``Clip.frames_path``), so a unit's
frames wait on local disk, not in memory, until its shard is written; the video file is
removed once decoded.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import ffmpeg

from multihowto.operators.base import Operator, StageError
from multihowto.operators.ffmpeg_binary import ffmpeg_exe
from multihowto.schemas.config import FramesConfig
from multihowto.schemas.frames import pack_jpegs
from multihowto.schemas.item import VideoItem


def ffmpeg_qscale(quality: int) -> int:
    """JPEG quality 1..100 (Pillow's scale) to ffmpeg's mjpeg ``-q:v`` 31..2."""
    return int(round(2 + (100 - quality) * 29 / 99))


def decode_command(path: str, cfg: FramesConfig) -> list[str]:
    """One ffmpeg run: decode, sample at ``fps``, scale the short side, centre crop,
    and JPEG-encode each sampled frame with ffmpeg's mjpeg encoder to a pipe."""
    s = cfg.size
    stream = (
        ffmpeg.input(path, threads=cfg.threads)
        .video.filter("fps", fps=cfg.fps, round="down")
        .filter("scale", f"if(lt(iw,ih),{s},-2)", f"if(lt(iw,ih),-2,{s})")
        .filter("crop", s, s)
    )
    out = ffmpeg.output(
        stream, "pipe:", format="image2pipe", vcodec="mjpeg", pix_fmt="yuvj444p",
        **{"q:v": ffmpeg_qscale(cfg.jpeg_quality)}, threads=cfg.threads,
    )
    return out.global_args("-hide_banner", "-loglevel", "error", "-nostdin").compile(cmd=ffmpeg_exe())


def split_jpeg_stream(data: bytes) -> list[bytes]:
    """Split concatenated baseline JPEG files (ffmpeg's image2pipe of mjpeg).

    Walks the markers of each file: length-prefixed segments up to SOS, then the
    entropy-coded data, where a 0xFF byte is followed by 0x00 (stuffing) or RST0-7,
    so the first other marker there is EOI. A truncated tail is dropped."""
    out, pos, n = [], 0, len(data)
    while pos + 4 <= n and data[pos : pos + 2] == b"\xff\xd8":
        i = pos + 2
        end = -1
        while i + 2 <= n:
            if data[i] != 0xFF:
                return out  # not a marker where one must be: corrupt stream
            marker = data[i + 1]
            if marker == 0xD9:
                end = i + 2
                break
            if i + 4 > n:
                break
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            i += 2 + length
            if marker == 0xDA:  # SOS: scan the entropy-coded data for the next marker
                while i + 1 < n:
                    j = data.find(b"\xff", i)
                    if j < 0 or j + 1 >= n:
                        i = n
                        break
                    nxt = data[j + 1]
                    if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                        i = j + 2
                        continue
                    i = j
                    break
        if end < 0:
            break
        out.append(data[pos:end])
        pos = end
    return out


def decode_video(path: str, cfg: FramesConfig) -> list[bytes]:
    """The JPEG of every sampled frame, in time order. Raises StageError
    ``corrupt_video`` when ffmpeg fails or yields no frame."""
    proc = subprocess.run(decode_command(path, cfg), capture_output=True, check=False)
    jpegs = split_jpeg_stream(proc.stdout)
    if proc.returncode != 0 and not jpegs:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["ffmpeg failed"]
        raise StageError("corrupt_video", tail[0])
    if not jpegs:
        raise StageError("corrupt_video", "no frame decoded")
    return jpegs


def frames_for_clip(start: float, end: float, n_frames: int, fps: float) -> list[int]:
    idx = [i for i in range(n_frames) if start <= i / fps < end]
    if not idx and n_frames:
        idx = [min(n_frames - 1, max(0, round((start + end) / 2 * fps)))]
    return idx


class ExtractFrames(Operator[FramesConfig]):
    name = "frames"

    def release(self, item: VideoItem) -> None:
        if item.video_path:  # decoded or failed: the video file is not needed again
            Path(item.video_path).unlink(missing_ok=True)
            item.video_path = ""

    def process(self, item: VideoItem) -> VideoItem:
        cfg = self.config
        jpegs = decode_video(item.video_path, cfg)
        for clip in item.clips:
            idx = frames_for_clip(clip.start, clip.end, len(jpegs), cfg.fps)
            path = item.scratch_dir / f"clip-{clip.index:05d}.frames.npz"
            path.write_bytes(pack_jpegs([jpegs[i] for i in idx]))
            clip.frames_path, clip.n_frames = str(path), len(idx)
        item.n_frames = len(jpegs)
        return item
