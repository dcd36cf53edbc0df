"""One guard for every HTTP request yt-dlp makes for a video.

``GuardedYoutubeDL`` is yt-dlp's ``YoutubeDL`` with two changes, both at the one place
its extractors and downloaders (page, API calls, media, HLS/DASH manifests and
fragments, our own subtitle fetches) send a request, ``YoutubeDL.urlopen``:

- its only request handler is yt-dlp's Requests handler with redirects switched off,
  so each redirect hop comes back to ``urlopen`` and is checked *before* it is sent;
- ``RequestGuard.before_request`` checks each URL: scheme http(s), host *and* port on
  the allow-list (schemas/download.py), every address the host resolves to global or
  explicitly allowed; it then calls the cluster's ``gate(host)`` (rate limit) and counts
  the request. A refused request is never sent.

The guard also bounds each video: a wall-clock deadline that a watchdog thread enforces
by shutting down the open sockets (a server trickling a byte a second never trips a
socket timeout), and a byte budget checked against Content-Length before reading and
on every read (a missing or lying length, a compressed body that inflates). The
connections it opens are checked again once connected (the peer address), so a DNS
answer that changes between the check and the connect gains nothing.

One guard and one ``GuardedYoutubeDL`` serve one thread (one video at a time).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import threading
import time
import urllib.parse
import weakref
from collections.abc import Callable

import urllib3
import urllib3.connection
import urllib3.connectionpool
import yt_dlp
from yt_dlp.networking import Request
from yt_dlp.networking._helper import get_redirect_method
from yt_dlp.networking._requests import RequestsRH
from yt_dlp.networking.exceptions import HTTPError
from yt_dlp.utils import sanitize_url

from multihowto.operators.base import StageError
from multihowto.schemas.config import DownloadConfig
from multihowto.schemas.download import parse_host_entry

MAX_REDIRECTS = 10
_REDIRECTS = (301, 302, 303, 307, 308)
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _plain(ip: IpAddress) -> IpAddress:
    """An IPv4-mapped IPv6 address (``::ffff:10.0.0.1``) judged as the IPv4 it maps."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class ByteBudget:
    """At most ``cap`` bytes read through the responses that share this budget."""

    def __init__(self, cap: int, what: str):
        self.cap, self.what, self.used = cap, what, 0

    def expect(self, length: int) -> None:
        if self.used + length > self.cap:
            raise StageError("file_too_large", f"{self.what}: Content-Length {length} is over the cap of {self.cap} bytes")

    def add(self, n: int) -> None:
        self.used += n
        if self.used > self.cap:
            raise StageError("file_too_large", f"{self.what}: more than {self.cap} bytes read")


