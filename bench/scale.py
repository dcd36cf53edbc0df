"""HowTo100M scale (issue #13): the plan, the orchestration and the driver, measured.

    plan_1m_seconds, plan_1m_peak_rss_mb
        a synthetic HowTo100M-shaped manifest (``video_id,category_1,category_2,rank,task_id``,
        11-character YouTube-like ids, some duplicates and bad rows) of 1.22 M rows planned
        with ``make_plan`` into a fresh output, in a process of its own (its VmHWM)
    orchestration_videos_per_s
        100k videos that all fail at once (their URLs are on a loopback port the allow-list
        refuses) through ``run_dataset`` end to end, in large units; a listener on that
        port counts the connections made to it (must be 0)
    driver_bytes_per_video, driver_rss_ratio
        runs over 200 and 2,000 tiny videos (one 2 s mp4 and one VTT per language, reused
        by every page) from a loopback site: what the driver received from the workers
        per video, and the driver's peak RSS at 2,000 over that at 200 (each run in a
        process of its own)

Every run is a child process (``python bench/scale.py _child KIND ARGS``), so each peak
RSS is that process's own. ``end_to_end_ratio`` at steady state is measured by
bench/run.py (Ray started first, a warm-up run, then timed runs) and copied here; alone,
``--e2e`` measures it.

    python bench/scale.py [--rows 1220000] [--failing 100000] [--tiny 200,2000] [--e2e]
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LANGS = ("en", "de", "fr", "ru", "es", "cs", "sw", "zh", "vi")


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: reset at exec, unlike ru_maxrss)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def yt_id(rng: random.Random) -> str:
    return base64.urlsafe_b64encode(rng.randbytes(9)).decode()[:11]


# ---------------------------------------------------------------- the plan
def howto100m_manifest(path: Path, rows: int, seed: int = 0) -> dict:
    """A HowTo100M-shaped CSV of ``rows`` data rows: about 0.5% repeat an earlier id and
    0.1% are bad (an id of the wrong length, an empty id, a row with a stray quote)."""
    rng = random.Random(seed)
    cats = [f"Category {i}" for i in range(12)]
    tasks = [str(rng.randrange(10000, 200000)) for _ in range(2000)]
    counts = {"rows": rows, "duplicates": 0, "bad": 0}
    recent: list[str] = []
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write("video_id,category_1,category_2,rank,task_id\n")
        for i in range(rows):
            r = rng.random()
            if r < 0.005 and recent:
                vid = rng.choice(recent)
                counts["duplicates"] += 1
            elif r < 0.006:
                vid = rng.choice([yt_id(rng)[:7], "", yt_id(rng) + "xyz", '"broken'])
                counts["bad"] += 1
            else:
                vid = yt_id(rng)
                if i % 97 == 0:
                    recent.append(vid)
            c1 = rng.choice(cats)
            f.write(f"{vid},{c1},{c1} and more,{rng.randrange(1, 200)},{rng.choice(tasks)}\n")
    return counts


def child_plan(manifest: str, output: str) -> dict:
    from multihowto.pipeline.plan import make_plan
    from multihowto.pipeline.storage import open_storage
    from multihowto.schemas.config import RegionConfig, SourceConfig

    cfg = RegionConfig(output=output, videos_per_unit=200, source=SourceConfig(kind="manifest", manifest=manifest))
    t = time.perf_counter()
    plan = make_plan(manifest, cfg, open_storage(output))
    secs = time.perf_counter() - t
    return {"seconds": secs, "n_videos": plan.n_videos, "n_units": plan.n_units, "n_rejected": plan.n_rejected,
            "peak_rss_mb": peak_rss_mb()}


def run_child(kind: str, *args: str, timeout: float = 1800) -> dict:
    """Run ``child_<kind>(*args)`` in a new interpreter; its json answer."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "_child", kind, *args],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"bench/scale.py child {kind} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_plan(work: Path, rows: int) -> dict:
    manifest = work / f"howto100m-{rows}.csv"
    if not manifest.exists():
        counts = howto100m_manifest(manifest, rows)
        (work / f"howto100m-{rows}.json").write_text(json.dumps(counts))
    counts = json.loads((work / f"howto100m-{rows}.json").read_text())
    out = work / "plan-out"
    shutil.rmtree(out, ignore_errors=True)
    res = run_child("plan", str(manifest), str(out))
    shutil.rmtree(out, ignore_errors=True)
    return {"manifest": counts, "manifest_mb": manifest.stat().st_size / 2**20, **res}


