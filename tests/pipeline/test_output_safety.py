"""One run at a time per output, and never a user's own files touched (issue #14.2-3),
and an empty manifest is a clean no-op (#14.10)."""

import json
import os
import subprocess
import sys
import time

import pytest

from multihowto.pipeline.lease import OutputBusy, OutputLease
from multihowto.pipeline.run import OutputNotOurs, check_output, run_dataset
from multihowto.pipeline.storage import LocalStorage, S3Storage
from multihowto.schemas.config import RegionConfig, SourceConfig
from multihowto.schemas.index import LEASE_FILE


def test_a_second_run_on_a_held_output_is_refused_by_name(tmp_path):
    storage = LocalStorage(tmp_path / "out")
    with OutputLease(storage) as first:
        with pytest.raises(OutputBusy, match=f"in use by run {first.run_id}"):
            OutputLease(storage).acquire()
    OutputLease(storage).acquire()  # released: free again


def test_a_stale_lease_is_taken_over_and_its_holder_stops(tmp_path):
    storage = LocalStorage(tmp_path / "out")
    now = [1000.0]
    dead = OutputLease(storage, clock=lambda: now[0])
    storage.put_bytes(json.dumps({"run_id": "gone", "host": "another-host", "pid": 1, "heartbeat": 1000.0}).encode(), LEASE_FILE)
    now[0] += 30
    with pytest.raises(OutputBusy):  # 30 s without a heartbeat, on another host: maybe alive
        dead.acquire()
    now[0] += 60
    taker = OutputLease(storage, clock=lambda: now[0], heartbeat_s=0.05)
    taker.acquire()  # 90 s: stale, taken over
    assert json.loads(storage.get_bytes(LEASE_FILE))["run_id"] == taker.run_id
    storage.put_bytes(json.dumps({"run_id": "thief", "host": "h", "pid": 1, "heartbeat": now[0]}).encode(), LEASE_FILE)
    assert taker.lost.wait(5)  # the heartbeat sees the lease is no longer its own
    taker.release()
    assert json.loads(storage.get_bytes(LEASE_FILE))["run_id"] == "thief"  # not deleted: not ours


def test_taking_over_a_dead_runs_lease_removes_its_scratch_and_nothing_else(tmp_path):
    from multihowto.pipeline.run import scratch_root

    storage = LocalStorage(tmp_path / "out")
    for run_id, expect in (("0123456789ab", "0123456789ab"), ("../../etc", "")):
        storage.put_bytes(json.dumps({"run_id": run_id, "host": "elsewhere", "pid": 1, "heartbeat": 0}).encode(), LEASE_FILE)
        lease = OutputLease(storage)
        lease.acquire()
        assert lease.taken_from == expect  # a run id that is not ours names no folder
        lease.release()
    assert scratch_root("0123456789ab").endswith("mhowto-scratch/0123456789ab")


def test_the_lease_of_a_dead_process_on_this_host_is_taken_at_once(tmp_path):
    storage = LocalStorage(tmp_path / "out")
    child = subprocess.run([sys.executable, "-c", (
        "from multihowto.pipeline.lease import OutputLease; from multihowto.pipeline.storage import LocalStorage;"
        f"OutputLease(LocalStorage({str(tmp_path / 'out')!r})).acquire()")], check=True)
    assert child.returncode == 0 and storage.exists(LEASE_FILE)  # left behind by a process now gone
    OutputLease(storage).acquire()


def test_the_lease_is_a_conditional_put_on_s3(s3):
    storage = S3Storage("s3://mhowto/lease-test", s3)
    with OutputLease(storage) as first:
        with pytest.raises(OutputBusy, match=first.run_id):
            OutputLease(storage).acquire()
    assert not storage.exists(LEASE_FILE)


