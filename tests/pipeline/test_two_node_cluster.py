"""The pipeline on a real two-node Ray cluster started on this machine: `ray start
--head` plus a second `ray start --address` with its own resources, both on 127.0.0.1.

One cluster serves the module's tests. It is started after the loopback S3 server, so
its processes (and the workers they start) inherit the S3 credentials from the
environment, as a real cluster's nodes would have theirs. The driver runs as its own
process, like a user's `mhowto dataset`. Only the processes this module started are
ended: the cluster's processes found by this cluster's port, and their descendants, by pid.
"""

import collections
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest
import yaml

from multihowto.pipeline.ray_runner import SYSTEM_CONFIG
from multihowto.pipeline.storage import open_storage
from multihowto.sample_site.server import serve

pytestmark = pytest.mark.slow
LAUNCH = [sys.executable, str(Path(__file__).resolve().parents[1] / "ray_launch.py")]
RUN_UNIT = "ray::_run_unit"  # a Ray worker's process title while it runs a unit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster_processes(port: int) -> list[psutil.Process]:
    """The processes of the cluster on ``port`` (GCS, raylets, monitors: each names the
    port on its command line) and all their descendants."""
    ours = re.compile(rf"(127\.0\.0\.1:|gcs_server_port=){port}(?!\d)")
    found: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["cmdline"]):
        try:
            if ours.search(" ".join(p.info["cmdline"] or [])):
                found[p.pid] = p
                found.update((c.pid, c) for c in p.children(recursive=True))
        except psutil.Error:
            pass
    return list(found.values())


def _raylets(port: int) -> dict[int, str]:
    """raylet pid -> its Ray node id (from its command line)."""
    out = {}
    for p in _cluster_processes(port):
        try:
            cmd = p.cmdline()
        except psutil.Error:
            continue
        if cmd and cmd[0].endswith("raylet"):
            out[p.pid] = next((a.split("=", 1)[1] for a in cmd if a.startswith("--node_id=")), "")
    return out


