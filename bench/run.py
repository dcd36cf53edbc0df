"""``make bench``: every figure a ratio against a limit measured in the same run.

    frames_ratio             bare `ffmpeg -i f -vf fps=1,scale=... -f null -` time / our frame stage
    langid_ratio             bare fastText predict on the same lines / our LID operator
    loader_ratio             raw read of the same tars / the trainer's loader (decoded, its workers)
    end_to_end_ratio         the sum of the stage limits spread over the cores / our pipeline on Ray,
                             at steady state: Ray started and a warm-up run made first (Ray's
                             start-up and the cold run reported apart); the local profile's
                             concurrency, and variants of ``concurrency.workers``/``download``
    scaling_2_workers_ratio  end to end with ``concurrency.workers: 1`` / with 2 (steady state)
    frames_skip_*            bench/frames_timing.py: the decoder skip modes' speed-up and error
    browse                   bench/browse.py: clip page latency of ``mhowto browse`` on the e2e dataset
    scale                    bench/scale.py: 1.22 M-row plan, orchestration throughput, driver
                             bytes and RSS over 200 vs 2,000 tiny videos (issue #13)

A ratio of 1 means "as fast as the limit". Medians over ``--repeats`` runs, min-max
shown; results go to bench/results.json. The inputs are the sample site (built if
missing) and, for end to end and the loader, its manifest replicated ``--replicate``
times under new ids.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules

from timing import ratio, timed  # noqa: E402


def good_videos(site: Path) -> tuple[list[Path], dict]:
    truth = json.loads((site / "truth.json").read_text())
    return [site / "media" / f"{vid}.mp4" for vid, t in sorted(truth.items()) if not t["corrupt"]], truth


# ---------------------------------------------------------------- frames
def bench_frames(site: Path, work: Path, repeats: int) -> dict:
    from multihowto.operators.ffmpeg_binary import ffmpeg_exe
    from multihowto.operators.frames import ExtractFrames
    from multihowto.schemas.config import RegionConfig
    from multihowto.schemas.item import Clip, VideoItem

    videos, truth = good_videos(site)
    cfg = RegionConfig().frames
    op = ExtractFrames(cfg)
    size = cfg.size
    scratch = work / "frames-scratch"

    def items() -> list[VideoItem]:
        # the stage removes the video it decoded: each run decodes its own hard links
        shutil.rmtree(scratch, ignore_errors=True)
        out = []
        for v in videos:
            d = scratch / v.stem
            d.mkdir(parents=True)
            os.link(v, d / v.name)
            clips = [Clip(i, c["start"], c["end"], {}, {}) for i, c in enumerate(truth[v.stem]["cues"])]
            out.append(VideoItem(v.stem, "", 0, scratch=str(d), video_path=str(d / v.name), clips=clips))
        return out

    def bare():
        for v in videos:
            subprocess.run(
                [ffmpeg_exe(), "-v", "error", "-nostdin", "-threads", str(cfg.threads), "-i", str(v),
                 "-vf", f"fps={cfg.fps},scale=-2:{size}", "-f", "null", "-"],
                check=True,
            )

    batches = [items()]

    def ours():
        out = op.process_batch(batches.pop())
        assert all(it.ok for it in out), [str(it.failure) for it in out if not it.ok]

    ours()  # warm the page cache and the operator
    limit = timed(bare, repeats)
    mine = []
    for _ in range(repeats):
        batches.append(items())
        mine.append(timed(ours, 1)["median_s"])
    shutil.rmtree(scratch, ignore_errors=True)
    mine = {"median_s": statistics.median(mine), "min_s": min(mine), "max_s": max(mine), "runs": len(mine)}
    return {"limit": limit, "ours": mine, "ratio": ratio(limit, mine), "videos": len(videos)}


# ---------------------------------------------------------------- langid
def bench_langid(repeats: int, tracks: int = 150) -> dict:
    from multihowto.operators.langid import LanguageId, load_lid_model, track_line
    from multihowto.sample_site.material import load_emoji
    from multihowto.schemas.config import RegionConfig
    from multihowto.schemas.item import Track, VideoItem
    from multihowto.schemas.sample import LANGS

    emoji = load_emoji()
    rng = random.Random(0)
    items = []
    for v in range(tracks):
        t = {}
        for lang in LANGS:
            names = [e.names[lang] for e in rng.sample(emoji, 8)]
            t[lang] = Track([(i * 3.0, i * 3.0 + 2.5, n) for i, n in enumerate(names)], "vtt", "manual")
        items.append(VideoItem(f"v{v}", "", 0, tracks=t))
    # the lines the operator classifies: every cue, and every track's joined text
    lines = [c[2] for it in items for tr in it.tracks.values() for c in tr.cues]
    lines += [track_line([c[2] for c in tr.cues]) for it in items for tr in it.tracks.values()]
    model = load_lid_model()
    cfg = RegionConfig()
    op = LanguageId(cfg.langid, cfg.langs)
    op.process_batch([copy.deepcopy(items[0])])  # setup once, as an actor does

    def bare():
        for line in lines:
            model.f.predict(line + "\n", 1, 0.0, "strict")

    batches = [copy.deepcopy(items) for _ in range(repeats + 1)]

    def ours():
        op.process_batch(batches.pop())

    limit = timed(bare, repeats)
    mine = timed(ours, repeats)
    return {"limit": limit, "ours": mine, "ratio": ratio(limit, mine), "lines": len(lines)}


# ---------------------------------------------------------------- end to end
def replicated_manifest(site: Path, base_url: str, times: int, out: Path) -> int:
    rows = list(csv.DictReader(open(site / "manifest.csv", encoding="utf-8")))
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["video_id", "url"])
        w.writeheader()
        for r in range(times):
            for row in rows:
                w.writerow({"video_id": f"{row['video_id']}-r{r}", "url": base_url + row["url"]})
    return len(rows) * times


def stage_limits(site: Path, base_url: str, output: Path, replicate: int) -> dict:
    """Per-stage bare costs (seconds, one core) for the same inputs as a pipeline run."""
    import webvtt

    from multihowto.operators.ffmpeg_binary import ffmpeg_exe
    from multihowto.operators.langid import load_lid_model

    videos, truth = good_videos(site)
    model = load_lid_model()
    limits = {"download": 0.0, "subtitles": 0.0, "langid": 0.0, "frames": 0.0, "shards": 0.0}
    for vid in sorted(truth):
        t = time.perf_counter()
        urllib.request.urlopen(f"{base_url}media/{vid}.mp4").read()
        texts = [urllib.request.urlopen(f"{base_url}subs/{vid}.{lang}.vtt").read().decode() for lang in truth[vid]["langs"]]
        limits["download"] += time.perf_counter() - t
        t = time.perf_counter()
        captions = [[c.text.replace("\n", " ") for c in webvtt.from_string(x)] for x in texts]
        limits["subtitles"] += time.perf_counter() - t
        t = time.perf_counter()
        for track in captions:
            for line in [*track, " ".join(track)]:
                model.f.predict(line + "\n", 1, 0.0, "strict")
        limits["langid"] += time.perf_counter() - t
    for v in videos:
        t = time.perf_counter()
        subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-threads", "1", "-i", str(v), "-vf", "fps=1,scale=-2:224", "-f", "null", "-"], check=True)
        limits["frames"] += time.perf_counter() - t
    total_bytes = sum(p.stat().st_size for p in output.glob("shard-*"))
    with tempfile.NamedTemporaryFile() as f:
        t = time.perf_counter()
        f.write(b"\0" * total_bytes)
        f.flush()
        os.fsync(f.fileno())
        limits["shards"] += (time.perf_counter() - t) / replicate
    return {k: v * replicate for k, v in limits.items()}


def e2e_variants(workers: int, download: int) -> dict[str, tuple[int, int]]:
    """The local profile's concurrency and the variants compared with it."""
    out = {f"workers={workers or 'cores'},download={download}": (workers, download)}
    for w, d in ((1, download), (workers or 0, 4)):
        out.setdefault(f"workers={w or 'cores'},download={d}", (w, d))
    return out


