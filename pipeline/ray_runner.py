"""The one module that talks to Ray.

The work unit is the unit of distribution: each Ray task takes one unit
(:class:`~multihowto.schemas.item.UnitTask`: a row range of the plan), runs it with a
:class:`~multihowto.pipeline.unit.UnitRunner` kept for the life of its worker process,
writes the shard where it runs, and returns a few hundred bytes of counts. The driver
only dispatches tasks, at most ``concurrency.workers`` in flight, and hands each result
to a callback. A worker that dies mid-unit has its task retried by Ray; the retry
removes the partial files and redoes the unit. The run's host rate limit lives in one
actor that every download thread of every worker asks for a reservation.

Ray's own log lines go to its session's log files, never to the console.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import time
import types
from collections.abc import Callable, Iterable

from multihowto.pipeline import reaper
from multihowto.pipeline.ratelimit import HostRateLimiter
from multihowto.pipeline.unit import UnitRunner
from multihowto.schemas.config import RegionConfig
from multihowto.schemas.item import UnitTask

_RUNNERS: dict[str, UnitRunner] = {}  # in a worker process: run id -> its runner


class RayUnavailable(RuntimeError):
    """``ray_address`` does not lead to a Ray cluster."""


class RayStartFailed(RuntimeError):
    """A local Ray instance failed to start (one of its processes died while it started,
    say): nothing was run, and a rerun starts a new one."""


def _probe_gcs(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast when ``host:port`` is not a Ray head: Ray's GCS speaks gRPC, which
    answers an HTTP/2 preface with a SETTINGS frame; anything else (an HTTP server, a
    closed port) is refused here instead of being retried by Ray for minutes."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s) as s:
            s.settimeout(timeout_s)
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            head = s.recv(9)
    except (OSError, ValueError) as e:
        raise RayUnavailable(f"ray_address: cannot reach {address!r}: {e}") from None
    if len(head) < 9 or head[3] != 0x04:
        raise RayUnavailable(f"ray_address: {address!r} answers, but not as a Ray cluster (no gRPC server there)")


# Ray starts workers for the first driver while that driver registers; a worker of
# those killed (OOM killer, a kill by hand, the soak) leaves the driver blocked inside
# Ray's C++ registration for ever (reproduced every time: tests/pipeline/test_kill_resume.py).
# Without the prestart, workers start only for tasks, after registration, and a worker
# killed then is a task retried.
SYSTEM_CONFIG = types.MappingProxyType({"prestart_worker_first_driver": False})  # read-only


def init_ray(address: str, timeout_s: float = 120.0) -> None:
    """Start (``local``) or join Ray, quietly. A local start does not prestart workers
    (see ``SYSTEM_CONFIG``), and cannot hang the run whatever else goes wrong: the
    driver can block inside Ray's C++ registration (holding the interpreter, so no
    thread of ours could act), so the reaper watches the start from its own process and,
    past ``timeout_s``, says so and ends the driver; the rerun takes its lease over at
    once and resumes. A cluster's head takes the same setting from ``ray start
    --system-config`` (deploy/cluster/)."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    quiet = {
        "logging_level": logging.ERROR,
        "log_to_driver": False,
        "include_dashboard": False,
        "runtime_env": {"env_vars": {"PYTHONWARNINGS": "ignore"}},
    }
    if address in ("", "local"):
        # this instance dies with its driver, even a SIGKILLed one; and its start is watched
        with reaper.watch_start(os.getpid(), timeout_s):
            try:
                ray.init(address="local", num_cpus=os.cpu_count(), _system_config=dict(SYSTEM_CONFIG), **quiet)  # a new instance
                # (a copy: Ray writes its session's spilling folder into the dict it gets)
            except Exception as e:  # Ray says why in one line; what it started, the reaper ends
                ray.shutdown()
                reason = " ".join(str(e).split())[:300] or type(e).__name__
                raise RayStartFailed(reaper.start_failed(reason)) from None
        return
    if address != "auto" and ":" in address and "://" not in address:
        _probe_gcs(address)
    ray.init(address=address, **quiet)