class RequestGuard:
    """The allow-list, the per-video deadline and byte budget, and the request count."""

    def __init__(self, cfg: DownloadConfig, gate: Callable[[str], None] | None = None, resolve=socket.getaddrinfo):
        self.entries = [parse_host_entry(e) for e in cfg.allowed_hosts]
        self.networks = [ipaddress.ip_network(n, strict=False) for n in cfg.allowed_networks]
        self.explicit_ips = {ipaddress.ip_address(e.host) for e in self.entries if e.ip}
        self.gate = gate
        self.resolve = resolve
        self.proxied = bool(cfg.proxy)  # through a proxy, the proxy resolves and connects
        self._socks: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.expired = threading.Event()
        self.deadline = float("inf")
        self.budget = ByteBudget(cfg.max_filesize, "video")
        self.requests = 0
        self.stop: StageError | None = None  # the first timeout/cap error of this video
        self.refused: list[str] = []

    # -- one video -------------------------------------------------------------------
    def begin(self, deadline_s: float, budget: ByteBudget) -> None:
        self.end()
        self.expired = threading.Event()
        self.deadline = time.monotonic() + deadline_s
        self.budget = budget
        self.requests, self.stop, self.refused = 0, None, []
        self._timer = threading.Timer(deadline_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def end(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        """The watchdog: unblock whatever read or connect is in progress."""
        self.expired.set()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def remaining(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def fail(self, err: StageError) -> StageError:
        """Record the first stopping error of this video (yt-dlp may wrap or swallow what
        we raise inside it; the caller looks here)."""
        if self.stop is None:
            self.stop = err
        return err

    def check_time(self) -> None:
        if self.expired.is_set() or time.monotonic() >= self.deadline:
            raise self.fail(StageError("timeout", "the video's download deadline (download.deadline_s) passed"))

    # -- the allow-list --------------------------------------------------------------
    def ip_allowed(self, ip: IpAddress) -> bool:
        ip = _plain(ip)
        return ip.is_global or ip in self.explicit_ips or any(ip in net for net in self.networks)

    def _refuse(self, url: str, why: str) -> StageError:
        self.refused.append(why)
        return StageError("host_not_allowed", why)

    def check_url(self, url: str) -> str:
        """Raise ``host_not_allowed`` unless ``url`` may be requested; returns its host."""
        try:
            parts = urllib3.util.parse_url(url)
        except urllib3.exceptions.LocationParseError:
            raise self._refuse(url, "unparseable URL") from None
        scheme = (parts.scheme or "").lower()
        if scheme not in ("http", "https"):
            raise self._refuse(url, f"scheme {scheme or '(none)'!r} is not http(s)")
        host = (parts.host or "").lower().strip("[]").rstrip(".")
        if not host:
            raise self._refuse(url, "URL without a host")
        port = parts.port or (443 if scheme == "https" else 80)
        try:
            literal: IpAddress | None = ipaddress.ip_address(host)
            host = literal.compressed
        except ValueError:
            literal = None
        if self.entries and not any(e.matches(host, port) for e in self.entries):
            raise self._refuse(url, f"{host}:{port} is not in download.allowed_hosts")
        if literal is not None:
            addresses = [literal]
        elif self.proxied:
            addresses = []
        else:
            try:
                addresses = {ipaddress.ip_address(a[4][0].split("%")[0]) for a in self.resolve(host, port, type=socket.SOCK_STREAM)}
            except (OSError, UnicodeError):
                addresses = []  # the request fails to connect the same way; nothing is sent
        for ip in addresses:
            if not self.ip_allowed(ip):
                raise self._refuse(url, f"{host}:{port} resolves to {ip}, not a global address (download.allowed_networks)")
        return host

    def before_request(self, url: str) -> None:
        self.check_time()
        host = self.check_url(url)
        if self.gate is not None:
            self.gate(host)
        self.requests += 1

    # -- connections and responses ---------------------------------------------------
    def connected(self, conn) -> None:
        """A new connection: watched by the deadline; its peer checked unless proxied."""
        with self._lock:
            # the socket itself: http.client drops conn.sock once a response that closes
            # the connection has begun, while the response still reads from it
            self._socks.add(conn.sock)
        if self.expired.is_set():
            self._expire()
        if getattr(conn, "proxy", None) is not None or self.proxied:
            return
        peer = ipaddress.ip_address(conn.sock.getpeername()[0].split("%")[0])
        if not self.ip_allowed(peer) and peer.compressed != (conn.host or "").strip("[]"):
            conn.sock.close()
            raise self.fail(StageError("host_not_allowed", f"{conn.host} connected to {peer}, not a global address"))

    def guard_response(self, res, budget: ByteBudget):
        """Check the declared length, then wrap ``res.read`` to keep to the deadline and
        the budget; returns ``res`` (same object, so yt-dlp sees its own type)."""
        length = res.headers.get("Content-Length")
        encoded = res.headers.get("Content-Encoding")
        if length and length.isdigit() and not encoded:
            try:
                budget.expect(int(length))
            except StageError as e:
                res.close()
                raise self.fail(e) from None
        raw_read = res.read

        def read(amt: int | None = None) -> bytes:
            if amt is None or amt < 0:  # read all, but in pieces, so the cap holds early
                chunks = []
                while chunk := read(1 << 16):
                    chunks.append(chunk)
                return b"".join(chunks)
            self.check_time()
            data = raw_read(amt)
            self.check_time()  # a read the watchdog cut short
            try:
                budget.add(len(data))
            except StageError as e:
                res.close()
                raise self.fail(e) from None
            return data

        res.read = read
        return res


def _watched_pool_classes(guard: RequestGuard) -> dict:
    """urllib3 pool classes whose connections report to ``guard`` once connected."""

    class Conn(urllib3.connection.HTTPConnection):
        def connect(self):
            super().connect()
            guard.connected(self)

    class TlsConn(urllib3.connection.HTTPSConnection):
        def connect(self):
            super().connect()
            guard.connected(self)

    class Pool(urllib3.connectionpool.HTTPConnectionPool):
        ConnectionCls = Conn

    class TlsPool(urllib3.connectionpool.HTTPSConnectionPool):
        ConnectionCls = TlsConn

    return {"http": Pool, "https": TlsPool}


def _watching_proxies(make_manager, classes: dict):
    """An HTTP(S) proxy's pool manager with watched connections too (a SOCKS proxy's
    connections are yt-dlp's own class: the deadline reaches them between reads only)."""

    def proxy_manager_for(proxy, **kwargs):
        manager = make_manager(proxy, **kwargs)
        if not proxy.lower().startswith("socks"):
            manager.pool_classes_by_scheme = classes
        return manager

    return proxy_manager_for


class GuardedRequestsRH(RequestsRH):
    """yt-dlp's Requests handler, not following redirects (they return to ``urlopen``),
    with connections watched by the guard set on it after construction."""

    guard: RequestGuard | None = None

    def _create_instance(self, *args, **kwargs):
        session = super()._create_instance(*args, **kwargs)
        # requests follows a redirect only when this names a target: never, so the 3xx
        # response comes back as yt-dlp's HTTPError and GuardedYoutubeDL decides.
        session.get_redirect_target = lambda response: None
        if self.guard is not None:
            classes = _watched_pool_classes(self.guard)
            for adapter in session.adapters.values():
                adapter.poolmanager.pool_classes_by_scheme = classes
                adapter.proxy_manager_for = _watching_proxies(adapter.proxy_manager_for, classes)
        return session


class GuardedYoutubeDL(yt_dlp.YoutubeDL):
    """``YoutubeDL`` whose every request passes ``guard``; see the module doc."""

    def __init__(self, params: dict, guard: RequestGuard):
        self.guard = guard
        self.track_budget: ByteBudget | None = None  # set while a subtitle track is fetched
        super().__init__(params)

    @functools.cached_property
    def _request_director(self):
        director = self.build_request_director([GuardedRequestsRH])
        for handler in director.handlers.values():
            handler.guard = self.guard
        return director

    def urlopen(self, req):
        if isinstance(req, str):
            req = Request(req)
        budget = self.track_budget or self.guard.budget
        for _ in range(MAX_REDIRECTS + 1):
            req.url = sanitize_url(req.url)  # as YoutubeDL.urlopen does: check what is sent
            self.guard.before_request(req.url)
            try:
                res = super().urlopen(req)
            except HTTPError as e:
                location = e.response.headers.get("Location") if e.status in _REDIRECTS else None
                if not location:
                    self.guard.guard_response(e.response, budget)  # an error body is bounded too
                    raise
                e.response.close()
                req = self._redirected(req, e.status, location)
                continue
            self.guard.check_time()
            return self.guard.guard_response(res, budget)
        raise StageError("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")

    def _forceprint(self, key, info_dict):
        """yt-dlp renders the formats, thumbnails and subtitles tables and the file name
        for every ``--print`` hook point, nine times a video, before it looks whether
        anything is to be printed (measured: ~15% of a loopback download's CPU). We
        print nothing, so nothing is rendered; with a print template set, yt-dlp's own."""
        p = self.params
        if p["forceprint"].get(key) or p["print_to_file"].get(key) or any(
                v for k, v in p.items() if k.startswith("force") and k != "forceprint"):
            return super()._forceprint(key, info_dict)
        return None if info_dict is None else dict(info_dict)

    @staticmethod
    def _redirected(req: Request, status: int, location: str) -> Request:
        new = req.copy()
        new.url = urllib.parse.urljoin(req.url, location)
        method = get_redirect_method(req.method, status)
        if method != req.method:
            new.data = None
            new.method = method
            for name in ("Content-Type", "Content-Length"):
                new.headers.pop(name, None)
        old_host = urllib.parse.urlsplit(req.url).hostname
        if urllib.parse.urlsplit(new.url).hostname != old_host:
            for name in ("Authorization", "Cookie"):  # never carried to another host
                new.headers.pop(name, None)
        return new
