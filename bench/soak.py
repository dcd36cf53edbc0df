"""``make soak``: a seeded soak of ``mhowto dataset`` under faults and kills (issue #14).

Each run copies one small sample site, injects a random mix of fault classes into the
copy (bench/soak_faults.py: server faults, broken files, hostile tracks, bad manifest
rows), runs ``mhowto dataset --profile`` in its own process group, SIGKILLs the driver
at random moments (then every process it had started, by pid, and reruns it until it
completes) and SIGKILLs random Ray workers of that driver, while sampling the memory of
the driver and all its descendants. Then bench/soak_check.py checks the output against
the truth decided up front. Totals are printed; any violation makes the exit status 1.

    python bench/soak.py --seed 0 --runs 20 --site-videos 10
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench.* modules, when run as a script

from bench.soak_check import check_dataset  # noqa: E402
from bench.soak_faults import (  # noqa: E402
    CLASSES,
    DEADLINE_S,
    RETRIES,
    SOCKET_TIMEOUT_S,
    SiteFaults,
    audio_only_mp4,
    default_classes,
    server_supports,
)
from multihowto.sample_site.build import build_site  # noqa: E402
from multihowto.sample_site.server import serve  # noqa: E402
from multihowto.sample_site.spec import SiteSpec  # noqa: E402
from multihowto.schemas.index import LEASE_FILE  # noqa: E402

MHOWTO = [sys.executable, "-m", "multihowto.pipeline.cli"]
WORKER_MARKS = ("ray::_run_unit", "ray::IDLE")
MiB = 1 << 20


@dataclass
class Watch:
    """What the monitor saw of one driver attempt and its descendants."""

    known: dict[int, tuple[float, str]] = field(default_factory=dict)  # pid -> (create_time, cmdline)
    peak_rss: dict[str, int] = field(default_factory=dict)  # "driver" | "worker" | "other" -> bytes
    over: list[str] = field(default_factory=list)  # memory bound violations


@dataclass
class RunResult:
    attempts: int = 0
    driver_kills: int = 0
    worker_kills: int = 0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)
    peak_rss: dict[str, int] = field(default_factory=dict)
    leftover_scratch: int = 0


def _role(cmd: str, pid: int, driver: int) -> str:
    if pid == driver:
        return "driver"
    return "worker" if any(m in cmd for m in WORKER_MARKS) else "other"


def _alive(pid: int, create_time: float) -> psutil.Process | None:
    """The process ``pid`` if it is still the one we recorded (not a reused pid)."""
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - create_time) < 0.01 and p.status() != psutil.STATUS_ZOMBIE:
            return p
    except psutil.Error:
        pass
    return None


class DriverRun:
    """One ``mhowto dataset`` attempt, watched: memory sampled, kills on schedule."""

    def __init__(self, profile: Path, log: Path, env: dict, mem_bound: int, rng: random.Random):
        self.rng = rng
        self.mem_bound = mem_bound
        self.watch = Watch()
        with open(log, "ab") as f:
            self.proc = subprocess.Popen([*MHOWTO, "dataset", "--profile", str(profile)], stdout=f, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        self.started = time.monotonic()
        self.root = psutil.Process(self.proc.pid)
        self.watch.known[self.proc.pid] = (self.root.create_time(), "driver")

    def sample(self) -> list[psutil.Process]:
        """Record every descendant and its memory; returns the live processes."""
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return []
        live = []
        for p in procs:
            try:
                cmd = " ".join(p.cmdline())
                rss = p.memory_info().rss
                ct = p.create_time()
            except psutil.Error:
                continue
            live.append(p)
            self.watch.known.setdefault(p.pid, (ct, cmd))
            role = _role(cmd, p.pid, self.proc.pid)
            self.watch.peak_rss[role] = max(self.watch.peak_rss.get(role, 0), rss)
            if rss > self.mem_bound:
                self.watch.over.append(f"pid {p.pid} ({role}: {cmd[:60]}) at {rss / MiB:.0f} MiB > {self.mem_bound / MiB:.0f} MiB")
        return live

    def kill_worker(self) -> bool:
        workers = []
        for p in self.sample():
            try:
                if any(m in " ".join(p.cmdline()) for m in WORKER_MARKS):
                    workers.append(p)
            except psutil.Error:
                pass
        if not workers:
            return False
        victim = self.rng.choice(workers)
        try:
            victim.send_signal(signal.SIGKILL)
        except psutil.Error:
            return False
        return True

    def kill_all(self) -> list[str]:
        """SIGKILL the driver, then every descendant recorded (by pid); the names of
        those still alive a few seconds later."""
        self.sample()
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        for pid, (ct, _) in self.watch.known.items():
            p = _alive(pid, ct)
            if p is not None:
                try:
                    p.send_signal(signal.SIGKILL)
                except psutil.Error:
                    pass
        end = time.monotonic() + 5
        survivors = []
        while time.monotonic() < end:
            survivors = [f"{pid} {cmd[:60]}" for pid, (ct, cmd) in self.watch.known.items() if _alive(pid, ct) is not None]
            if not survivors:
                break
            time.sleep(0.2)
        return survivors

    def survivors(self) -> list[psutil.Process]:
        return [p for pid, (ct, _) in self.watch.known.items() if pid != self.proc.pid and (p := _alive(pid, ct))]


def run_once(run: int, out: Path, profile: Path, tmp: Path, rng: random.Random, plan_kills: tuple[int, int],
             args, estimate: list[float]) -> RunResult:
    """Run the driver until it completes, killing it ``plan_kills[0]`` times and Ray
    workers ``plan_kills[1]`` times at random moments."""
    res = RunResult()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "RAY_TMPDIR": str(tmp), "TMPDIR": str(tmp)}
    log = profile.with_suffix(".log")
    started = time.monotonic()
    driver_kills, worker_kills = plan_kills
    typical = statistics.median(estimate) if estimate else 25.0
    worker_times = sorted(rng.uniform(2.0, typical * 0.8) for _ in range(worker_kills))
    driver_time = 0.0  # seconds of driver time across attempts (worker kills are scheduled on it)
    max_attempts = driver_kills + 6
    drivers: list[int] = []
    while True:
        res.attempts += 1
        if res.attempts > max_attempts:
            res.violations.append(f"the driver did not complete in {max_attempts} attempts")
            break
        kill_at = rng.uniform(0.5, typical * 0.9) if res.driver_kills < driver_kills else None
        d = DriverRun(profile, log, env, args.mem_bound_mib * MiB, rng)
        drivers.append(d.proc.pid)
        killed = False
        while d.proc.poll() is None:
            time.sleep(0.1)
            now = time.monotonic() - d.started
            d.sample()
            if sum(d.watch.peak_rss.values()) and any(r > 2 * d.mem_bound for r in d.watch.peak_rss.values()):
                res.violations.append("a process passed twice the memory bound: the run was stopped")
                d.kill_all()
                killed = True
                break
            if time.monotonic() - started > args.run_timeout_s:
                res.violations.append(f"the run passed its time bound of {args.run_timeout_s:.0f} s")
                d.kill_all()
                killed = True
                break
            if worker_times and driver_time + now >= worker_times[0]:
                if d.kill_worker():
                    res.worker_kills += 1
                    worker_times.pop(0)
            if kill_at is not None and now >= kill_at:
                survivors = d.kill_all()
                if survivors:
                    res.violations.append(f"alive 5 s after the driver's kill: {survivors[:3]}")
                res.driver_kills += 1
                killed = True
                break
        driver_time += time.monotonic() - d.started
        for role, rss in d.watch.peak_rss.items():
            res.peak_rss[role] = max(res.peak_rss.get(role, 0), rss)
        res.violations += d.watch.over[:3]
        if any("time bound" in x or "memory bound" in x for x in res.violations):
            break
        if killed:
            res.violations += _after_kill(out, drivers)
            continue
        rc = d.proc.returncode
        time.sleep(0.5)
        left = d.survivors()
        if left:
            res.violations.append(f"{len(left)} processes of a finished driver still alive: {[p.pid for p in left][:5]}")
            for p in left:
                try:
                    p.kill()
                except psutil.Error:
                    pass
        if rc == 0:
            estimate.append(time.monotonic() - d.started)
            break
        tail = log.read_text(errors="replace").splitlines()[-3:]
        if rc in (1, -9) and any("rerun the same command" in line for line in tail):
            # units whose tasks failed (workers killed past Ray's retries), or a Ray start
            # that a killed worker wedged (ended by the reaper's watch): rerun
            continue
        if rc == 2 and any("holds no _plan.json" in line for line in tail) and os.listdir(out) == [LEASE_FILE]:
            # a driver killed between taking the lease and writing the plan: the output
            # holds only our own lease, and every rerun refuses it as not ours
            res.violations.append(f"an output holding only a dead run's {LEASE_FILE} is refused as not ours: {tail[-1][:160]}")
            (out / LEASE_FILE).unlink()
            continue
        if rc == 2 and any("is in use by run" in line for line in tail):
            res.violations.append(f"the lease of a killed driver was not taken over: {tail[-1][:200]}")
            (out / LEASE_FILE).unlink(missing_ok=True)
            continue
        res.violations.append(f"the driver exited {rc}: {' | '.join(tail)[:300]}")
    res.seconds = time.monotonic() - started
    leaked = _still_running(tmp)
    if leaked:
        res.violations.append(f"{len(leaked)} processes of this run alive after it ended: {leaked[:3]}")
    scratch = tmp / "mhowto-scratch"
    res.leftover_scratch = len(list(scratch.iterdir())) if scratch.exists() else 0
    return res


def _still_running(tmp: Path) -> list[str]:
    """Processes started for this run (they carry its own RAY_TMPDIR, a fresh folder, in
    their environment) that are still alive, e.g. started by a killed driver after the
    monitor's last look; each is killed."""
    found = []
    for p in psutil.process_iter(["pid"]):
        try:
            if p.environ().get("RAY_TMPDIR") == str(tmp):
                found.append(f"{p.pid} {' '.join(p.cmdline())[:60]}")
                p.kill()
        except psutil.Error:
            pass
    return found


