"""Frame i is the picture on screen at i / fps: proved on videos whose every source frame
shows its own time, in four codecs, at 25 and 29.97 fps and at a variable frame rate."""

from pathlib import Path

import pytest

from multihowto.operators.frames import ExtractFrames, sample_video
from multihowto.schemas.config import FramesConfig
from multihowto.schemas.frames import unpack_jpegs
from tests.operators.test_frames import _video
from tests.operators.timecoded import lateness_s, make_timecoded, read_time, timing_errors

CASES = [
    ("h264_mp4", "25", False),
    ("h264_mp4", "30000/1001", False),
    ("mpeg4_avi", "25", False),
    ("vp9_webm", "30000/1001", False),
    ("h264_mp4", "25", True),  # VFR: 25, 10, then 30 fps
    ("mjpeg_mkv", "25", True),
]


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    out = tmp_path_factory.mktemp("timecoded")
    return {case: make_timecoded(out, case[0], rate=case[1], seconds=6.0, vfr=case[2]) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=["-".join(c[:2]).replace("/", "_") + ("-vfr" if c[2] else "") for c in CASES])
@pytest.mark.parametrize("fps", [1.0, 2.5])
def test_each_kept_frame_is_the_picture_on_screen_at_its_time(videos, case, fps):
    video = videos[case]
    decoded = sample_video(str(video.path), FramesConfig(fps=fps, size=128))
    assert decoded.times == [i / fps for i in range(len(decoded.jpegs))]
    assert decoded.duration_s == len(decoded.jpegs) / fps
    # every sample time within the video got its frame, and none past the last one's period
    assert decoded.times[-1] <= video.times[-1] + 0.1 < decoded.duration_s + 0.1
    assert timing_errors(decoded.jpegs, decoded.times, video.times) == [0] * len(decoded.jpegs)
    # the bound: never later than its time, earlier by less than one source period
    for late, t in zip(lateness_s(decoded.jpegs, decoded.times), decoded.times, strict=True):
        nxt = min([s for s in video.times if s > t + late + 0.0005], default=float("inf"))
        period = nxt - (t + late)
        assert -period < late <= 0.0005, (t, late, period)


def test_a_stream_starting_late_shows_its_first_picture_until_then(tmp_path):
    """A muxed download whose video starts 1.5 s after its audio (captions count from the
    file's start): times before the first picture get that picture, later ones are exact."""
    video = make_timecoded(tmp_path, "h264_mp4", rate="30", seconds=4.0, start_s=1.5, with_audio=True)
    assert video.times[0] == 1.5
    decoded = sample_video(str(video.path), FramesConfig(fps=2.0, size=96))
    shown = [read_time(j) for j in decoded.jpegs]
    assert shown[:4] == [1.5, 1.5, 1.5, 1.5]  # t = 0, 0.5, 1.0, 1.5
    assert timing_errors(decoded.jpegs, decoded.times, video.times) == [0] * len(shown)
    assert decoded.times[-1] >= 5.0  # the stream's own end (5.5 s) counts from the file's start


def test_old_convention_was_almost_a_second_late(videos):
    """The measure catches the defect it guards against: the old command kept the last
    frame before (i + 1) / fps."""
    import subprocess

    from multihowto.operators.ffmpeg_binary import ffmpeg_exe
    from multihowto.operators.frames import split_jpeg_stream

    video = videos[("h264_mp4", "25", False)]
    cmd = [ffmpeg_exe(), "-v", "error", "-i", str(video.path), "-vf", "fps=1:round=down", "-f", "image2pipe", "-c:v", "mjpeg", "-"]
    old = split_jpeg_stream(subprocess.run(cmd, capture_output=True, check=True).stdout)
    assert max(timing_errors(old, [float(i) for i in range(len(old))], video.times)) == 24
    assert min(lateness_s(old, [float(i) for i in range(len(old))])) == pytest.approx(0.96)


def test_clips_past_the_decoded_end_are_dropped_and_counted(videos, tmp_path):
    video = videos[("h264_mp4", "25", False)]  # 6 s: frames at 0..5 s
    spans = [(0.0, 2.5), (5.2, 5.8), (6.0, 9.0), (30.0, 31.0)]
    [out] = ExtractFrames(FramesConfig(size=64)).process_batch([_video(tmp_path, video.path, spans)])
    assert out.ok, out.failure
    assert [(c.start, c.end) for c in out.clips] == spans[:2]
    assert [c.n_frames for c in out.clips] == [3, 1]
    assert out.clips_dropped == {"past_end_of_video": 2}
    assert out.n_frames == 6
    frames = [unpack_jpegs(Path(c.frames_path).read_bytes()) for c in out.clips]
    assert [read_time(j) for j in frames[0]] == [0.0, 1.0, 2.0]
    assert [read_time(j) for j in frames[1]] == [5.0]

    [gone] = ExtractFrames(FramesConfig(size=64)).process_batch([_video(tmp_path / "w", video.path, spans[2:])])
    assert gone.status == "failed" and gone.failure.reason == "past_end_of_video"


@pytest.mark.parametrize("skip", ["noref", "bidir", "nokey"])
def test_skip_modes_keep_the_samples_and_never_run_ahead(videos, skip):
    """``frames.skip`` (opt-in) shows an earlier decoded picture where the one on screen was
    skipped: the same sample times, never a picture later than its time."""
    video = videos[("h264_mp4", "25", False)]
    exact = sample_video(str(video.path), FramesConfig(size=96))
    fast = sample_video(str(video.path), FramesConfig(size=96, skip=skip))
    assert max(lateness_s(fast.jpegs, fast.times)) <= 0.0005
    if skip == "nokey":  # the decode ends with the last keyframe: the video seems shorter
        assert fast.times == exact.times[: len(fast.times)] and len(fast.times) < len(exact.times)
    else:
        assert fast.times == exact.times and fast.duration_s == exact.duration_s
