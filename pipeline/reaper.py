"""Fate-sharing for a local Ray instance: when its driver dies, its Ray processes go.

A driver that starts its own Ray (``ray_address: local``) also starts this watcher, in a
session of its own. While the driver lives, the watcher records the processes that
descend from it (Ray's GCS, raylet, agents and workers: the pids it launched). When the
driver is gone (killed with SIGKILL, say, where nothing of it can clean up), the watcher
kills exactly those recorded processes, by pid and start time, and exits. Ray's own
agents otherwise outlive a killed driver for minutes, waiting on a GCS that is gone.

    python -m multihowto.pipeline.reaper DRIVER_PID
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

POLL_S = 0.5


def _alive(proc: psutil.Process, created: float) -> bool:
    try:
        return proc.is_running() and proc.create_time() == created
    except psutil.Error:
        return False


def watch(driver_pid: int, poll_s: float = POLL_S) -> int:
    """Record the driver's descendants until it dies, then kill them; returns how many."""
    try:
        driver = psutil.Process(driver_pid)
        driver_created = driver.create_time()
    except psutil.Error:
        return 0
    seen: dict[int, float] = {}
    me = os.getpid()  # a child of the driver too: recorded never, killed never
    while _alive(driver, driver_created):
        try:
            for child in driver.children(recursive=True):
                try:
                    if child.pid != me:
                        seen.setdefault(child.pid, child.create_time())
                except psutil.Error:
                    pass
        except psutil.Error:
            break
        time.sleep(poll_s)
    killed = 0
    for pid, created in seen.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created:
                proc.kill()
                killed += 1
        except psutil.Error:
            pass
    return killed


def start(driver_pid: int) -> subprocess.Popen:
    """Start the watcher for ``driver_pid`` in its own session (it must outlive a
    SIGKILL of the driver's process group)."""
    return subprocess.Popen([sys.executable, "-m", "multihowto.pipeline.reaper", str(driver_pid)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


if __name__ == "__main__":
    watch(int(sys.argv[1]))