@pytest.fixture(scope="module")
def cluster(s3):
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    try:
        subprocess.run([*LAUNCH, "start", "--head", f"--port={port}", "--include-dashboard=false",
                        "--resources={\"head_node\": 1}", f"--system-config={json.dumps(dict(SYSTEM_CONFIG))}", *common], env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([*LAUNCH, "start", f"--address=127.0.0.1:{port}", "--resources={\"second_node\": 1}", *common],
                       env=env, check=True, capture_output=True, timeout=120)
        raylets = _raylets(port)
        assert len(raylets) == 2 and all(raylets.values()), raylets
        yield port, raylets
    finally:
        for p in _cluster_processes(port):
            try:
                p.kill()
            except psutil.Error:
                pass


def run_driver(cluster, profile: Path, **extra) -> tuple[subprocess.CompletedProcess, int, dict[int, set[int]]]:
    """Run ``mhowto dataset`` as its own process on the cluster; returns its result, its
    pid and, per raylet, the pids of its worker processes seen running a unit."""
    port, raylets = cluster
    profile.write_text(yaml.safe_dump({"name": "cluster", "ray_address": f"127.0.0.1:{port}", **extra}))
    running: dict[int, set[int]] = {pid: set() for pid in raylets}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for pid in raylets:
                try:
                    for child in psutil.Process(pid).children():
                        if child.cmdline()[:1] == [RUN_UNIT]:
                            running[pid].add(child.pid)
                except psutil.Error:
                    pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    driver = subprocess.Popen([sys.executable, "-m", "multihowto.pipeline.cli", "dataset", "--profile", str(profile)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = driver.communicate(timeout=400)
    finally:
        driver.kill()
        done.set()
        watcher.join()
    return subprocess.CompletedProcess(driver.args, driver.returncode, out, err), driver.pid, running


def shard_stats(storage) -> list[dict]:
    return [json.loads(storage.get_bytes(n)) for n in sorted(storage.list("shard-")) if n.endswith(".json")]


def check_written_by_workers(cluster, stats: list[dict], driver_pid: int, running: dict[int, set[int]]) -> None:
    """Every shard was written by a Ray worker process while it ran a unit (never the
    driver), and the units ran under both nodes."""
    _, raylets = cluster
    assert stats
    under = {}
    for s in stats:
        who = s["written_by"]
        assert who["pid"] != driver_pid
        [raylet] = [r for r, pids in running.items() if who["pid"] in pids]  # a `ray::_run_unit` worker of ours
        assert who["node"] == raylets[raylet]
        under[s["shard"]] = raylet
    assert set(under.values()) == set(raylets), f"shards per raylet: {under}"


def test_shards_are_written_by_workers_on_both_nodes(cluster, small_site, tmp_path):
    out = tmp_path / "out"
    run, driver_pid, running = run_driver(
        cluster, tmp_path / "cluster.yaml", output=str(out), videos_per_unit=2,
        concurrency={"workers": 2, "download": 2},
        source={"kind": "sample_site", "site_dir": str(small_site)},
        download={"allowed_extractors": ["generic", "html5"]},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    check_written_by_workers(cluster, shard_stats(open_storage(str(out))), driver_pid, running)
    truth = json.loads((small_site / "truth.json").read_text())
    keys = pq.read_table(sorted(out.glob("shard-*.parquet"))).column("key").to_pylist()
    assert len(keys) == len(set(keys)) == sum(len(t["cues"]) for t in truth.values() if not t["corrupt"])


def test_shards_are_written_by_workers_to_s3(cluster, s3, small_site, tmp_path):
    output = "s3://mhowto/two-node/"
    run, driver_pid, running = run_driver(
        cluster, tmp_path / "cluster.yaml", output=output, s3_endpoint=s3, videos_per_unit=2,
        concurrency={"workers": 2, "download": 2},
        source={"kind": "sample_site", "site_dir": str(small_site)},
        download={"allowed_extractors": ["generic", "html5"]},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    storage = open_storage(output, s3)
    check_written_by_workers(cluster, shard_stats(storage), driver_pid, running)
    names = storage.list("shard-")
    assert sum(n.endswith(".parquet") for n in names) == 3 and any(n.endswith(".tar") for n in names)


class TimedLog(list):
    """The sample site's request log, each entry stamped with when the server saw it."""

    def append(self, entry) -> None:
        super().append((time.monotonic(), *entry))


def test_host_rate_holds_across_nodes_and_retries_are_counted_once(cluster, small_site, tmp_path):
    rate, burst, window = 5, 2, 10.0
    faults = {
        "/v/sample-00.html": {"kind": "429", "times": 2, "retry_after": 0},
        "/v/sample-02.html": {"kind": "500", "times": 1},
        "/subs/sample-03.fr.vtt": {"kind": "503", "times": 2},
    }
    log = TimedLog()
    out = tmp_path / "out"
    with serve(small_site, faults=faults, log=log) as base:
        manifest = tmp_path / "manifest.csv"
        ids = [line.split(",")[0] for line in (small_site / "manifest.csv").read_text().splitlines()[1:]]
        manifest.write_text("video_id,url\n" + "".join(f"{v},{base}v/{v}.html\n" for v in ids))
        port = base.rstrip("/").rsplit(":", 1)[1]
        run, driver_pid, running = run_driver(
            cluster, tmp_path / "cluster.yaml", output=str(out), videos_per_unit=3,
            concurrency={"workers": 2, "download": 2},  # 2 units at once, one per node: 4 download threads
            source={"kind": "manifest", "manifest": str(manifest)},
            download={"allowed_extractors": ["generic", "html5"], "allowed_hosts": [f"127.0.0.1:{port}"],
                      "host_rate_per_s": rate, "host_burst": burst, "retries": 3,
                      "backoff_base_s": 0.1, "backoff_max_s": 0.5},
        )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    stats = shard_stats(open_storage(str(out)))
    check_written_by_workers(cluster, stats, driver_pid, running)  # 4 threads on 2 nodes asked one limiter
    times = sorted(t for t, _, _ in log)
    assert len(times) > rate * window + burst  # enough requests that an unlimited run would break the limit
    most = max(sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times))
    # the burst the site saw: the most requests beyond the rate over any stretch of the log
    seen_burst = max(j - i + 1 - rate * (times[j] - times[i]) for i in range(len(times)) for j in range(i, len(times)))
    print(f"{len(times)} requests over {times[-1] - times[0]:.1f} s; at most {most} in any {window:.0f} s "
          f"(limit {rate} * {window:.0f} + burst {burst} = {rate * window + burst:.0f}); burst seen {seen_burst:.2f}")
    assert most <= rate * window + burst
    # one retry layer: each faulty path was requested 1 + (its fault's times) times, and
    # the stats count exactly those extra requests, once each
    seen = collections.Counter(path for _, _, path in log)
    for path, fault in faults.items():
        assert seen[path] == 1 + fault["times"], (path, seen[path])
    retries = collections.Counter()
    for s in stats:
        retries.update(s["retries"])
    assert retries == {"http_429": 2, "http_500": 1, "fr:http_503": 2}
    assert sum(retries.values()) == sum(seen[p] - 1 for p in faults)
    assert sum(s["requests"] for s in stats) == len(log)
