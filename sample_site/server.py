"""Serve a built sample site on 127.0.0.1 for the length of a run.

The standard library's threading HTTP server does the serving; this module only adds
fault injection: ``faults.json`` in the site root maps a path prefix to a fault, so a
test can make one video answer 429 or 500, stall, send a truncated body or hang up with
no answer (as a server dropping a kept-alive connection does); and the
hostile servers the downloader must survive: a redirect elsewhere, a body trickled a
byte at a time, a body with no length, a length that lies, a gzip bomb. A request log
(``serve(..., log=[])``) records every request the server saw.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FAULTS = ("429", "500", "<any status code>", "slow", "truncate", "hangup", "redirect", "trickle", "nolength", "length",
          "gzip_bomb")


class _SiteHandler(SimpleHTTPRequestHandler):
    # HTTP/1.1 keeps connections open between requests, as real web servers do (a
    # client reuses one for a video's page, media and tracks); without Nagle, so a
    # response's header and body do not wait on a delayed ACK; a kept connection that
    # stays idle for a minute is closed (one thread each)
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 60
    faults: dict[str, dict] = {}
    hits: dict[str, int] = {}
    log: list[tuple[str, str]] | None = None
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

    def do_HEAD(self) -> None:
        if self.log is not None:
            with self.lock:
                self.log.append((self.command, self.path))
        return super().do_HEAD()

    def do_GET(self) -> None:
        if self.log is not None:
            with self.lock:
                self.log.append((self.command, self.path))
        fault = self._fault()
        if fault is None:
            return super().do_GET()
        kind = fault["kind"]
        if kind.isdigit():
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
        if kind == "hangup":  # the request read, the connection closed with no answer
            self.close_connection = True
            return None
        if kind == "redirect":
            self.send_response(int(fault.get("code", 302)))
            self.send_header("Location", fault["to"])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        if kind in ("trickle", "nolength", "length", "gzip_bomb"):
            return self._hostile_body(kind, fault)
        raise ValueError(f"unknown fault {kind!r}; known: {FAULTS}")

    def _hostile_body(self, kind: str, fault: dict) -> None:
        """``trickle``: ``bytes`` bytes, one per ``interval`` s; ``nolength``: ``bytes``
        bytes with no Content-Length; ``length``: ``bytes`` bytes under a declared
        Content-Length ``declared``; ``gzip_bomb``: ``bytes`` zeros gzip-compressed, the
        (small) compressed size declared."""
        size = int(fault.get("bytes", 1 << 20))
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", fault.get("content_type", "video/mp4"))
        if kind == "gzip_bomb":
            body = gzip.compress(bytes(size), compresslevel=9)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
        elif kind == "length":
            self.send_header("Content-Length", str(int(fault["declared"])))
        elif kind == "trickle":
            self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            if kind == "gzip_bomb":
                self.wfile.write(body)
            elif kind == "trickle":
                for _ in range(size):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(float(fault.get("interval", 1.0)))
            else:
                chunk = bytes(1 << 16)
                for start in range(0, size, len(chunk)):
                    self.wfile.write(chunk[: min(len(chunk), size - start)])
        except OSError:  # the client hung up: what a guarded client does
            pass


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default listen backlog of 5 resets connections under load
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """A client that hung up (a timeout, a deadline, a killed worker) is the client's
        business, not a traceback on the run's console; anything else is printed."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(site_dir: Path, port: int = 0, faults: dict | None = None,
          log: list[tuple[str, str]] | None = None) -> Iterator[str]:
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
    handler = type("SiteHandler", (_SiteHandler,), {"faults": faults, "hits": {}, "log": log})
    server = _Server(("127.0.0.1", port), functools.partial(handler, directory=str(site_dir)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="sample-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
