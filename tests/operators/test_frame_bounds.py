"""The frame stage is bounded in time and memory, and names what it cannot decode."""

import dataclasses
import os
import subprocess
import time

import pytest

from multihowto.operators.base import StageError
from multihowto.operators.ffmpeg_binary import ffmpeg_exe
from multihowto.operators.frames import ExtractFrames, has_video_stream, run_bounded, sample_video
from multihowto.schemas.config import ConfigError, FramesConfig, RegionConfig, validate
from tests.operators.test_frames import _video


def gone(pid: int, wait_s: float = 5.0) -> bool:
    """Whether ``pid`` has exited (absent, or a zombie awaiting its new parent)."""
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_timeout_kills_the_whole_process_group(tmp_path):
    pidfile = tmp_path / "child.pid"
    # a child that outlives its parent's kill unless the group is killed
    cmd = ["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"]
    with pytest.raises(StageError) as e:
        run_bounded(cmd, timeout_s=0.5, max_stdout_bytes=1 << 20)
    assert e.value.reason == "timeout"
    assert gone(int(pidfile.read_text()))


def test_output_over_the_byte_cap_is_refused_and_killed(tmp_path):
    pidfile = tmp_path / "child.pid"
    cmd = ["sh", "-c", f"echo $$ > {pidfile}; exec cat /dev/zero"]
    with pytest.raises(StageError) as e:
        run_bounded(cmd, timeout_s=60, max_stdout_bytes=1 << 20)
    assert e.value.reason == "video_too_long"
    assert gone(int(pidfile.read_text()))


def test_chatty_stderr_neither_blocks_nor_fills_memory():
    cmd = ["sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x >&2; echo done"]
    run = run_bounded(cmd, timeout_s=60, max_stdout_bytes=1 << 20)
    assert run.returncode == 0 and run.stdout == b"done\n"
    assert 0 < len(run.stderr_tail) <= 256 * 1024


@pytest.fixture(scope="module")
def claims_20_hours(tmp_path_factory):
    """A 3-frame file whose frames are 10 hours apart: tiny, yet 20 h long."""
    path = tmp_path_factory.mktemp("long") / "long.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=red:s=64x64:r=1", "-frames:v", "3",
                    "-vf", "setpts=N*36000/TB", "-fps_mode", "passthrough", "-c:v", "libx264", str(path)], check=True)
    assert path.stat().st_size < 10_000
    return path


def test_a_tiny_file_claiming_hours_is_too_long(claims_20_hours):
    with pytest.raises(StageError) as e:
        sample_video(str(claims_20_hours), FramesConfig(size=32, max_frames=50))
    assert e.value.reason == "video_too_long"


def test_a_decode_past_its_deadline_is_a_timeout(claims_20_hours, tmp_path):
    [out] = ExtractFrames(FramesConfig(size=32, max_frames=1_000_000, timeout_s=1.0)).process_batch(
        [_video(tmp_path, claims_20_hours, [(0, 2)])])
    assert out.status == "failed" and out.failure.reason == "timeout"


def test_max_frames_counts_exactly(tmp_path):
    path = tmp_path / "ten.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=s=64x64:r=25:d=10", "-c:v", "libx264", str(path)], check=True)
    assert len(sample_video(str(path), FramesConfig(size=32, max_frames=10)).jpegs) == 10
    with pytest.raises(StageError, match="video_too_long"):
        sample_video(str(path), FramesConfig(size=32, max_frames=9))


@pytest.mark.parametrize("kind", ["m4a", "wav", "mp3_with_cover"])
def test_audio_only_is_no_video_stream(tmp_path, kind):
    src = ["-f", "lavfi", "-i", "sine=d=2"]
    if kind == "mp3_with_cover":  # a cover picture is a "video" stream to ffmpeg, not a video
        cover = tmp_path / "cover.png"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=blue:s=32x32", "-frames:v", "1", str(cover)], check=True)
        src += ["-i", str(cover), "-map", "0", "-map", "1", "-c:v", "mjpeg", "-disposition:v", "attached_pic"]
    path = tmp_path / f"audio.{kind.split('_')[0]}"
    subprocess.run([ffmpeg_exe(), "-v", "error", *src, str(path)], check=True)
    assert has_video_stream(str(path)) is False
    [out] = ExtractFrames(FramesConfig()).process_batch([_video(tmp_path, path, [(0, 1)])])
    assert out.status == "failed" and out.failure.reason == "no_video_stream", out.failure


def test_garbage_is_still_corrupt_video(tmp_path):
    path = tmp_path / "junk.mp4"
    path.write_bytes(os.urandom(4096))
    assert has_video_stream(str(path)) is None
    with pytest.raises(StageError, match="corrupt_video"):
        sample_video(str(path), FramesConfig())


@pytest.mark.parametrize(("field", "value"), [("timeout_s", 0), ("timeout_s", -1.0), ("max_frames", 0), ("skip", "most")])
def test_bounds_are_validated(field, value):
    cfg = dataclasses.replace(RegionConfig(), frames=dataclasses.replace(FramesConfig(), **{field: value}))
    with pytest.raises(ConfigError, match=f"frames.{field}"):
        validate(cfg)
