"""The Ray module's guards, and the run-wide host rate limit it hosts."""

import http.server
import threading

import pytest

from multihowto.pipeline.ratelimit import PACING_MARGIN, HostRateLimiter
from multihowto.pipeline.ray_runner import RayUnavailable, _probe_gcs


def test_an_http_port_given_as_ray_address_is_refused_by_name():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(RayUnavailable, match="ray_address: .* not as a Ray cluster"):
            _probe_gcs(f"127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


def test_a_closed_port_given_as_ray_address_is_refused_by_name():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RayUnavailable, match="ray_address: cannot reach"):
        _probe_gcs(f"127.0.0.1:{port}")


def test_reservations_hold_the_rate_over_any_window():
    now = [0.0]
    limiter = HostRateLimiter(rate=5.0, burst=2, clock=lambda: now[0])
    sent = []
    for _ in range(40):  # 40 callers asking at once
        sent.append(now[0] + limiter.reserve("a"))
    assert sent[:2] == [0.0, 0.0]  # the burst
    gap = 1 / (5.0 * PACING_MARGIN)  # then 5 per second, a little under
    assert all(abs((b - a) - gap) < 1e-9 for a, b in zip(sent[1:], sent[2:], strict=False))
    for start in range(0, 8):
        assert sum(start <= t < start + 1 for t in sent) <= 2 + 5
    assert limiter.reserve("b") == 0.0  # hosts are apart
    assert HostRateLimiter(0, 1).reserve("a") == 0.0  # no limit


def test_reserve_at_books_the_same_slots_as_times_on_the_clock():
    now = [100.0]
    at = HostRateLimiter(rate=5.0, burst=2, clock=lambda: now[0])
    wait = HostRateLimiter(rate=5.0, burst=2, clock=lambda: now[0])
    for step in (0.0, 0.0, 0.0, 0.05, 0.0, 1.0, 0.3):  # callers asking at various times
        now[0] += step
        assert at.reserve_at("a") == pytest.approx(now[0] + wait.reserve("a"))
    assert HostRateLimiter(0, 1, clock=lambda: now[0]).reserve_at("a") == now[0]  # no limit: now