def bench_end_to_end(site: Path, work: Path, repeats: int, replicate: int) -> dict:
    """The pipeline at steady state: Ray is started first (``ray_startup_s``) and a
    warm-up run made (``cold_run_s``: workers import and load the LID model), then each
    concurrency variant is timed ``repeats`` times with Ray up; the limit is the sum of
    the stage limits spread over the cores."""
    import dataclasses

    from multihowto.operators.download import allow_origin
    from multihowto.pipeline import ray_runner
    from multihowto.pipeline.run import run_dataset
    from multihowto.sample_site.server import serve
    from multihowto.schemas.config import SourceConfig, load_region

    local = load_region(ROOT / "deploy" / "regions" / "local.yaml")
    t = time.perf_counter()
    ray_runner.init_ray("local")
    ray_startup_s = time.perf_counter() - t
    cpus = ray_runner.cluster_cpus()
    variants = e2e_variants(local.concurrency.workers, local.concurrency.download)
    default = next(iter(variants))
    by_variant = {}
    try:
        with serve(site) as base:
            manifest = work / "manifest.csv"
            n = replicated_manifest(site, base, replicate, manifest)

            def run(name: str, out: Path) -> tuple[float, int]:
                w, d = variants[name]
                shutil.rmtree(out, ignore_errors=True)
                cfg = dataclasses.replace(local, output=str(out), source=SourceConfig(kind="manifest", manifest=str(manifest)),
                                          download=allow_origin(local.download, base),
                                          concurrency=dataclasses.replace(local.concurrency, workers=w, download=d))
                t = time.perf_counter()
                summary = run_dataset(cfg, log=lambda *_: None, progress=False)
                wall = time.perf_counter() - t
                if not summary.clips or summary.units_failed:
                    raise RuntimeError(f"end to end ({name}) made {summary.clips} clips, failures {dict(summary.failures)}, "
                                       f"units failed {summary.units_failed}")
                return wall, summary.clips

            cold_s, _ = run(default, work / "e2e-warmup")
            shutil.rmtree(work / "e2e-warmup", ignore_errors=True)
            for name in variants:
                results, last_out = [], None
                for r in range(repeats):
                    last_out = work / f"e2e-{r}" if name == default else work / "e2e-variant"
                    results.append(run(name, last_out))
                by_variant[name] = (results, last_out)
            results, last_out = by_variant[default]
            limits = stage_limits(site, base, last_out, replicate)
    finally:
        ray_runner.shutdown()
    walls = [w for w, _ in results]
    clips = results[-1][1]
    assert all(res[-1][1] == clips for res, _ in by_variant.values()), "concurrency variants made different datasets"
    _, truth = good_videos(site)
    video_seconds = sum(t["duration"] for t in truth.values() if not t["corrupt"]) * replicate
    ours = {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls), "runs": len(walls)}
    limit_wall = sum(limits.values()) / cpus
    limit = {"median_s": limit_wall, "min_s": limit_wall, "max_s": limit_wall, "runs": 1}
    stats = {}
    for p in sorted(last_out.glob("shard-*.stats.json")):
        for stage, secs in json.loads(p.read_text())["timings_s"].items():
            stats[stage] = stats.get(stage, 0.0) + secs
    variant_s = {name: [w for w, _ in res] for name, (res, _) in by_variant.items()}
    return {
        "videos": n,
        "clips": clips,
        "cpus": cpus,
        "ray_startup_s": ray_startup_s,
        "cold_run_s": cold_s,
        "ours": ours,
        "limit": limit,
        "ratio": ratio(limit, ours),
        "clips_per_s": clips / ours["median_s"],
        "video_hours_per_core_hour": (video_seconds / 3600) / (ours["median_s"] * cpus / 3600),
        "stage_limits_s": limits,
        "stage_time_in_pipeline_s": stats,
        "dataset": str(last_out),
        "concurrency": default,
        "variants_s": {name: statistics.median(w) for name, w in variant_s.items()},
        "variant_runs_s": variant_s,
    }


