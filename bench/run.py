"""``make bench``: every figure a ratio against a limit measured in the same run.

    frames_ratio             bare `ffmpeg -i f -vf fps=1,scale=... -f null -` time / our frame stage
    langid_ratio             bare fastText predict on the same lines / our LID operator
    loader_ratio             raw read of the same tars / the trainer's loader (decoded, its workers)
    end_to_end_ratio         the sum of the stage limits spread over the cores / our pipeline on Ray
                             (the local profile's layout; the other ``concurrency.fuse`` layouts too)
    scaling_2_workers_ratio  frame stage on Ray with 1 actor / with 2 actors

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
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeats: int) -> dict:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": len(times)}


def ratio(limit: dict, ours: dict) -> dict:
    """limit/ours on medians, with the range from the extreme pairings."""
    return {
        "median": limit["median_s"] / ours["median_s"],
        "min": limit["min_s"] / ours["max_s"],
        "max": limit["max_s"] / ours["min_s"],
    }


def good_videos(site: Path) -> tuple[list[Path], dict]:
    truth = json.loads((site / "truth.json").read_text())
    return [site / "media" / f"{vid}.mp4" for vid, t in sorted(truth.items()) if not t["corrupt"]], truth


# ---------------------------------------------------------------- frames
def bench_frames(site: Path, repeats: int) -> dict:
    from multihowto.operators.ffmpeg_binary import ffmpeg_exe
    from multihowto.operators.frames import ExtractFrames
    from multihowto.schemas.config import RegionConfig

    videos, truth = good_videos(site)
    cfg = RegionConfig()
    op = ExtractFrames(cfg)
    size = cfg.frames.size
    items = [
        {"video_id": v.stem, "video_bytes": v.read_bytes(), "video_path": str(v),
         "clips": [{"start": c["start"], "end": c["end"]} for c in truth[v.stem]["cues"]]}
        for v in videos
    ]

    def bare():
        for v in videos:
            subprocess.run(
                [ffmpeg_exe(), "-v", "error", "-nostdin", "-threads", str(cfg.frames.threads), "-i", str(v),
                 "-vf", f"fps={cfg.frames.fps},scale=-2:{size}", "-f", "null", "-"],
                check=True,
            )

    def ours():
        out = op.process_batch(copy.deepcopy(items))
        assert all(it["status"] == "ok" for it in out)

    ours()  # warm the page cache and the operator
    limit = timed(bare, repeats)
    mine = timed(ours, repeats)
    return {"limit": limit, "ours": mine, "ratio": ratio(limit, mine), "videos": len(videos)}


# ---------------------------------------------------------------- langid
def bench_langid(repeats: int, tracks: int = 150) -> dict:
    from multihowto.operators.langid import LanguageId, load_lid_model, track_line
    from multihowto.sample_site.material import load_emoji
    from multihowto.schemas.config import RegionConfig
    from multihowto.schemas.sample import LANGS

    emoji = load_emoji()
    rng = random.Random(0)
    items = []
    for v in range(tracks):
        t = {}
        for lang in LANGS:
            names = [e.names[lang] for e in rng.sample(emoji, 8)]
            t[lang] = {"cues": [[i * 3.0, i * 3.0 + 2.5, n] for i, n in enumerate(names)], "format": "vtt", "kind": "manual"}
        items.append({"video_id": f"v{v}", "tracks": t})
    # the lines the operator classifies: every cue, and every track's joined text
    lines = [c[2] for it in items for tr in it["tracks"].values() for c in tr["cues"]]
    lines += [track_line([c[2] for c in tr["cues"]]) for it in items for tr in it["tracks"].values()]
    model = load_lid_model()
    op = LanguageId(RegionConfig())
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


def bench_end_to_end(site: Path, work: Path, repeats: int, replicate: int) -> dict:
    import dataclasses

    from multihowto.pipeline.ray_runner import cluster_cpus
    from multihowto.pipeline.run import run_dataset
    from multihowto.sample_site.server import serve
    from multihowto.schemas.config import FUSE_MODES, RegionConfig, SourceConfig, load_region

    cpus = cluster_cpus("local")
    local = load_region(ROOT / "deploy" / "regions" / "local.yaml").concurrency
    layouts = [local.fuse] + [m for m in FUSE_MODES if m != local.fuse]
    by_layout = {}
    with serve(site) as base:
        manifest = work / "manifest.csv"
        n = replicated_manifest(site, base, replicate, manifest)
        for fuse in layouts:
            results, last_out = [], None
            for r in range(repeats):
                out = work / f"e2e-{fuse}-{r}"
                shutil.rmtree(out, ignore_errors=True)
                cfg = RegionConfig(output=str(out), source=SourceConfig(kind="manifest", manifest=str(manifest)),
                                   concurrency=dataclasses.replace(local, fuse=fuse))
                t = time.perf_counter()
                summary = run_dataset(cfg, log=lambda *_: None)
                results.append((time.perf_counter() - t, summary.clips))
                last_out = out
            by_layout[fuse] = (results, last_out)
        results, last_out = by_layout[local.fuse]
        limits = stage_limits(site, base, last_out, replicate)
    walls = [w for w, _ in results]
    clips = results[-1][1]
    assert all(res[-1][1] == clips for res, _ in by_layout.values()), "layouts made different datasets"
    _, truth = good_videos(site)
    video_seconds = sum(t["duration"] for t in truth.values() if not t["corrupt"]) * replicate
    ours = {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls), "runs": len(walls)}
    limit_wall = sum(limits.values()) / cpus
    limit = {"median_s": limit_wall, "min_s": limit_wall, "max_s": limit_wall, "runs": 1}
    stats = {}
    for p in sorted(last_out.glob("shard-*.stats.json")):
        for stage, secs in json.loads(p.read_text())["timings_s"].items():
            stats[stage] = stats.get(stage, 0.0) + secs
    return {
        "videos": n,
        "clips": clips,
        "cpus": cpus,
        "ours": ours,
        "limit": limit,
        "ratio": ratio(limit, ours),
        "clips_per_s": clips / ours["median_s"],
        "video_hours_per_core_hour": (video_seconds / 3600) / (ours["median_s"] * cpus / 3600),
        "stage_limits_s": limits,
        "stage_time_in_pipeline_s": stats,
        "dataset": str(last_out),
        "layout": local.fuse,
        "layouts_s": {fuse: statistics.median(w for w, _ in res) for fuse, (res, _) in by_layout.items()},
    }


# ---------------------------------------------------------------- memory
def bench_memory(site: Path, work: Path, factors=(1, 10)) -> dict:
    """Peak RSS of the driver and of every process of the run (driver and Ray), for the
    sample site's manifest and for it replicated ``factors`` times."""
    import threading

    import psutil

    from multihowto.pipeline.run import run_dataset
    from multihowto.sample_site.server import serve
    from multihowto.schemas.config import RegionConfig, SourceConfig

    me = psutil.Process()
    out = {}
    with serve(site) as base:
        for factor in factors:
            manifest = work / f"memory-{factor}.csv"
            n = replicated_manifest(site, base, factor, manifest)
            dest = work / f"memory-{factor}"
            shutil.rmtree(dest, ignore_errors=True)
            peaks = {"driver_mb": 0.0, "all_processes_mb": 0.0}
            stop = threading.Event()

            def sample(peaks: dict, stop: threading.Event) -> None:
                while not stop.is_set():
                    procs = [me] + [p for p in psutil.process_iter(["cmdline"]) if "ray" in " ".join(p.info["cmdline"] or [])[:300]]
                    total = 0
                    for p in {p.pid: p for p in procs}.values():
                        try:
                            total += p.memory_info().rss
                        except psutil.Error:
                            pass
                    peaks["driver_mb"] = max(peaks["driver_mb"], me.memory_info().rss / 2**20)
                    peaks["all_processes_mb"] = max(peaks["all_processes_mb"], total / 2**20)
                    time.sleep(0.2)

            t = threading.Thread(target=sample, args=(peaks, stop), daemon=True)
            t.start()
            cfg = RegionConfig(output=str(dest), videos_per_unit=4, source=SourceConfig(kind="manifest", manifest=str(manifest)))
            summary = run_dataset(cfg, log=lambda *_: None)
            stop.set()
            t.join()
            out[f"x{factor}"] = {"videos": n, "clips": summary.clips, **{k: round(v, 1) for k, v in peaks.items()}}
            shutil.rmtree(dest, ignore_errors=True)
    return out


