"""Serve a built sample site on 127.0.0.1 for the length of a run.

The standard library's threading HTTP server does the serving; this module only adds
fault injection: ``faults.json`` in the site root maps a path prefix to a fault, so a
test can make one video answer 429 or 500, stall, or send a truncated body.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FAULTS = ("429", "500", "slow", "truncate")


class _SiteHandler(SimpleHTTPRequestHandler):
    faults: dict[str, dict] = {}
    hits: dict[str, int] = {}
    lock = threading.Lock()

    def log_message(self, format: str, *args) -> None:  # quiet: the pipeline logs
        pass

    def _fault(self) -> dict | None:
        for prefix, fault in self.faults.items():
            if self.path.startswith(prefix):
                with self.lock:
                    self.hits[prefix] = self.hits.get(prefix, 0) + 1
                    count = self.hits[prefix]
                # "times": answer with the fault this many times, then serve normally.
                if count <= fault.get("times", 10**9):
                    return fault
        return None

    def do_GET(self) -> None:
        fault = self._fault()
        if fault is None:
            return super().do_GET()
        kind = fault["kind"]
        if kind in ("429", "500"):
            self.send_response(int(kind))
            if kind == "429":
                self.send_header("Retry-After", str(fault.get("retry_after", 1)))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if kind == "slow":
            time.sleep(float(fault.get("seconds", 5)))
            return super().do_GET()
        if kind == "truncate":
            path = Path(self.translate_path(self.path))
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", self.guess_type(str(path)))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return None
        raise ValueError(f"unknown fault {kind!r}; known: {FAULTS}")


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default listen backlog of 5 resets connections under load
    daemon_threads = True


@contextlib.contextmanager
def serve(site_dir: Path, port: int = 0, faults: dict | None = None) -> Iterator[str]:
    """Serve ``site_dir`` on 127.0.0.1 (a free port by default); yields the base URL.

    ``faults`` (else ``faults.json`` in the site) maps a path prefix to
    ``{"kind": "429"|"500"|"slow"|"truncate", "times": N, ...}``: the first N requests
    for it get the fault, later ones are served normally (no ``times``: always)."""
    site_dir = Path(site_dir).resolve()
    if not (site_dir / "manifest.csv").exists():
        raise FileNotFoundError(f"{site_dir} is not a built sample site (no manifest.csv)")
    faults_file = site_dir / "faults.json"
    if faults is None:
        faults = json.loads(faults_file.read_text()) if faults_file.exists() else {}
    handler = type("SiteHandler", (_SiteHandler,), {"faults": faults, "hits": {}})
    server = _Server(("127.0.0.1", port), functools.partial(handler, directory=str(site_dir)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="sample-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