# ---------------------------------------------------------------- scaling
def bench_scaling(site: Path, e2e: dict, repeats: int, copies: int = 8) -> dict:
    """End to end with ``concurrency.workers`` 1 vs 2 (from :func:`bench_end_to_end`),
    beside what the machine allows: the same ffmpeg decodes 1 vs 2 at a time, no Ray."""
    from concurrent.futures import ThreadPoolExecutor

    from multihowto.operators.frames import decode_command
    from multihowto.schemas.config import RegionConfig

    videos, _ = good_videos(site)
    cfg = RegionConfig().frames
    cmds = [decode_command(str(v), cfg) for v in videos] * copies

    def bare(parallel: int):
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda c: subprocess.run(c, capture_output=True, check=True), cmds))

    bare_one = timed(lambda: bare(1), repeats)
    bare_two = timed(lambda: bare(2), repeats)
    runs = e2e["variant_runs_s"]
    one = next(w for k, w in runs.items() if k.startswith("workers=1,"))
    two = runs[e2e["concurrency"]]

    def as_timed(w):
        return {"median_s": statistics.median(w), "min_s": min(w), "max_s": max(w), "runs": len(w)}

    one, two = as_timed(one), as_timed(two)
    return {
        "one_worker": one, "two_workers": two, "ratio": ratio(one, two), "videos": e2e["videos"],
        "bare_one": bare_one, "bare_two": bare_two, "bare_ratio": ratio(bare_one, bare_two), "bare_videos": len(cmds),
    }


