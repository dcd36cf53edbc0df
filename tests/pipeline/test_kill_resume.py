"""Nothing lost, nothing doubled: a run with faulty videos is killed (driver and all),
resumed while one of its Ray workers is killed mid-stage, and ends with every clip of
every good video exactly once, every bad video listed with its reason, and no partial
shard on disk."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import psutil
import pyarrow.parquet as pq
import pytest
import webdataset as wds
import yaml

pytestmark = pytest.mark.slow
MHOWTO = [sys.executable, "-m", "multihowto.pipeline.cli"]


def _ray_processes_since(t0: float) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline", "create_time"]):
        try:
            cmd = " ".join(p.info["cmdline"] or [])
            if p.info["create_time"] >= t0 - 0.5 and ("ray" in cmd or "raylet" in cmd or "gcs_server" in cmd) and p.pid != os.getpid():
                out.append(p)
        except psutil.Error:
            pass
    return out


def _kill_all(procs):
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


@pytest.fixture()
def faulty_site(small_site, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(small_site, site)
    with open(site / "manifest.csv", "a", encoding="utf-8") as f:
        f.write("ghost,v/ghost.html\n")  # a page that does not exist: permanent 404
    (site / "faults.json").write_text(json.dumps({
        "/v/sample-00.html": {"kind": "429", "times": 1},
        "/media/sample-02.mp4": {"kind": "truncate", "times": 1},
    }))
    return site


def test_killed_run_resumes_exactly_once(faulty_site, tmp_path):
    out = tmp_path / "out"
    profile = tmp_path / "faulty.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "faulty", "output": str(out), "videos_per_unit": 1,
        "source": {"kind": "sample_site", "site_dir": str(faulty_site)},
        "download": {"allowed_extractors": ["generic", "html5"], "retries": 2, "backoff_base_s": 0.05, "backoff_max_s": 0.2},
    }))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # 1. kill the whole run once a few units are committed
    t0 = time.time()
    with open(tmp_path / "run1.log", "w") as log:
        run1 = subprocess.Popen([*MHOWTO, "dataset", "--profile", str(profile)], stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        deadline = time.time() + 240
        while len(list(out.glob("shard-*.parquet"))) < 2 and run1.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert run1.poll() is None, "the run ended before it could be killed"
        os.killpg(run1.pid, signal.SIGKILL)
        run1.wait()
    _kill_all(_ray_processes_since(t0))
    committed_before = len(list(out.glob("shard-*.parquet")))
    assert 2 <= committed_before < 7

    # 2. resume, and kill one Ray worker of the new run while it works
    t1 = time.time()
    killed = []

    def kill_a_worker():
        end = time.time() + 120
        while time.time() < end and not killed:
            for p in _ray_processes_since(t1):
                try:
                    if "MapWorker" in " ".join(p.cmdline()) and time.time() - p.create_time() > 1.0:
                        p.kill()
                        killed.append(p.pid)
                        return
                except psutil.Error:
                    pass
            time.sleep(0.05)

    killer = threading.Thread(target=kill_a_worker, daemon=True)
    killer.start()
    run2 = subprocess.run([*MHOWTO, "dataset", "--profile", str(profile)], capture_output=True, text=True, env=env, timeout=400)
    killer.join(timeout=1)
    _kill_all(_ray_processes_since(t1))
    assert run2.returncode == 0, run2.stdout[-3000:] + run2.stderr[-3000:]
    assert killed, "no Ray worker was killed during the resumed run"
    assert f"{committed_before} already committed" in run2.stdout

    # every good video's clips exactly once; bad videos listed; no partial shard
    truth = json.loads((faulty_site / "truth.json").read_text())
    keys = [s["__key__"] for tar in sorted(out.glob("shard-*.tar")) for s in wds.WebDataset(str(tar), shardshuffle=False, empty_check=False)]
    assert len(keys) == len(set(keys))
    index_keys = pq.read_table(sorted(out.glob("shard-*.parquet"))).column("key").to_pylist()
    assert sorted(index_keys) == sorted(keys)
    for vid, t in truth.items():
        n = sum(1 for k in keys if k.startswith(f"{vid}_"))
        assert n == (0 if t["corrupt"] else len(t["cues"])), vid
    assert sorted(p.stem for p in out.glob("shard-*.tar")) == sorted(p.stem for p in out.glob("shard-*.parquet"))
    assert not (out / ".tmp").exists() and not (out / "_work").exists()
    failed = {v["video_id"]: v["error"] for p in out.glob("shard-*.stats.json") for v in json.loads(p.read_text())["per_video"] if v["status"] != "ok"}
    assert failed["ghost"].startswith("http_404") and failed["sample-05"].startswith("corrupt_video") and len(failed) == 2