def cluster_cpus() -> int:
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def _run_unit(cfg: RegionConfig, run_id: str, scratch_root: str, limiter_name: str, rebase, task: UnitTask) -> dict:
    import ray

    runner = _RUNNERS.get(run_id)
    if runner is None:
        gate = None
        if limiter_name:
            limiter = ray.get_actor(limiter_name)

            def gate(host: str) -> None:
                wait = ray.get(limiter.reserve_at.remote(host)) - time.time()
                if wait > 0:
                    time.sleep(wait)

        _RUNNERS.clear()  # one run's runner per process: an earlier run's is dropped
        runner = _RUNNERS[run_id] = UnitRunner(cfg, scratch_root, gate, rebase,
                                                 ray.get_runtime_context().get_node_id())
    return runner.run(task)


def run_units(cfg: RegionConfig, tasks: Iterable[UnitTask], run_id: str, scratch_root: str,
              on_result: Callable[[UnitTask, dict | None, str], None], rebase: tuple[str, str] | None = None) -> dict:
    """Run ``tasks`` on Ray; ``on_result(task, result, error)`` gets each unit's counts
    (or, for a unit whose task failed, None and the error). ``rebase``: (planned
    origin, live origin) for a source served anew each run. Returns what the driver
    received: ``{"results": n, "bytes": n}`` (pickled result sizes)."""
    import ray

    init_ray(cfg.ray_address, timeout_s=min(120.0, cfg.concurrency.stall_s))
    workers = cfg.concurrency.workers or cluster_cpus()
    limiter_name = ""
    if cfg.download.host_rate_per_s > 0:
        limiter_name = f"mhowto-rate-{run_id}"
        actor = ray.remote(num_cpus=0)(HostRateLimiter).options(name=limiter_name)
        # on the wall clock: the workers wait until the booked time, and the nodes of a
        # cluster share that clock (NTP), not a monotonic one
        limiter = actor.remote(cfg.download.host_rate_per_s, cfg.download.host_burst, time.time)
        ray.get(limiter.reserve.remote(""))  # started before any worker asks for it
    remote = ray.remote(num_cpus=1, max_retries=3)(_run_unit)
    cfg_ref = ray.put(cfg)
    todo = iter(tasks)
    running: dict = {}
    received = {"results": 0, "bytes": 0}

    def submit() -> None:
        while len(running) < workers:
            task = next(todo, None)
            if task is None:
                return
            running[remote.remote(cfg_ref, run_id, scratch_root, limiter_name, rebase, task)] = task

    submit()
    last_progress = time.monotonic()
    while running:
        ready, _ = ray.wait(list(running), num_returns=1, timeout=min(30.0, cfg.concurrency.stall_s))
        if not ready:
            if time.monotonic() - last_progress < cfg.concurrency.stall_s:
                continue
            # No unit finished for stall_s: a Ray that stopped scheduling (a worker killed
            # while it started can leave a raylet that starts no other) must not hang the
            # run for ever. The units in flight are cancelled and recorded as not
            # committed; the run ends with an error, and a rerun resumes them.
            for ref, task in list(running.items()):
                ray.cancel(ref, force=True)
                on_result(task, None, f"stalled: no unit finished in {cfg.concurrency.stall_s:g} s (concurrency.stall_s)")
            running.clear()
            break
        last_progress = time.monotonic()
        for ref in ready:
            task = running.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as e:  # the unit is not committed; a rerun resumes it
                on_result(task, None, f"{type(e).__name__}: {str(e).splitlines()[-1] if str(e) else ''}"[:300])
                continue
            received["results"] += 1
            received["bytes"] += len(pickle.dumps(result))
            on_result(task, result, "")
        submit()
    return received


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
