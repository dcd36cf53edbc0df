"""Frame timing and the opt-in decoder skip (``frames.skip``), measured on the same videos.

    frames_skip_speedup[mode]        exact decode time / decode time with ``-skip_frame mode``
                                     (the sample site's media and the time-coded videos, our
                                     frame stage's ``sample_video`` each way)
    frames_skip_max_error[mode]      on the time-coded videos (every source frame shows its
                                     own time; tests/operators/timecoded.py): the worst kept
                                     frame's distance from its stated time, in source-frame
                                     periods; ``exact`` is the default decode
    frames_skip_max_frames_off[mode] the same, counted in source frames from the picture on
                                     screen at the stated time (0: that very picture)
    frames_skip_default_ok[mode]     whether that mode keeps every frame within one source
                                     frame period (the condition for making it the default)

Medians over ``--repeats`` runs. Prints and returns a dict; ``--out`` writes it as json.
Called by bench/run.py as ``frames_timing(site, work, repeats)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the time-coded video helpers live with the tests

from timing import timed  # noqa: E402  (bench/ is on the path when this runs, alone or from run.py)

from multihowto.operators.frames import sample_video  # noqa: E402
from multihowto.schemas.config import FRAME_SKIP_MODES, FramesConfig  # noqa: E402
from tests.operators.timecoded import error_periods, make_timecoded, timing_errors  # noqa: E402

TIMECODED = [  # (codec, rate, vfr): as in tests/operators/test_frame_timing.py
    ("h264_mp4", "25", False),
    ("h264_mp4", "30000/1001", False),
    ("h264_mp4", "25", True),
    ("vp9_webm", "30000/1001", False),
    ("mpeg4_avi", "25", False),
    ("mjpeg_mkv", "25", True),
]


def decode_all(paths: list[Path], cfg: FramesConfig) -> list:
    return [sample_video(str(p), cfg) for p in paths]


def frames_timing(site: Path, work: Path, repeats: int = 3, fps: float = 1.0) -> dict:
    """The skip modes' speed-ups and timing errors; see the module docstring."""
    truth = json.loads((site / "truth.json").read_text())
    site_videos = [site / "media" / f"{vid}.mp4" for vid, t in sorted(truth.items()) if not t["corrupt"]]
    work.mkdir(parents=True, exist_ok=True)
    coded = [make_timecoded(work, codec, rate=rate, seconds=30.0, vfr=vfr) for codec, rate, vfr in TIMECODED]
    modes = ("none", *[m for m in FRAME_SKIP_MODES if m != "none"])
    cfgs = {m: FramesConfig(fps=fps, skip=m) for m in modes}
    out: dict = {"fps": fps, "repeats": repeats, "site_videos": len(site_videos), "timecoded_videos": len(coded)}

    for name, paths in (("site", site_videos), ("timecoded", [v.path for v in coded])):
        decode_all(paths, cfgs["none"])  # warm the page cache
        secs = {m: timed(lambda m=m, paths=paths: decode_all(paths, cfgs[m]), repeats)["median_s"] for m in modes}
        out[f"{name}_decode_s"] = {m: round(s, 4) for m, s in secs.items()}
        out[f"frames_skip_speedup_{name}"] = {m: round(secs["none"] / secs[m], 3) for m in modes if m != "none"}

    periods, frames_off = {}, {}
    for m in modes:
        key = "exact" if m == "none" else m
        periods[key], frames_off[key] = {}, {}
        for (codec, rate, vfr), video in zip(TIMECODED, coded, strict=True):
            decoded = sample_video(str(video.path), cfgs[m])
            name = f"{codec}_{rate.replace('/', '_')}{'_vfr' if vfr else ''}"
            periods[key][name] = round(max(error_periods(decoded.jpegs, decoded.times, video.times)), 3)
            frames_off[key][name] = max(timing_errors(decoded.jpegs, decoded.times, video.times))
    out["frames_skip_error_per_video"] = periods
    out["frames_skip_max_error"] = {m: max(v.values()) for m, v in periods.items()}
    out["frames_skip_max_frames_off"] = {m: max(v.values()) for m, v in frames_off.items()}
    out["frames_skip_default_ok"] = {m: e < 1 for m, e in out["frames_skip_max_error"].items() if m != "exact"}
    out["frames_skip_speedup"] = out["frames_skip_speedup_site"]
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--site-dir", default=str(ROOT / "build" / "site"))
    p.add_argument("--work-dir", default="")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    from multihowto.sample_site.build import build_site

    site = build_site(Path(args.site_dir))
    with tempfile.TemporaryDirectory() as tmp:
        result = frames_timing(site, Path(args.work_dir or tmp), args.repeats)
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