def test_a_folder_of_the_users_files_is_refused_and_left_as_it_was(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "shard-000000.tar").write_bytes(b"the user's own file")
    (out / "notes.txt").write_text("keep me")
    manifest = tmp_path / "m.txt"
    manifest.write_text("https://www.youtube.com/watch?v=nVbIUDjzWY4\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(OutputNotOurs, match="not empty and holds no _plan.json"):
        run_dataset(RegionConfig(output=str(out), source=SourceConfig(kind="manifest", manifest=str(manifest))),
                    log=lambda *_: None)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    check_output(LocalStorage(tmp_path / "empty"))  # an empty (or new) folder is fine


def test_two_runs_at_once_one_is_refused_and_nothing_is_lost(small_site, tmp_path):
    """Two `mhowto dataset` processes on one output: the second is refused by name while
    the first holds the output, and the first's dataset is complete."""
    import yaml

    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({
        "name": "twice", "output": str(tmp_path / "out"), "videos_per_unit": 2,
        "source": {"kind": "sample_site", "site_dir": str(small_site)},
        "download": {"allowed_extractors": ["generic", "html5"]},
    }))
    cmd = [sys.executable, "-m", "multihowto.pipeline.cli", "dataset", "--profile", str(profile)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.time() + 60
        while not (tmp_path / "out" / LEASE_FILE).exists() and time.time() < deadline:
            time.sleep(0.05)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2 and "is in use by run" in second.stderr, second.stderr
        out, _ = first.communicate(timeout=400)
    finally:
        first.kill()
    assert first.returncode == 0, out[-2000:]
    assert "videos: 6 planned, 5 ok, 1 failed" in out


def test_an_empty_manifest_is_a_clean_no_op(tmp_path):
    manifest = tmp_path / "empty.csv"
    manifest.write_text("video_id,url\n")
    messages = []
    summary = run_dataset(RegionConfig(output=str(tmp_path / "out"), source=SourceConfig(kind="manifest", manifest=str(manifest))),
                          log=messages.append)
    assert summary.units_total == 0 and summary.units_failed == {}
    assert any("nothing to do" in m for m in messages)
    assert not (tmp_path / "out" / LEASE_FILE).exists()
    assert os.path.exists(tmp_path / "out" / "_plan.json")


def test_a_lease_left_alone_by_a_killed_run_does_not_make_the_output_foreign(tmp_path):
    """Killed after taking the lease, before its plan: the folder holds only our lease
    (and maybe its temporary), and the rerun takes it over instead of refusing it."""
    out = tmp_path / "out"
    out.mkdir()
    (out / LEASE_FILE).write_text(json.dumps({"run_id": "x", "host": "elsewhere", "pid": 1, "heartbeat": 0}))
    (out / f".{LEASE_FILE}.abc123.part").write_text("{")
    check_output(LocalStorage(out))
    (out / "mine.txt").write_text("a user's file")
    with pytest.raises(OutputNotOurs, match="mine.txt"):
        check_output(LocalStorage(out))


def test_a_unit_that_never_finishes_ends_the_run_instead_of_hanging_it(small_site, tmp_path):
    """concurrency.stall_s bounds a run in which no unit finishes (a wedged scheduler, a
    source that never answers): its units are cancelled and reported as not committed."""
    import dataclasses
    import shutil

    from multihowto.schemas.config import ConcurrencyConfig, DownloadConfig
    from tests.conftest import with_site

    site = tmp_path / "site"
    shutil.copytree(small_site, site)
    (site / "faults.json").write_text(json.dumps({"/media/": {"kind": "slow", "seconds": 120}}))
    cfg = with_site(RegionConfig(output=str(tmp_path / "out"), videos_per_unit=3), site)
    cfg = dataclasses.replace(cfg, concurrency=ConcurrencyConfig(workers=2, download=1, stall_s=10),
                              download=DownloadConfig(allowed_extractors=("generic", "html5"), socket_timeout_s=300, deadline_s=600))
    summary = run_dataset(cfg, log=lambda *_: None)
    assert summary.units_committed == 0 and sorted(summary.units_failed) == [0, 1]
    assert all(e.startswith("stalled: no unit finished in 10 s") for e in summary.units_failed.values())
    assert not list((tmp_path / "out").glob("shard-*.parquet"))
