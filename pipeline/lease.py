"""One run at a time per output: an exclusive lease with an owner and a heartbeat.

``_lease.json`` is created only if absent (a local exclusive create; an S3 conditional
put), holding the run id, host, pid and the time of its last heartbeat. The holder
refreshes the heartbeat from a thread; a second run finds a fresh lease and is refused
with who holds it. A lease whose heartbeat is older than ``stale_s`` belongs to a run
that died: the next run removes it and takes the output over, and so does one whose
holder ran on this machine and whose process is gone (a SIGKILLed driver). The holder
checks at each heartbeat that the lease is still its own, and the run stops if it is not.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid

import psutil

from multihowto.schemas.index import LEASE_FILE


def _started(pid: int) -> float:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return 0.0


def _dead_here(held: dict) -> bool:
    """The lease's holder ran on this machine and its process is gone: no need to wait
    for its heartbeat to go stale."""
    if held.get("host") != socket.gethostname() or not isinstance(held.get("pid"), int):
        return False
    return _started(held["pid"]) != held.get("pid_started")


class OutputBusy(RuntimeError):
    """Another live run holds the output."""


class OutputLease:
    def __init__(self, storage, heartbeat_s: float = 10.0, stale_s: float = 60.0, clock=time.time):
        self.storage = storage
        self.heartbeat_s, self.stale_s, self.clock = heartbeat_s, stale_s, clock
        self.run_id = uuid.uuid4().hex[:12]
        self.lost = threading.Event()
        self.taken_from = ""  # the run id of a dead run whose lease this one took over
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> bytes:
        now = self.clock()
        return json.dumps({"run_id": self.run_id, "host": socket.gethostname(), "pid": os.getpid(),
                           "pid_started": _started(os.getpid()), "heartbeat": now}).encode()

    def holder(self) -> dict | None:
        try:
            return json.loads(self.storage.get_bytes(LEASE_FILE))
        except FileNotFoundError:
            return None
        except Exception:  # unreadable or half-written by a dead run: treated as stale
            return {}

    def acquire(self) -> None:
        for _ in range(3):
            if self.storage.put_if_absent(LEASE_FILE, self._record()):
                self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)
                self._thread.start()
                return
            held = self.holder()
            if held is None:
                continue  # released between our two calls
            age = self.clock() - float(held.get("heartbeat", 0) or 0)
            if age < self.stale_s and not _dead_here(held):
                raise OutputBusy(
                    f"{self.storage.uri} is in use by run {held.get('run_id')} (host {held.get('host')}, pid "
                    f"{held.get('pid')}; last heartbeat {age:.0f}s ago). Wait for it to finish, or use another output; "
                    f"a lease older than {self.stale_s:.0f}s is taken over."
                )
            self.storage.delete(LEASE_FILE)  # a dead run's lease
            run_id = str(held.get("run_id") or "")
            self.taken_from = run_id if re.fullmatch(r"[0-9a-f]{12}", run_id) else ""  # it names a folder: ours only
        raise OutputBusy(f"{self.storage.uri}: could not take the output's lease")

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            held = self.holder()
            if not held or held.get("run_id") != self.run_id:
                self.lost.set()
                return
            self.storage.put_bytes(self._record(), LEASE_FILE)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        held = self.holder()
        if held and held.get("run_id") == self.run_id:
            self.storage.delete(LEASE_FILE)

    def __enter__(self) -> OutputLease:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