# ---------------------------------------------------------------- loader
def bench_loader(dataset: Path, repeats: int) -> dict:
    import torch
    import webdataset as wds

    from multihowto.trainer.data import ClipDataset, DataConfig, clip_stream, collate, shard_urls
    from multihowto.trainer.model import ModelConfig

    urls = shard_urls(str(dataset))
    cpus = os.cpu_count() or 1
    m = ModelConfig()  # the frames the trainer's model takes by default
    cfg = DataConfig(shards=str(dataset), shuffle=0, n_frames=m.n_frames, frame_size=m.frame_size)

    def raw():
        n = sum(1 for _ in wds.WebDataset(urls, shardshuffle=False, empty_check=False))
        assert n > 0

    def loader():
        dl = torch.utils.data.DataLoader(ClipDataset(cfg), batch_size=16, num_workers=min(cpus, len(urls)), collate_fn=collate)
        assert sum(len(b["key"]) for b in dl) > 0

    def one_process():
        assert sum(1 for _ in clip_stream(cfg)) > 0

    raw()
    limit = timed(raw, repeats)
    mine = timed(loader, repeats)
    single = timed(one_process, repeats)
    return {
        "limit": limit, "ours": mine, "ratio": ratio(limit, mine),
        "single_process": single, "single_process_ratio": ratio(limit, single),
        "workers": min(cpus, len(urls)), "shards": len(urls),
    }


