"""The pipeline on a real two-node Ray cluster started on this machine: `ray start
--head` plus a second `ray start --address` with its own resources, both on 127.0.0.1."""

import json
import os
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

pytestmark = pytest.mark.slow
LAUNCH = [sys.executable, str(Path(__file__).resolve().parents[1] / "ray_launch.py")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cluster_processes(port: int) -> list[psutil.Process]:
    marks = (f"127.0.0.1:{port}", f"gcs_server_port={port}")
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(m in " ".join(p.info["cmdline"] or []) for m in marks):
                out.append(p)
        except psutil.Error:
            pass
    return out


@pytest.fixture()
def two_nodes():
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    try:
        subprocess.run([*LAUNCH, "start", "--head", f"--port={port}", "--include-dashboard=false",
                        "--resources={\"head_node\": 1}", *common], env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([*LAUNCH, "start", f"--address=127.0.0.1:{port}", "--resources={\"second_node\": 1}", *common],
                       env=env, check=True, capture_output=True, timeout=120)
        yield port
    finally:
        for p in _cluster_processes(port):
            try:
                p.kill()
            except psutil.Error:
                pass


def test_pipeline_runs_on_two_nodes(two_nodes, small_site, tmp_path):
    port = two_nodes
    raylets = [p for p in _cluster_processes(port) if "raylet" in " ".join(p.cmdline())[:200]]
    assert len(raylets) == 2
    out = tmp_path / "out"
    profile = tmp_path / "cluster.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "cluster", "ray_address": f"127.0.0.1:{port}", "output": str(out), "videos_per_unit": 2,
        "source": {"kind": "sample_site", "site_dir": str(small_site)},
        "download": {"allowed_extractors": ["generic", "html5"]},
    }))
    seen_under: dict[int, set[int]] = {r.pid: set() for r in raylets}
    done = threading.Event()

    def watch():  # which raylet each pipeline worker process belongs to
        while not done.is_set():
            for r in raylets:
                try:
                    for child in r.children():
                        if "MapWorker" in " ".join(child.cmdline()):
                            seen_under[r.pid].add(child.pid)
                except psutil.Error:
                    pass
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    run = subprocess.run([sys.executable, "-m", "multihowto.pipeline.cli", "dataset", "--profile", str(profile)],
                         capture_output=True, text=True, env=env, timeout=400)
    done.set()
    watcher.join()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert all(seen_under.values()), f"pipeline workers per raylet: {seen_under}"
    truth = json.loads((small_site / "truth.json").read_text())
    keys = pq.read_table(sorted(out.glob("shard-*.parquet"))).column("key").to_pylist()
    assert len(keys) == len(set(keys)) == sum(len(t["cues"]) for t in truth.values() if not t["corrupt"])