def _after_kill(out: Path, pids: list[int]) -> list[str]:
    """A killed driver's lease must name one of the run's drivers, all dead now (the
    rerun then finds its holder dead and takes the output over at once)."""
    lease = out / LEASE_FILE
    if not lease.exists():
        return []  # killed before it took the lease
    try:
        holder = json.loads(lease.read_text())
    except ValueError:
        return []  # killed while writing it: the rerun treats it as stale
    if holder.get("pid") not in pids:
        return [f"{LEASE_FILE} after the kill names pid {holder.get('pid')}, none of this run's drivers {pids}"]
    return []


def write_profile(path: Path, site: Path, out: Path, args) -> None:
    path.write_text(yaml.safe_dump({
        "name": "soak",
        "output": str(out),
        "videos_per_unit": args.videos_per_unit,
        "source": {"kind": "sample_site", "site_dir": str(site)},
        "download": {"allowed_extractors": ["generic", "html5"], "retries": RETRIES, "backoff_base_s": 0.05,
                     "backoff_max_s": 0.2, "socket_timeout_s": SOCKET_TIMEOUT_S, "deadline_s": DEADLINE_S},
        "frames": {"timeout_s": 60.0},
        "concurrency": {"workers": args.workers, "download": 2, "stall_s": 60},  # a wedged Ray ends the attempt; it is rerun
    }))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--site-videos", type=int, default=10, help="videos of the sample site every run starts from")
    ap.add_argument("--videos-per-unit", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="concurrency.workers of the run profile")
    ap.add_argument("--video-faults", type=int, default=18, help="video faults per run")
    ap.add_argument("--manifest-faults", type=int, default=8, help="bad manifest rows per run")
    ap.add_argument("--driver-kills", type=int, default=2, help="at most this many driver kills per run")
    ap.add_argument("--worker-kills", type=int, default=3, help="at most this many Ray worker kills per run")
    ap.add_argument("--mem-bound-mib", type=int, default=2048, help="RSS bound of every process of a run")
    ap.add_argument("--run-timeout-s", type=float, default=180.0, help="time bound of one run, all attempts")
    ap.add_argument("--only", default="", help="comma-separated fault classes to use instead of the defaults")
    ap.add_argument("--enable", default="", help="comma-separated fault classes to add to the defaults")
    ap.add_argument("--disable", default="", help="comma-separated fault classes to leave out")
    ap.add_argument("--workdir", default=str(ROOT / "build" / "soak"))
    ap.add_argument("--keep", action="store_true", help="keep each run's site and output")
    args = ap.parse_args(argv)
    names = [n for n in ",".join((args.only, args.enable, args.disable)).split(",") if n]
    unknown = [n for n in names if n not in CLASSES]
    if unknown:
        ap.error(f"unknown fault class(es) {unknown}; known: {', '.join(CLASSES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = args.only.split(",") if args.only else default_classes()
    chosen += [n for n in args.enable.split(",") if n and n not in chosen]
    classes = []
    for name in chosen:
        if name in args.disable.split(","):
            continue
        if not server_supports(name):
            print(f"[soak] {name}: the sample site's server has no {CLASSES[name].server_mode!r} fault; left out")
            continue
        classes.append(name)
    off = sorted(set(CLASSES) - set(classes))
    print(f"[soak] seed {args.seed}, {args.runs} runs of {args.site_videos} videos; classes off: {', '.join(off) or 'none'}")
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    spec = SiteSpec(n_videos=args.site_videos, cues_per_video=(3, 5), cue_seconds=(2.0, 3.0), seed=args.seed,
                    rolling_en=(1,), wrong_language=(3, "de", "fr"), missing_langs=(4, ("sw", "cs")), corrupt_video=-1)
    t0 = time.monotonic()
    base = build_site(work / "base-site", spec)
    audio = audio_only_mp4(work / "audio-only.mp4")
    print(f"[soak] base site {base} ready ({time.monotonic() - t0:.0f}s)")

    faults: Counter = Counter()
    totals: Counter = Counter()
    peak: dict[str, int] = {}
    violations: list[str] = []
    estimate: list[float] = []
    soak_started = time.monotonic()
    for run in range(args.runs):
        rng = random.Random(f"{args.seed}:{run}")
        run_dir = work / f"run-{run:03d}"
        shutil.rmtree(run_dir, ignore_errors=True)
        site = run_dir / "site"
        shutil.copytree(base, site)
        tmp = Path(tempfile.mkdtemp(prefix="soak-"))  # short: Ray's socket paths live under it
        try:
            with serve(site, faults={}) as offsite:  # another origin, for redirect_offsite
                truth = SiteFaults(site, rng, classes, audio, offsite).plan(args.video_faults, args.manifest_faults)
                kills = (rng.randint(0, args.driver_kills) if "kill_driver" in classes else 0,
                         rng.randint(0, args.worker_kills) if "kill_worker" in classes else 0)
                (run_dir / "truth.json").write_text(json.dumps(truth.to_json(), indent=1))
                profile = run_dir / "profile.yaml"
                out = run_dir / "out"
                write_profile(profile, site, out, args)
                res = run_once(run, out, profile, tmp, rng, kills, args, estimate)
            found = res.violations + check_dataset(out, truth)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        faults.update(name for name, _ in truth.faults)
        faults["kill_driver"] += res.driver_kills
        faults["kill_worker"] += res.worker_kills
        n_faults = len(truth.faults) + res.driver_kills + res.worker_kills
        good = sum(1 for e in truth.expect.values() if e.ok)
        clips = sum(truth.cues[v] for v, e in truth.expect.items() if e.ok)
        totals.update(runs=1, faults=n_faults, videos=len(truth.expect), good=good, bad=len(truth.expect) - good,
                      clips=clips, attempts=res.attempts, rejected_rows=len(truth.rejected),
                      leftover_scratch=res.leftover_scratch)
        for role, rss in res.peak_rss.items():
            peak[role] = max(peak.get(role, 0), rss)
        violations += [f"run {run}: {v}" for v in found]
        print(f"[run {run:2d}] {len(truth.expect)} videos ({good} good, {clips} clips), {n_faults} faults, "
              f"kills {res.driver_kills} driver + {res.worker_kills} worker, {res.attempts} attempts, "
              f"{res.seconds:.0f}s: {len(found)} violations", flush=True)
        for v in found[:10]:
            print(f"    ! {v}")
        if not args.keep and not found:
            shutil.rmtree(run_dir, ignore_errors=True)

    print()
    print(f"[soak] totals (seed {args.seed}, {time.monotonic() - soak_started:.0f}s):")
    print(f"  runs {totals['runs']}, driver attempts {totals['attempts']}")
    print(f"  faults injected {totals['faults']}: " + ", ".join(f"{k}={n}" for k, n in sorted(faults.items()) if n))
    print(f"  kills: driver {faults['kill_driver']}, worker {faults['kill_worker']}")
    print(f"  videos {totals['videos']} ({totals['good']} must end ok, {totals['bad']} must fail), "
          f"clips {totals['clips']}, manifest rows rejected {totals['rejected_rows']}")
    print("  peak RSS: " + ", ".join(f"{k} {v / MiB:.0f} MiB" for k, v in sorted(peak.items()))
          + f" (bound {args.mem_bound_mib} MiB)")
    print(f"  scratch folders left by killed drivers: {totals['leftover_scratch']}")
    print(f"  violations {len(violations)}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
