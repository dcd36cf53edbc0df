"""Frames stage: one ffmpeg decode per video, frames cut per clip.

ffmpeg (command built with ffmpeg-python) samples the video at ``fps``, scales the short
side to ``size`` and centre-crops a square, and writes raw RGB to a pipe. Frame i stands
for time ``i / fps``; it belongs to every clip with ``start <= t < end``. A clip shorter
than a frame period gets the frame nearest its middle. Each clip's frames are JPEG
encoded and packed as ``frames.npz`` (schemas/frames.py). The item gains ``clip_frames``
(one packed blob per clip) and ``n_frames``.
"""

from __future__ import annotations

import io
import subprocess

import ffmpeg
import numpy as np

from multihowto.operators.base import Item, Operator, StageError
from multihowto.operators.ffmpeg_binary import ffmpeg_exe
from multihowto.schemas.config import FramesConfig, RegionConfig
from multihowto.schemas.frames import pack_jpegs


def decode_command(path: str, cfg: FramesConfig) -> list[str]:
    s = cfg.size
    stream = (
        ffmpeg.input(path, threads=cfg.threads)
        .video.filter("fps", fps=cfg.fps, round="down")
        .filter("scale", f"if(lt(iw,ih),{s},-2)", f"if(lt(iw,ih),-2,{s})")
        .filter("crop", s, s)
    )
    out = ffmpeg.output(stream, "pipe:", format="rawvideo", pix_fmt="rgb24", threads=cfg.threads)
    return out.global_args("-hide_banner", "-loglevel", "error", "-nostdin").compile(cmd=ffmpeg_exe())


def decode_video(path: str, cfg: FramesConfig) -> np.ndarray:
    """All sampled frames, uint8 (N, size, size, 3). Raises StageError
    ``corrupt_video`` when ffmpeg fails or yields no frame."""
    proc = subprocess.run(decode_command(path, cfg), capture_output=True, check=False)
    frame_bytes = cfg.size * cfg.size * 3
    n = len(proc.stdout) // frame_bytes
    if proc.returncode != 0 and n == 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["ffmpeg failed"]
        raise StageError("corrupt_video", tail[0])
    if n == 0:
        raise StageError("corrupt_video", "no frame decoded")
    return np.frombuffer(proc.stdout[: n * frame_bytes], dtype=np.uint8).reshape(n, cfg.size, cfg.size, 3)


def frames_for_clip(start: float, end: float, n_frames: int, fps: float) -> list[int]:
    idx = [i for i in range(n_frames) if start <= i / fps < end]
    if not idx and n_frames:
        idx = [min(n_frames - 1, max(0, round((start + end) / 2 * fps)))]
    return idx


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class ExtractFrames(Operator[RegionConfig]):
    name = "frames"

    def process(self, item: Item) -> Item:
        cfg = self.config.frames
        frames = decode_video(item["video_path"], cfg)
        jpeg_cache: dict[int, bytes] = {}
        blobs, counts = [], []
        for clip in item["clips"]:
            idx = frames_for_clip(clip["start"], clip["end"], len(frames), cfg.fps)
            jpegs = []
            for i in idx:
                if i not in jpeg_cache:
                    jpeg_cache[i] = encode_jpeg(frames[i], cfg.jpeg_quality)
                jpegs.append(jpeg_cache[i])
            blobs.append(pack_jpegs(jpegs))
            counts.append(len(jpegs))
        item["clip_frames"] = blobs
        item["clip_frame_counts"] = counts
        item["n_frames"] = int(len(frames))
        return item
