"""Nothing lost, nothing doubled: a run with faulty videos has its driver SIGKILLed
(its own Ray goes with it), is resumed while one of its Ray workers is killed in the
middle of writing a shard, and ends with every clip of every good video exactly once,
every bad video listed with its reason, and no shard without its index.

Processes are ended only by pid: the driver this test started, and the workers that
descend from it. Another Ray instance on the machine is never touched."""

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

from multihowto.operators.shards import STALL_ENV

pytestmark = pytest.mark.slow
MHOWTO = [sys.executable, "-m", "multihowto.pipeline.cli"]


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:  # gone, or a zombie
        return ""


def kill_by_pid(procs) -> None:
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

    # 1. SIGKILL the run (its process group: the driver and its Ray) once a few units are committed
    with open(tmp_path / "run1.log", "w") as log:
        run1 = subprocess.Popen([*MHOWTO, "dataset", "--profile", str(profile)], stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        seen: dict[int, psutil.Process] = {}
        deadline = time.time() + 240
        while len(list(out.glob("shard-*.parquet"))) < 2 and run1.poll() is None and time.time() < deadline:
            seen.update({p.pid: p for p in descendants(run1.pid)})
            time.sleep(0.05)
        assert run1.poll() is None, "the run ended before it could be killed"
        seen.update({p.pid: p for p in descendants(run1.pid)})
        kill_by_pid(seen.values())  # its Ray workers first (they may live in other process groups)
        os.killpg(run1.pid, signal.SIGKILL)  # then the driver, its site and what is left of its group
        run1.wait()
    committed_before = len(list(out.glob("shard-*.parquet")))
    assert 2 <= committed_before < 7

    # 2. resume; kill one Ray worker while it is writing a shard (its tar is in place,
    # its index not yet: the commit waits there for a few seconds)
    killed = []

    def kill_a_worker_mid_commit(driver: subprocess.Popen):
        end = time.time() + 200
        while time.time() < end and not killed and driver.poll() is None:
            indexed = {p.name.removesuffix(".parquet") for p in out.glob("shard-*.parquet")}
            if any(t.name.removesuffix(".tar") not in indexed for t in out.glob("shard-*.tar")):
                for p in descendants(driver.pid):
                    if cmdline(p).startswith("ray::_run_unit"):
                        kill_by_pid([p])
                        killed.append(p.pid)
                        return
            time.sleep(0.02)

    run2 = subprocess.Popen([*MHOWTO, "dataset", "--profile", str(profile)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**env, STALL_ENV: "3"}, start_new_session=True)
    killer = threading.Thread(target=kill_a_worker_mid_commit, args=(run2,), daemon=True)
    killer.start()
    try:
        stdout, _ = run2.communicate(timeout=400)
    finally:
        killer.join(timeout=1)
        kill_by_pid(descendants(run2.pid))
    assert run2.returncode == 0, stdout[-3000:]
    assert killed, "no Ray worker was killed while writing a shard"
    assert f"{committed_before} already committed" in stdout

    # every good video's clips exactly once; bad videos listed; every shard indexed
    truth = json.loads((faulty_site / "truth.json").read_text())
    keys = [s["__key__"] for tar in sorted(out.glob("shard-*.tar")) for s in wds.WebDataset(str(tar), shardshuffle=False, empty_check=False)]
    assert len(keys) == len(set(keys))
    index_keys = pq.read_table(sorted(out.glob("shard-*.parquet"))).column("key").to_pylist()
    assert sorted(index_keys) == sorted(keys)
    for vid, t in truth.items():
        n = sum(1 for k in keys if k.startswith(f"{vid}_"))
        assert n == (0 if t["corrupt"] else len(t["cues"])), vid
    assert {p.stem for p in out.glob("shard-*.tar")} <= {p.stem for p in out.glob("shard-*.parquet")}
    assert len(list(out.glob("shard-*.stats.json"))) == len(list(out.glob("shard-*.parquet"))) == 7
    assert not (out / ".tmp").exists() and not (out / "_work").exists() and not (out / "_lease.json").exists()
    failed = {v["video_id"]: v["reason"] for p in out.glob("shard-*.stats.json") for v in json.loads(p.read_text())["per_video"]
              if v["status"] != "ok"}
    assert failed == {"ghost": "http_404", "sample-05": "corrupt_video"}


def test_a_killed_driver_takes_its_ray_with_it(small_site, tmp_path):
    """SIGKILL of the driver alone (nothing of it can clean up): the reaper it started
    ends every Ray process it launched, within seconds."""
    site = tmp_path / "site"
    shutil.copytree(small_site, site)
    (site / "faults.json").write_text(json.dumps({"/media/": {"kind": "slow", "seconds": 30}}))
    profile = tmp_path / "slow.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "slow", "output": str(tmp_path / "out"), "videos_per_unit": 2,
        "source": {"kind": "sample_site", "site_dir": str(site)},
        "download": {"allowed_extractors": ["generic", "html5"], "socket_timeout_s": 60},
    }))
    driver = subprocess.Popen([*MHOWTO, "dataset", "--profile", str(profile)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    seen: dict[int, psutil.Process] = {}
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not any(cmdline(p).startswith("ray::_run_unit") for p in seen.values()):
            seen.update({p.pid: p for p in descendants(driver.pid)})
            time.sleep(0.1)
        seen.update({p.pid: p for p in descendants(driver.pid)})
        ray_procs = [p for p in seen.values() if cmdline(p) and "reaper" not in cmdline(p)]
        assert any("raylet" in cmdline(p)[:300] for p in ray_procs) and len(ray_procs) >= 4
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        left = ray_procs
        for _ in range(150):
            left = [p for p in ray_procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            if not left:
                break
            time.sleep(0.1)
        assert not left, f"Ray processes outlived their killed driver: {[p.name() for p in left]}"
    finally:
        driver.kill()
        kill_by_pid(seen.values())


def _start_and_kill_first(profile, marks: tuple[str, ...]) -> tuple[str | None, int, str]:
    """Start ``mhowto dataset``, SIGKILL its first descendant whose command line starts
    with one of ``marks`` the moment it appears; returns (what was killed, the driver's
    exit status, its output)."""
    driver = subprocess.Popen([*MHOWTO, "dataset", "--profile", str(profile)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, start_new_session=True)
    seen: dict[int, psutil.Process] = {}
    killed = None
    try:
        deadline = time.time() + 120
        while killed is None and time.time() < deadline and driver.poll() is None:
            for p in descendants(driver.pid):
                seen[p.pid] = p
                if cmdline(p).startswith(marks):
                    kill_by_pid([p])
                    killed = cmdline(p) or p.name()
                    break
            time.sleep(0.01)
        out, _ = driver.communicate(timeout=240)
    finally:
        driver.kill()
        kill_by_pid(seen.values())
    return killed, driver.returncode, out.decode(errors="replace")


def _start_kill_profile(small_site, tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "startkill", "output": str(tmp_path / "out"), "videos_per_unit": 2,
        "source": {"kind": "sample_site", "site_dir": str(small_site)},
        "download": {"allowed_extractors": ["generic", "html5"]},
        # the start watch's bound is min(120 s, stall_s): a blocked start ends the driver
        # with "Ray did not start" instead of letting it finish
        "concurrency": {"workers": 2, "download": 2, "stall_s": 60},
    }))
    return profile


def _all_units_committed(out) -> bool:
    plan = json.loads((out / "_plan.json").read_text())
    return len(sorted(out.glob("shard-*.parquet"))) == plan["n_units"] > 0


def test_a_worker_killed_while_ray_starts_costs_a_retry_not_the_run(small_site, tmp_path):
    """The run's first Ray worker killed the moment it appears (Ray used to prestart
    workers while the driver registered, and such a kill blocked the driver inside Ray's
    registration until the reaper's start watch ended it): the run finishes by itself,
    exit 0, every unit committed."""
    killed, rc, text = _start_and_kill_first(_start_kill_profile(small_site, tmp_path), ("ray::IDLE", "ray::_run_unit"))
    assert killed is not None, text[-2000:]
    assert rc == 0 and "Ray did not start" not in text, text[-2000:]
    assert _all_units_committed(tmp_path / "out")


def test_a_ray_process_killed_while_ray_starts_is_a_clean_error_and_a_rerun_finishes(small_site, tmp_path):
    """Ray's dashboard agent killed while Ray starts: Ray's start fails; the run says so
    in one line (no traceback), exit 1, and the same command then finishes the run."""
    profile = _start_kill_profile(small_site, tmp_path)
    killed, rc, text = _start_and_kill_first(profile, ("ray::DashboardAgent",))
    assert killed is not None, text[-2000:]
    if rc != 0:  # Ray may also come up without it; if not, it must fail cleanly
        assert rc == 1 and "Traceback" not in text, text[-2000:]
        assert "error: Ray did not start" in text and "rerun the same command" in text, text[-2000:]
        rerun = subprocess.run([*MHOWTO, "dataset", "--profile", str(profile)], capture_output=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr.decode(errors="replace")[-2000:]
    assert _all_units_committed(tmp_path / "out")
