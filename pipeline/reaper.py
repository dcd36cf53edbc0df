"""Fate-sharing for a local Ray instance: when its driver dies, its Ray processes go.

A driver that starts its own Ray (``ray_address: local``) also starts this watcher, in a
session of its own. While the driver lives, the watcher records the processes that
descend from it (Ray's GCS, raylet, agents and workers: the pids it launched). When the
driver is gone (killed with SIGKILL, say, where nothing of it can clean up), the watcher
kills exactly those recorded processes, by pid and start time, and exits. Ray's own
agents otherwise outlive a killed driver for minutes, waiting on a GCS that is gone.

It also watches the driver's start of Ray (``watch_start``): a raylet whose starting
worker was killed can block the driver inside Ray's registration for ever, holding the
interpreter. While the start's marker file exists past its deadline, the watcher says
so on the driver's stderr and ends the driver; the rerun resumes.

    python -m multihowto.pipeline.reaper DRIVER_PID [MARKER DEADLINE_S]
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import psutil

POLL_S = 0.5


def _alive(proc: psutil.Process, created: float) -> bool:
    """Running, the same process (pid not reused), and not a zombie: an exited driver
    waits as a zombie until its parent reads its status, and that parent may be reading
    the driver's output, which this watcher (sharing its stderr) must not hold open."""
    try:
        return proc.is_running() and proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


RERUN = "rerun the same command to finish the missing units"


def start_failed(why: str) -> str:
    """What a failed start of Ray says, wherever it is caught: nothing ran, a rerun resumes."""
    return f"Ray did not start ({why}); no unit was lost: {RERUN}"


def watch(driver_pid: int, poll_s: float = POLL_S, marker: str = "", deadline_s: float = 0.0) -> int:
    """Record the driver's descendants until it dies, then kill them; returns how many.
    While ``marker`` exists for longer than ``deadline_s``, the driver is stuck starting
    Ray: say so and end it."""
    try:
        driver = psutil.Process(driver_pid)
        driver_created = driver.create_time()
    except psutil.Error:
        return 0
    seen: dict[int, float] = {}
    me = os.getpid()  # a child of the driver too: recorded never, killed never
    began = time.monotonic()
    while _alive(driver, driver_created):
        if marker and os.path.exists(marker) and time.monotonic() - began > deadline_s:
            print("error: " + start_failed(f"not within {deadline_s:g} s"), file=sys.stderr, flush=True)
            driver.kill()
            break
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


@contextlib.contextmanager
def watch_start(driver_pid: int, deadline_s: float) -> Iterator[None]:
    """Start the watcher for ``driver_pid`` in its own session (it must outlive a SIGKILL
    of the driver's process group), watching the code inside the block (Ray's start)
    for at most ``deadline_s``; its message goes to the driver's stderr."""
    fd, marker = tempfile.mkstemp(prefix="mhowto-ray-start-")
    os.close(fd)
    subprocess.Popen([sys.executable, "-m", "multihowto.pipeline.reaper", str(driver_pid), marker, str(deadline_s)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    try:
        yield
    finally:
        os.unlink(marker)


if __name__ == "__main__":
    if len(sys.argv) > 3:
        watch(int(sys.argv[1]), marker=sys.argv[2], deadline_s=float(sys.argv[3]))
    else:
        watch(int(sys.argv[1]))
