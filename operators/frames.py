"""Frames stage: one ffmpeg decode per video, frames cut per clip.

ffmpeg (command built with ffmpeg-python) samples the video at ``fps``, scales the short
side to ``size``, centre-crops a square and JPEG-encodes each sampled frame itself
(mjpeg to a pipe: measured in bench/, this costs what a bare decode costs, where
encoding in Python cost about 12% more).

Timing convention: frame i is the picture on screen at time ``t_i = i / fps``, that is
the last source frame whose timestamp is ``<= t_i`` (fps filter ``round=up``); before the
first source frame (a stream starting late), the first one (``start_time=0``). So a
kept frame is never later than its time and at most one source-frame period earlier;
tests/operators/test_frame_timing.py proves it on time-coded videos in several codecs,
constant and variable frame rate. Frame i belongs to every clip with
``start <= t_i < end``; a clip shorter than a frame period gets the frame nearest its
middle; a clip that starts at or past the decoded end (``n_frames / fps``) has no picture
and is dropped as ``past_end_of_video`` (never given the last frame).

Bounds: ffmpeg runs in its own process group under a wall-clock ``timeout_s`` (killed as
a group: ``timeout``) and yields at most ``max_frames`` frames, its output read with a byte
cap (``video_too_long``). A file with no video stream fails as ``no_video_stream``, told
apart from ``corrupt_video`` by ffmpeg's own listing of the file's streams.

Each kept clip's frames are packed as ``frames.npz`` (schemas/frames.py) into the video's
scratch folder (``Clip.frames_path``), so a unit's frames wait on local disk, not in
memory, until its shard is written; the video file is removed once decoded. The item
gains ``n_frames`` and ``clips_dropped`` ({reason: count}).
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from multihowto.operators.base import Operator, StageError
from multihowto.operators.ffmpeg_binary import ffmpeg_exe
from multihowto.schemas.config import FramesConfig
from multihowto.schemas.frames import pack_jpegs
from multihowto.schemas.item import VideoItem

PAST_END_OF_VIDEO = "past_end_of_video"
STDERR_KEEP = 256 * 1024  # bytes of ffmpeg's stderr kept (its tail), whatever it writes
PROBE_TIMEOUT_S = 30.0


def ffmpeg_qscale(quality: int) -> int:
    """JPEG quality 1..100 (Pillow's scale) to ffmpeg's mjpeg ``-q:v`` 31..2."""
    return int(round(2 + (100 - quality) * 29 / 99))


def max_jpeg_bytes(size: int) -> int:
    """An upper bound on one ``size``-square frame's JPEG from ffmpeg's mjpeg encoder:
    3 bytes a pixel plus headers (full-colour noise at ``q:v`` 2 measured about 0.6 of that)."""
    return 3 * size * size + 4096


def decode_command(path: str, cfg: FramesConfig) -> list[str]:
    """One ffmpeg run: decode the first video stream that is not a cover picture (``V``),
    sample at ``fps`` (see the module's timing convention), scale the short side, centre
    crop, and JPEG-encode each sampled frame with ffmpeg's mjpeg encoder to a pipe; at
    most ``max_frames + 1`` frames (one more tells a video that is too long)."""
    s = cfg.size
    skip = {} if cfg.skip == "none" else {"skip_frame": cfg.skip}
    stream = (
        ffmpeg.input(path, threads=cfg.threads, **skip)["V:0"]
        .filter("fps", fps=cfg.fps, round="up", start_time=0)
        .filter("scale", f"if(lt(iw,ih),{s},-2)", f"if(lt(iw,ih),-2,{s})")
        .filter("crop", s, s)
    )
    out = ffmpeg.output(
        stream, "pipe:", format="image2pipe", vcodec="mjpeg", pix_fmt="yuvj444p",
        **{"q:v": ffmpeg_qscale(cfg.jpeg_quality), "frames:v": cfg.max_frames + 1},
        fps_mode="passthrough", threads=cfg.threads,
    )
    return out.global_args("-hide_banner", "-loglevel", "error", "-nostdin").compile(cmd=ffmpeg_exe())


@dataclass(frozen=True)
class BoundedRun:
    returncode: int
    stdout: bytes
    stderr_tail: str


def run_bounded(cmd: list[str], timeout_s: float, max_stdout_bytes: int) -> BoundedRun:
    """Run ``cmd`` in its own process group, reading stdout and stderr as they come.

    Raises StageError ``timeout`` when it runs past ``timeout_s`` seconds of wall clock,
    and ``video_too_long`` when it writes more than ``max_stdout_bytes``; in both cases
    the whole process group is killed first (SIGKILL) and reaped. stderr keeps its last
    ``STDERR_KEEP`` bytes, so neither pipe can fill memory or block the child."""
    deadline = time.monotonic() + timeout_s
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    out, err = bytearray(), bytearray()
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, out)
    sel.register(proc.stderr, selectors.EVENT_READ, err)
    failure = None
    try:
        while sel.get_map() and failure is None:
            left = deadline - time.monotonic()
            if left <= 0:
                failure = StageError("timeout", f"ffmpeg ran past {timeout_s:g} s")
                break
            for key, _ in sel.select(timeout=min(left, 1.0)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                key.data.extend(chunk)
                if key.data is err and len(err) > STDERR_KEEP:
                    del err[: len(err) - STDERR_KEEP]
                if len(out) > max_stdout_bytes:
                    failure = StageError("video_too_long", f"ffmpeg wrote more than {max_stdout_bytes} bytes of frames")
                    break
        if failure is None:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:  # closed its pipes, yet still running
                failure = StageError("timeout", f"ffmpeg ran past {timeout_s:g} s")
    finally:
        sel.close()
        if failure is not None or proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.stdout.close()
        proc.stderr.close()
        proc.wait()
    if failure is not None:
        raise failure
    return BoundedRun(proc.returncode, bytes(out), err.decode("utf-8", "replace"))


_VIDEO_STREAM = re.compile(r"^\s*Stream #\d+:\d+.*?: Video: (?!.*\(attached pic\))", re.MULTILINE)
_ANY_STREAM = re.compile(r"^\s*Stream #\d+:\d+", re.MULTILINE)


def has_video_stream(path: str, timeout_s: float = PROBE_TIMEOUT_S) -> bool | None:
    """Whether ffmpeg lists a video stream (a cover picture is not one) in ``path``;
    None when ffmpeg cannot read the file's streams at all."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", path]  # no output: lists, exits 1
    listing = run_bounded(cmd, timeout_s, max_stdout_bytes=1 << 20).stderr_tail
    if not _ANY_STREAM.search(listing):
        return None
    return bool(_VIDEO_STREAM.search(listing))


@dataclass(frozen=True)
class DecodedVideo:
    """A video's sampled frames: ``jpegs[i]`` stands for ``times[i] = i / fps`` seconds;
    ``duration_s`` is the decoded end, ``len(jpegs) / fps`` (at most one frame period past
    the last source frame)."""

    jpegs: list[bytes]
    times: list[float]
    duration_s: float


def sample_video(path: str, cfg: FramesConfig, timeout_s: float | None = None) -> DecodedVideo:
    """Decode ``path`` once under the frame stage's bounds (``timeout_s`` defaults to
    ``cfg.timeout_s``). Raises StageError ``timeout``, ``video_too_long`` (more than
    ``cfg.max_frames`` frames), ``no_video_stream`` or ``corrupt_video`` (ffmpeg fails or
    yields no frame)."""
    timeout_s = cfg.timeout_s if timeout_s is None else timeout_s
    started = time.monotonic()
    cap = (cfg.max_frames + 1) * max_jpeg_bytes(cfg.size)
    run = run_bounded(decode_command(path, cfg), timeout_s, cap)
    jpegs = split_jpeg_stream(run.stdout)
    if len(jpegs) > cfg.max_frames:
        raise StageError("video_too_long", f"more than {cfg.max_frames} frames at {cfg.fps:g} fps")
    if not jpegs:
        left = max(1.0, min(PROBE_TIMEOUT_S, timeout_s - (time.monotonic() - started)))
        if has_video_stream(path, left) is False:
            raise StageError("no_video_stream", "the file has no video stream")
        tail = run.stderr_tail.strip().splitlines()[-1:] or ["no frame decoded"]
        raise StageError("corrupt_video", tail[0])
    return DecodedVideo(jpegs, [i / cfg.fps for i in range(len(jpegs))], len(jpegs) / cfg.fps)


def decode_video(path: str, cfg: FramesConfig) -> list[bytes]:
    """The JPEG of every sampled frame, in time order (``sample_video``'s frames)."""
    return sample_video(path, cfg).jpegs


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


def frames_for_clip(start: float, end: float, frame_times: list[float], duration_s: float) -> list[int]:
    """The frames that stand for the clip ``[start, end)``: every frame whose time lies in
    it; for a clip shorter than a frame period, the frame nearest its middle. ``[]`` when
    the clip starts at or past ``duration_s`` (no picture of it was decoded): the caller
    drops it as ``past_end_of_video``."""
    if not frame_times or start >= duration_s:
        return []
    idx = [i for i, t in enumerate(frame_times) if start <= t < end]
    if not idx:
        mid = (start + min(end, duration_s)) / 2
        idx = [min(range(len(frame_times)), key=lambda i: abs(frame_times[i] - mid))]
    return idx


@dataclass(frozen=True)
class ClipCut:
    """Per-clip decisions for one video: ``kept`` indexes the input clips that got frames,
    ``frames`` their frame indices (same order); ``dropped`` counts the rest by reason."""

    kept: list[int]
    frames: list[list[int]]
    dropped: dict[str, int]


def cut_clips(clips: list[tuple[float, float]], video: DecodedVideo) -> ClipCut:
    """Decide, clip by clip, which frames stand for it, or why it is dropped."""
    kept, frames, dropped = [], [], Counter()
    for k, (start, end) in enumerate(clips):
        idx = frames_for_clip(start, end, video.times, video.duration_s)
        if idx:
            kept.append(k)
            frames.append(idx)
        else:
            dropped[PAST_END_OF_VIDEO] += 1
    return ClipCut(kept, frames, dict(dropped))


class ExtractFrames(Operator[FramesConfig]):
    name = "frames"

    def release(self, item: VideoItem) -> None:
        if item.video_path:  # decoded or failed: the video file is not needed again
            Path(item.video_path).unlink(missing_ok=True)
            item.video_path = ""

    def process(self, item: VideoItem) -> VideoItem:
        video = sample_video(item.video_path, self.config)
        cut = cut_clips([(c.start, c.end) for c in item.clips], video)
        item.n_frames = len(video.jpegs)
        item.clips_dropped.update(cut.dropped)
        if not cut.kept:
            raise StageError(PAST_END_OF_VIDEO, f"every clip starts past the decoded end ({video.duration_s:g} s)")
        item.clips = [item.clips[k] for k in cut.kept]
        for clip, idx in zip(item.clips, cut.frames, strict=True):
            path = item.scratch_dir / f"clip-{clip.index:05d}.frames.npz"
            path.write_bytes(pack_jpegs([video.jpegs[i] for i in idx]))
            clip.frames_path, clip.n_frames = str(path), len(idx)
        return item
