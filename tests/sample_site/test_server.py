"""The sample site's server: keep-alive like a real web server, and quiet when a client
hangs up on it."""

import http.client
import socket
import struct
import time

from multihowto.sample_site.server import serve


def test_one_connection_serves_many_requests(small_site):
    log: list = []
    with serve(small_site, log=log) as base:
        port = int(base.rstrip("/").rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        bodies = []
        sock = None
        for path in ("/v/sample-00.html", "/subs/sample-00.en.vtt", "/media/sample-00.mp4", "/v/sample-01.html"):
            conn.request("GET", path)
            res = conn.getresponse()
            bodies.append((res.status, len(res.read())))
            assert not res.will_close  # HTTP/1.1: the connection stays open
            assert sock is None or conn.sock is sock  # and is the same one
            sock = conn.sock
        conn.close()
    assert [s for s, _ in bodies] == [200] * 4 and all(n > 0 for _, n in bodies)
    assert len(log) == 4


def test_a_client_that_hangs_up_leaves_no_traceback(small_site, capfd):
    with serve(small_site, faults={"/media/": {"kind": "slow", "seconds": 0.3}}) as base:
        port = int(base.rstrip("/").rsplit(":", 1)[1])
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /media/sample-00.mp4 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # a reset while the server still waits: its writes then fail
        time.sleep(1.0)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # it still serves
        c.request("GET", "/v/sample-00.html")
        assert c.getresponse().status == 200
        c.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err