def fmt(r: dict) -> str:
    return f"{r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--site-dir", default=str(ROOT / "build" / "site"))
    p.add_argument("--work-dir", default=str(ROOT / "build" / "bench"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--replicate", type=int, default=5, help="copies of the site's manifest for end to end")
    p.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    p.add_argument("--skip-scale", action="store_true", help="skip bench/scale.py (1.22 M-row plan, 100k failing, 2,000 tiny videos)")
    args = p.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench modules
    from browse import bench_browse, fmt_browse
    from frames_timing import frames_timing
    from scale import bench_scale, verdicts

    from multihowto.sample_site.build import build_site

    site = build_site(Path(args.site_dir))
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count()
    print(f"[bench] {cores} cores, {platform.processor() or platform.machine()}, repeats={args.repeats}, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    res = {"cores": cores, "repeats": args.repeats, "load_average_at_start": os.getloadavg()}
    res["frames"] = bench_frames(site, work, args.repeats)
    print(f"  frames   {fmt(res['frames']['ratio'])}", flush=True)
    res["langid"] = bench_langid(max(args.repeats, 5))
    print(f"  langid   {fmt(res['langid']['ratio'])}", flush=True)
    res["end_to_end"] = bench_end_to_end(site, work, max(1, args.repeats - 1), args.replicate)
    print(f"  e2e      {fmt(res['end_to_end']['ratio'])} (steady state; Ray start-up "
          f"{res['end_to_end']['ray_startup_s']:.1f}s and a cold run of {res['end_to_end']['cold_run_s']:.1f}s apart)", flush=True)
    res["scaling"] = bench_scaling(site, res["end_to_end"], max(1, args.repeats - 1))
    print(f"  scaling  {fmt(res['scaling']['ratio'])}", flush=True)
    res["loader"] = bench_loader(Path(res["end_to_end"]["dataset"]), args.repeats)
    print(f"  loader   {fmt(res['loader']['ratio'])}", flush=True)
    res["browse"] = bench_browse(Path(res["end_to_end"]["dataset"]))
    print("  browse   " + fmt_browse(res["browse"]), flush=True)
    res["frames_timing"] = frames_timing(site, work / "frames_timing", args.repeats)
    ft = res["frames_timing"]
    print(f"  skip     speed-up {ft['frames_skip_speedup']}, max error (source frames) {ft['frames_skip_max_error']}", flush=True)
    res["frames_ratio"] = res["frames"]["ratio"]["median"]
    res["langid_ratio"] = res["langid"]["ratio"]["median"]
    res["loader_ratio"] = res["loader"]["ratio"]["median"]
    res["end_to_end_ratio"] = res["end_to_end"]["ratio"]["median"]
    res["ray_startup_s"] = res["end_to_end"]["ray_startup_s"]
    res["scaling_2_workers_ratio"] = res["scaling"]["ratio"]["median"]
    res["frames_skip_speedup"] = ft["frames_skip_speedup"]
    res["frames_skip_max_error"] = ft["frames_skip_max_error"]
    res["browse_clip_page_ms"] = res["browse"]["clip_page_ms"]["median"]
    Path(args.out).write_text(json.dumps(res, indent=1))
    if not args.skip_scale:
        res["scale"] = bench_scale(work / "scale", site)
        res["scale"]["end_to_end_ratio"] = res["end_to_end_ratio"]
        res["scale"]["ray_startup_s"] = res["ray_startup_s"]
        Path(args.out).write_text(json.dumps(res, indent=1))

    targets = {"frames": 0.85, "langid": 0.8, "loader": 0.9, "end_to_end": 0.6, "scaling": 1.8}
    e = res["end_to_end"]
    print()
    print("| figure (ratio to the limit) | median (min-max) | target | limit measured |")
    print("|---|---|---|---|")
    rows = [
        ("frames vs bare ffmpeg decode", "frames", f"{res['frames']['limit']['median_s']:.2f}s bare vs {res['frames']['ours']['median_s']:.2f}s ours, {res['frames']['videos']} videos"),
        ("LID vs bare fastText predict", "langid", f"{res['langid']['lines']} lines: {res['langid']['limit']['median_s']:.3f}s vs {res['langid']['ours']['median_s']:.3f}s"),
        ("loader (decoded) vs raw tar read", "loader", f"{res['loader']['limit']['median_s']:.3f}s raw vs {res['loader']['ours']['median_s']:.3f}s, {res['loader']['workers']} workers; one process: {fmt(res['loader']['single_process_ratio'])}"),
        ("end to end vs sum of stage limits (steady state)", "end_to_end", f"{e['videos']} videos, {e['clips']} clips in {e['ours']['median_s']:.1f}s ({e['concurrency']}); limit {e['limit']['median_s']:.1f}s on {e['cpus']} CPUs; Ray start-up {e['ray_startup_s']:.1f}s, cold run {e['cold_run_s']:.1f}s"),
        ("end to end, concurrency.workers 2 vs 1", "scaling", f"{res['scaling']['one_worker']['median_s']:.1f}s vs {res['scaling']['two_workers']['median_s']:.1f}s, {res['scaling']['videos']} videos; {res['scaling']['bare_videos']} ffmpeg decodes 2 vs 1 at a time without Ray: {fmt(res['scaling']['bare_ratio'])}"),
    ]
    for name, key, detail in rows:
        r = res[key]["ratio"]
        ok = "ok" if r["median"] >= targets[key] else "BELOW"
        print(f"| {name} | {fmt(r)} | >= {targets[key]} {ok} | {detail} |")
    print()
    print(f"end to end: {e['clips_per_s']:.1f} clips/s, {e['video_hours_per_core_hour']:.2f} video-hours per core-hour")
    print("end to end by concurrency (s): " + ", ".join(f"{k} {v:.1f}" for k, v in e["variants_s"].items()))
    print("stage limits (s, one core): " + ", ".join(f"{k} {v:.2f}" for k, v in e["stage_limits_s"].items()))
    print("stage time in the pipeline (s, summed over videos): " + ", ".join(f"{k} {v:.2f}" for k, v in e["stage_time_in_pipeline_s"].items()))
    print("browse: " + fmt_browse(res["browse"]))
    print(f"frames.skip: speed-up {ft['frames_skip_speedup']}; max error in source-frame periods {ft['frames_skip_max_error']}; "
          f"fit as default {ft['frames_skip_default_ok']}")
    if "scale" in res:
        print()
        print("| scale figure (issue #13) | value | target | |")
        print("|---|---|---|---|")
        print("\n".join(verdicts(res["scale"])))
    print(f"[bench] wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