# ---------------------------------------------------------------- orchestration
class ConnectionCounter:
    """A listener on 127.0.0.1 that counts the connections made to it (and answers none)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.count += 1
            conn.close()

    def close(self) -> int:
        self.stop.set()
        self.thread.join()
        self.sock.close()
        return self.count


def child_run(config_json: str) -> dict:
    """``run_dataset`` on the config given (json of the fields that differ from the
    defaults), Ray started first so its start-up is timed apart."""
    from multihowto.pipeline import ray_runner
    from multihowto.pipeline.run import run_dataset
    from multihowto.schemas.config import RegionConfig, build, validate

    cfg = validate(build(RegionConfig, json.loads(config_json)))
    t = time.perf_counter()
    ray_runner.init_ray(cfg.ray_address)
    ray_s = time.perf_counter() - t
    t = time.perf_counter()
    s = run_dataset(cfg, log=lambda *_: None, progress=False)
    wall = time.perf_counter() - t
    ray_runner.shutdown()
    return {"ray_startup_s": ray_s, "run_s": wall, "videos": s.videos, "clips": s.clips, "units": s.units_total,
            "units_committed": s.units_committed, "units_failed": len(s.units_failed),
            "failures": dict(s.failures), "driver_bytes": s.driver_bytes, "peak_rss_mb": peak_rss_mb()}


def bench_orchestration(work: Path, videos: int, per_unit: int) -> dict:
    listener = ConnectionCounter()
    try:
        manifest = work / f"failing-{videos}.csv"
        rng = random.Random(1)
        with open(manifest, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["video_id", "url"])
            for _ in range(videos):
                vid = yt_id(rng)
                w.writerow([vid, f"http://127.0.0.1:{listener.port}/v/{vid}.html"])
        out = work / "failing-out"
        shutil.rmtree(out, ignore_errors=True)
        cfg = {"output": str(out), "videos_per_unit": per_unit,
               "source": {"kind": "manifest", "manifest": str(manifest)},
               # only a host that is not this one: every URL is refused before any request
               "download": {"allowed_hosts": ["allowed.invalid"], "allowed_extractors": ["generic", "html5"]}}
        res = run_child("run", json.dumps(cfg))
        shutil.rmtree(out, ignore_errors=True)
    finally:
        connections = listener.close()
    return {"videos_per_unit": per_unit, "connections_to_refused_host": connections,
            "orchestration_videos_per_s": res["videos"] / res["run_s"], **res}


# ---------------------------------------------------------------- tiny videos
def tiny_site(site: Path, sample_site: Path, pages: int) -> Path:
    """A site of ``pages`` pages that all show one 2 s 96x64 mp4 and one VTT per
    language (a 1.8 s cue of real text from the sample site's tracks)."""
    from multihowto.operators.ffmpeg_binary import ffmpeg_exe

    stamp = site / ".pages"
    if stamp.exists() and int(stamp.read_text()) >= pages:
        return site
    for sub in ("media", "subs", "v"):
        (site / sub).mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=2",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(site / "media" / "tiny.mp4")], check=True)
    truth = json.loads((sample_site / "truth.json").read_text())
    vid = next(v for v, t in sorted(truth.items()) if not t["corrupt"] and set(LANGS) <= set(t["langs"]))
    import webvtt

    for lang in LANGS:
        texts = [c.text.replace("\n", " ") for c in webvtt.read(str(sample_site / "subs" / f"{vid}.{lang}.vtt"))][:6]
        (site / "subs" / f"tiny.{lang}.vtt").write_text(
            f"WEBVTT\n\n00:00:00.100 --> 00:00:01.900\n{' '.join(texts)}\n", encoding="utf-8")
    tracks = "\n".join(f'    <track kind="subtitles" srclang="{lang}" label="{lang}" src="../subs/tiny.{lang}.vtt">'
                       for lang in LANGS)
    rows = []
    for i in range(pages):
        name = f"t{i:06d}"
        (site / "v" / f"{name}.html").write_text(
            f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>tiny {i}</title></head>\n"
            f"<body>\n  <h1>tiny {i}</h1>\n  <video controls width=\"96\" height=\"64\">\n"
            f"    <source src=\"../media/tiny.mp4\" type=\"video/mp4\">\n{tracks}\n  </video>\n</body></html>\n",
            encoding="utf-8")
        rows.append(f"{name},v/{name}.html")
    (site / "manifest.csv").write_text("video_id,url\n" + "\n".join(rows) + "\n", encoding="utf-8")
    stamp.write_text(str(pages))
    return site


def bench_tiny(work: Path, sample_site: Path, counts: tuple[int, ...], per_unit: int) -> dict:
    from multihowto.sample_site.server import serve

    site = tiny_site(work / "tiny-site", sample_site, max(counts))
    rows = (site / "manifest.csv").read_text().splitlines()[1:]
    runs = {}
    with serve(site) as base:
        port = base.rstrip("/").rsplit(":", 1)[1]
        for n in counts:
            manifest = work / f"tiny-{n}.csv"
            manifest.write_text("video_id,url\n" + "".join(
                f"{r.split(',')[0]},{base}{r.split(',')[1]}\n" for r in rows[:n]), encoding="utf-8")
            out = work / f"tiny-out-{n}"
            shutil.rmtree(out, ignore_errors=True)
            cfg = {"output": str(out), "videos_per_unit": per_unit,
                   "source": {"kind": "manifest", "manifest": str(manifest)},
                   "download": {"allowed_hosts": [f"127.0.0.1:{port}"], "allowed_extractors": ["generic", "html5"]}}
            res = run_child("run", json.dumps(cfg))
            res["driver_bytes_per_video"] = res["driver_bytes"] / max(1, res["videos"])
            res["videos_per_s"] = res["videos"] / res["run_s"]
            runs[str(n)] = res
            shutil.rmtree(out, ignore_errors=True)
    small, big = runs[str(min(counts))], runs[str(max(counts))]
    return {"videos_per_unit": per_unit, "runs": runs,
            "driver_bytes_per_video": big["driver_bytes_per_video"],
            "driver_rss_ratio": big["peak_rss_mb"] / small["peak_rss_mb"]}


def bench_scale(work: Path, sample_site: Path, rows: int = 1_220_000, failing: int = 100_000,
                tiny: tuple[int, ...] = (200, 2000), log=print) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    res: dict = {"cores": os.cpu_count()}
    res["plan"] = bench_plan(work, rows)
    res["plan_1m_seconds"] = res["plan"]["seconds"]
    res["plan_1m_peak_rss_mb"] = res["plan"]["peak_rss_mb"]
    log(f"  plan     {rows} rows in {res['plan_1m_seconds']:.1f}s, peak RSS {res['plan_1m_peak_rss_mb']:.0f} MB "
        f"({res['plan']['n_videos']} videos, {res['plan']['n_rejected']} rejected)")
    res["orchestration"] = bench_orchestration(work, failing, 500)
    o = res["orchestration"]
    res["orchestration_videos_per_s"] = o["orchestration_videos_per_s"]
    log(f"  orchestr {o['videos']} failing videos in {o['run_s']:.1f}s = {o['orchestration_videos_per_s']:.0f} videos/s "
        f"(Ray start {o['ray_startup_s']:.1f}s apart), driver {o['peak_rss_mb']:.0f} MB, "
        f"{o['driver_bytes'] / max(1, o['videos']):.2f} B/video, {o['connections_to_refused_host']} connections made")
    res["tiny"] = bench_tiny(work, sample_site, tiny, 50)
    t = res["tiny"]
    res["driver_bytes_per_video"] = t["driver_bytes_per_video"]
    res["driver_rss_ratio"] = t["driver_rss_ratio"]
    log("  tiny     " + "; ".join(
        f"{k} videos: {v['run_s']:.1f}s, {v['clips']} clips, driver {v['peak_rss_mb']:.0f} MB, "
        f"{v['driver_bytes_per_video']:.2f} B/video" for k, v in t["runs"].items())
        + f"; driver RSS ratio {t['driver_rss_ratio']:.3f}")
    return res


TARGETS = {"plan_1m_seconds": ("<", 60), "plan_1m_peak_rss_mb": ("<", 1500), "orchestration_videos_per_s": (">=", 333),
           "driver_bytes_per_video": ("<", 4096), "driver_rss_ratio": ("<=", 1.10), "end_to_end_ratio": (">=", 0.6)}


def verdicts(res: dict) -> list[str]:
    lines = []
    for key, (op, target) in TARGETS.items():
        if key in res:
            v = res[key]
            ok = v < target if op == "<" else v <= target if op == "<=" else v >= target
            lines.append(f"| {key} | {v:.3f} | {op} {target} | {'ok' if ok else 'MISSED'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_child":
        kind, *args = argv[1:]
        print(json.dumps({"plan": child_plan, "run": child_run}[kind](*args)), flush=True)
        return 0
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--site-dir", default=str(ROOT / "build" / "site"))
    p.add_argument("--work-dir", default=str(ROOT / "build" / "bench" / "scale"))
    p.add_argument("--rows", type=int, default=1_220_000)
    p.add_argument("--failing", type=int, default=100_000)
    p.add_argument("--tiny", default="200,2000")
    p.add_argument("--out", default=str(ROOT / "bench" / "results.json"), help="merged under 'scale'")
    p.add_argument("--e2e", action="store_true", help="also the steady-state end_to_end_ratio (bench/run.py's)")
    args = p.parse_args(argv)
    from multihowto.sample_site.build import build_site

    site = build_site(Path(args.site_dir))
    res = bench_scale(Path(args.work_dir), site, args.rows, args.failing, tuple(int(x) for x in args.tiny.split(",")))
    if args.e2e:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from run import bench_end_to_end

        e2e = bench_end_to_end(site, Path(args.work_dir).parent, 2, 5)
        res["end_to_end_ratio"], res["ray_startup_s"] = e2e["ratio"]["median"], e2e["ray_startup_s"]
    out = Path(args.out)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged["scale"] = res
    out.write_text(json.dumps(merged, indent=1))
    print("\n".join(["| figure | value | target | |", "|---|---|---|---|", *verdicts(res)]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