# ---------------------------------------------------------------- scaling
def bench_scaling(site: Path, repeats: int, copies: int = 8) -> dict:
    from multihowto.operators.frames import ExtractFrames
    from multihowto.pipeline.ray_runner import run_stages
    from multihowto.schemas.config import RegionConfig

    videos, truth = good_videos(site)
    cfg = RegionConfig()
    items = [
        {"video_id": f"{v.stem}-{c}", "status": "ok", "video_path": str(v), "video_bytes": v.read_bytes(),
         "clips": [{"start": x["start"], "end": x["end"]} for x in truth[v.stem]["cues"]]}
        for c in range(copies) for v in videos
    ]

    def run(actors: int):
        done = []
        run_stages(copy.deepcopy(items), [(((ExtractFrames, (cfg,)),), actors, 1.0)], done.append)
        assert len(done) == len(items) and all(d["status"] == "ok" for d in done)

    def bare(parallel: int):
        from concurrent.futures import ThreadPoolExecutor

        from multihowto.operators.frames import decode_command

        cmds = [decode_command(it["video_path"], cfg.frames) for it in items]
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(lambda c: subprocess.run(c, capture_output=True, check=True), cmds))

    run(2)  # start Ray and warm the workers' imports
    one = timed(lambda: run(1), repeats)
    two = timed(lambda: run(2), repeats)
    # The same ffmpeg commands without Ray, 1 and 2 at a time: what the machine allows.
    bare_one = timed(lambda: bare(1), repeats)
    bare_two = timed(lambda: bare(2), repeats)
    return {
        "one_worker": one, "two_workers": two, "ratio": ratio(one, two), "videos": len(items),
        "bare_one": bare_one, "bare_two": bare_two, "bare_ratio": ratio(bare_one, bare_two),
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
    p.add_argument("--skip-memory", action="store_true", help="skip the 1x vs 10x manifest memory run")
    args = p.parse_args(argv)

    from multihowto.sample_site.build import build_site

    site = build_site(Path(args.site_dir))
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    cores = os.cpu_count()
    print(f"[bench] {cores} cores, {platform.processor() or platform.machine()}, repeats={args.repeats}", flush=True)
    res = {"cores": cores, "repeats": args.repeats}
    res["frames"] = bench_frames(site, args.repeats)
    print(f"  frames   {fmt(res['frames']['ratio'])}", flush=True)
    res["langid"] = bench_langid(max(args.repeats, 5))
    print(f"  langid   {fmt(res['langid']['ratio'])}", flush=True)
    res["end_to_end"] = bench_end_to_end(site, work, max(1, args.repeats - 1), args.replicate)
    print(f"  e2e      {fmt(res['end_to_end']['ratio'])}", flush=True)
    res["scaling"] = bench_scaling(site, max(1, args.repeats - 1))
    print(f"  scaling  {fmt(res['scaling']['ratio'])}", flush=True)
    res["loader"] = bench_loader(Path(res["end_to_end"]["dataset"]), args.repeats)
    print(f"  loader   {fmt(res['loader']['ratio'])}", flush=True)
    if not args.skip_memory:
        res["memory"] = bench_memory(site, work)
        print("  memory   " + ", ".join(f"{k}: driver {v['driver_mb']:.0f} MB, all {v['all_processes_mb']:.0f} MB" for k, v in res["memory"].items()), flush=True)
    res["frames_ratio"] = res["frames"]["ratio"]["median"]
    res["langid_ratio"] = res["langid"]["ratio"]["median"]
    res["loader_ratio"] = res["loader"]["ratio"]["median"]
    res["end_to_end_ratio"] = res["end_to_end"]["ratio"]["median"]
    res["scaling_2_workers_ratio"] = res["scaling"]["ratio"]["median"]
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
        ("end to end vs sum of stage limits", "end_to_end", f"{e['videos']} videos, {e['clips']} clips in {e['ours']['median_s']:.1f}s (fuse: {e['layout']}); limit {e['limit']['median_s']:.1f}s on {e['cpus']} CPUs"),
        ("2 vs 1 frame workers on Ray", "scaling", f"{res['scaling']['one_worker']['median_s']:.1f}s vs {res['scaling']['two_workers']['median_s']:.1f}s, {res['scaling']['videos']} videos; the same ffmpeg runs 2 vs 1 at a time without Ray: {fmt(res['scaling']['bare_ratio'])}"),
    ]
    for name, key, detail in rows:
        r = res[key]["ratio"]
        ok = "ok" if r["median"] >= targets[key] else "BELOW"
        print(f"| {name} | {fmt(r)} | >= {targets[key]} {ok} | {detail} |")
    print()
    print(f"end to end: {e['clips_per_s']:.1f} clips/s, {e['video_hours_per_core_hour']:.2f} video-hours per core-hour")
    print("end to end by concurrency.fuse layout (s): " + ", ".join(f"{k} {v:.1f}" for k, v in e["layouts_s"].items()))
    print("stage limits (s, one core): " + ", ".join(f"{k} {v:.2f}" for k, v in e["stage_limits_s"].items()))
    print("stage time in the pipeline (s, summed over videos): " + ", ".join(f"{k} {v:.2f}" for k, v in e["stage_time_in_pipeline_s"].items()))
    if "memory" in res:
        print("peak memory as the manifest grows 10x: " + "; ".join(
            f"{v['videos']} videos ({v['clips']} clips): driver {v['driver_mb']:.0f} MB, driver + Ray {v['all_processes_mb']:.0f} MB"
            for v in res["memory"].values()))
    print(f"[bench] wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
