"""One ffmpeg decode per video, frames cut per clip, on real footage."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from multihowto.operators.ffmpeg_binary import ffmpeg_exe
from multihowto.operators.frames import (
    ExtractFrames,
    decode_video,
    frames_for_clip,
    split_jpeg_stream,
)
from multihowto.sample_site.material import footage_paths
from multihowto.schemas.config import FramesConfig
from multihowto.schemas.frames import decode_frames, pack_jpegs
from multihowto.schemas.item import Clip, VideoItem


@pytest.fixture(scope="module")
def clip6s(tmp_path_factory):
    """Six seconds of the real bikes footage (640x272, wider than tall)."""
    out = tmp_path_factory.mktemp("v") / "bikes6.mp4"
    src = [p for p in footage_paths() if p.name == "bikes.mp4"][0]
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-t", "6", "-an", "-c:v", "libx264", str(out)], check=True)
    return out


def test_decode_samples_at_fps_and_crops_square(clip6s):
    frames = decode_frames(pack_jpegs(decode_video(str(clip6s), FramesConfig(fps=1.0, size=96))))
    assert frames.shape == (6, 96, 96, 3)
    frames2 = decode_frames(pack_jpegs(decode_video(str(clip6s), FramesConfig(fps=2.0, size=64))))
    assert frames2.shape == (12, 64, 64, 3)


def test_frames_match_a_raw_decode_of_the_same_file(clip6s):
    """The mjpeg path gives the frames a rawvideo decode gives, up to JPEG error."""
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(clip6s), "-vf",
           "fps=1:round=up:start_time=0,scale=-2:96,crop=96:96", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, dtype=np.uint8).reshape(-1, 96, 96, 3)
    ours = decode_frames(pack_jpegs(decode_video(str(clip6s), FramesConfig(fps=1.0, size=96, jpeg_quality=95))))
    assert ours.shape == raw.shape
    assert np.abs(ours.astype(int) - raw.astype(int)).mean() < 4  # a Pillow JPEG at q95 is ~2.7 off


def test_split_jpeg_stream(clip6s):
    jpegs = decode_video(str(clip6s), FramesConfig(fps=1.0, size=64))
    stream = b"".join(jpegs)
    assert split_jpeg_stream(stream) == jpegs
    assert split_jpeg_stream(stream[:-10]) == jpegs[:-1]  # a truncated last frame is dropped
    assert split_jpeg_stream(b"garbage") == []


def test_frames_for_clip():
    times = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert frames_for_clip(1.0, 3.0, times, 6.0) == [1, 2]
    assert frames_for_clip(2.2, 2.6, times, 6.0) == [2]  # shorter than a period: nearest to the middle
    assert frames_for_clip(5.5, 5.9, times, 6.0) == [5]  # inside the last period
    assert frames_for_clip(6.0, 8.0, times, 6.0) == []  # starts at the decoded end: no picture of it
    assert frames_for_clip(9.0, 9.5, times, 6.0) == []
    assert frames_for_clip(0.0, 1.0, [], 0.0) == []


def _video(tmp_path, video, spans):
    scratch = tmp_path / "v"
    scratch.mkdir(parents=True, exist_ok=True)
    path = scratch / f"video{Path(video).suffix}"
    shutil.copy(video, path)
    clips = [Clip(index=i, start=s, end=e, texts={"en": "x"}, confidence={"en": 1.0}) for i, (s, e) in enumerate(spans)]
    return VideoItem("v", "", 0, scratch=str(scratch), video_path=str(path), clips=clips)


def test_operator_packs_frames_per_clip(clip6s, tmp_path):
    item = _video(tmp_path, clip6s, [(0.0, 2.5), (2.5, 6.0)])
    [out] = ExtractFrames(FramesConfig(size=64)).process_batch([item])
    assert out.ok and out.video_path == "" and not (tmp_path / "v" / "video.mp4").exists()  # consumed
    assert [c.n_frames for c in out.clips] == [3, 3]
    frames = decode_frames(Path(out.clips[1].frames_path).read_bytes())
    assert frames.shape == (3, 64, 64, 3)
    assert frames.std() > 5  # real footage, not a blank frame


def test_corrupt_video_is_a_recorded_failure(tmp_path, clip6s):
    bad = tmp_path / "bad.mp4"
    data = clip6s.read_bytes()
    bad.write_bytes(data[:64] + bytes(len(data) // 4))
    [out] = ExtractFrames(FramesConfig()).process_batch([_video(tmp_path, bad, [(0, 2)])])
    assert out.status == "failed" and out.failure.stage == "frames" and out.video_path == ""
    assert out.failure.reason == "corrupt_video"


def test_real_footage_frames_are_the_pictures_at_their_times(clip6s):
    """On real footage, frame i matches the source decoded at exactly t = i s (an accurate
    seek), and not the picture 0.9 s later that the old sampling kept."""
    ours = decode_frames(pack_jpegs(decode_video(str(clip6s), FramesConfig(fps=1.0, size=96, jpeg_quality=95)))).astype(int)

    def at(t: float) -> np.ndarray:
        cmd = [ffmpeg_exe(), "-v", "error", "-ss", f"{t:.3f}", "-i", str(clip6s), "-frames:v", "1",
               "-vf", "scale=-2:96,crop=96:96", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, dtype=np.uint8).reshape(96, 96, 3).astype(int)

    for i in range(1, 5):
        exact, late = np.abs(ours[i] - at(i)).mean(), np.abs(ours[i] - at(i + 0.9)).mean()
        assert exact < 4 < late, (i, exact, late)
