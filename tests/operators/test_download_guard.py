"""The allow-list holds for every request yt-dlp makes (#14.1), against real loopback
servers: the allowed one serves pages made here, the other one holds a "secret" and
its request log must stay empty."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from multihowto.operators.base import StageError
from multihowto.operators.download import Downloader
from multihowto.operators.request_guard import RequestGuard
from multihowto.sample_site.server import serve
from multihowto.schemas.config import ConfigError, DownloadConfig, RegionConfig, validate

CFG = DownloadConfig(allowed_extractors=("generic", "html5"), retries=1, backoff_base_s=0.01, backoff_max_s=0.02)


def page(video: str, tracks: dict[str, str]) -> str:
    items = "\n".join(f'<track kind="subtitles" srclang="{lang}" src="{src}">' for lang, src in tracks.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>t</title></head><body>
<video controls><source src="{video}" type="video/mp4">
{items}
</video></body></html>"""


@pytest.fixture()
def sites(small_site, tmp_path):
    """(allowed base URL, its folder, its log, other base URL, other log): both on
    127.0.0.1, different ports; the other serves a secret track and video."""
    allowed, other = tmp_path / "allowed", tmp_path / "other"
    for root in (allowed, other):
        (root / "media").mkdir(parents=True)
        (root / "subs").mkdir()
        (root / "manifest.csv").write_text("video_id,url\n")
        shutil.copy(small_site / "media" / "sample-00.mp4", root / "media" / "v.mp4")
        shutil.copy(small_site / "subs" / "sample-00.en.vtt", root / "subs" / "en.vtt")
    (other / "subs" / "secret.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:02.000\nSECRET-TOKEN\n")
    allowed_log, other_log = [], []
    with serve(allowed, log=allowed_log) as a, serve(other, log=other_log) as b:
        yield a, allowed, allowed_log, b, other_log


def downloader(cfg: DownloadConfig, langs=("en", "de")) -> Downloader:
    d = Downloader(cfg, langs, fetch_subtitles=True)
    d.setup()
    return d


def only(base: str) -> DownloadConfig:
    """The local profile's shape: exactly the served host:port."""
    return dataclasses.replace(CFG, allowed_hosts=(base.split("/")[2],))


def refused(d: Downloader, url: str, tmp_path: Path) -> StageError:
    with pytest.raises(StageError) as e:
        d.fetch(url, "v", tmp_path / "scratch")
    assert e.value.reason == "host_not_allowed", e.value
    return e.value


def test_embedded_media_from_another_port_is_refused(sites, tmp_path):
    a, root, a_log, b, b_log = sites
    (root / "embed.html").write_text(page(f"{b}media/v.mp4", {"de": f"{b}subs/secret.vtt"}))
    d = downloader(only(a))
    err = refused(d, f"{a}embed.html", tmp_path)
    assert f"{b.split('/')[2]} is not in" in err.detail
    assert b_log == [] and a_log == [("GET", "/embed.html")]


def test_a_track_from_another_port_loses_that_language_only(sites, tmp_path):
    a, root, _, b, b_log = sites
    (root / "track.html").write_text(page("media/v.mp4", {"en": "subs/en.vtt", "de": f"{b}subs/secret.vtt"}))
    res = downloader(only(a)).fetch(f"{a}track.html", "v", tmp_path / "scratch")
    assert res.video_path.read_bytes()[4:8] == b"ftyp" and set(res.tracks) == {"en"}
    assert res.track_errors == {"de": "host_not_allowed"}
    assert b_log == []


def test_a_redirect_chain_to_another_port_is_refused_before_the_hop(small_site, sites, tmp_path):
    a, root, a_log, b, b_log = sites
    (root / "v.html").write_text(page("media/v.mp4", {}))
    faults = {"/hop1": {"kind": "redirect", "to": "/hop2"}, "/hop2": {"kind": "redirect", "to": f"{b}subs/secret.vtt", "code": 307},
              "/ok": {"kind": "redirect", "to": "/v.html", "code": 301}}
    log = []
    with serve(root, faults=faults, log=log) as c:
        d = downloader(only(c))
        err = refused(d, f"{c}hop1", tmp_path)
        assert "not in download.allowed_hosts" in err.detail
        assert [p for _, p in log] == ["/hop1", "/hop2"] and b_log == []
        assert d.last.requests == 2
        # a redirect within the allowed server is followed, hop by hop
        res = d.fetch(f"{c}ok", "v", tmp_path / "scratch")
        assert res.video_path.exists() and [p for _, p in log][2:4] == ["/ok", "/v.html"]


def test_another_port_on_an_allowed_host_is_refused(sites, tmp_path):
    a, _, _, b, b_log = sites
    refused(downloader(only(a)), f"{b}subs/secret.vtt", tmp_path)
    # a host entry without a port allows only 80 and 443
    refused(downloader(dataclasses.replace(CFG, allowed_hosts=("127.0.0.1",))), f"{b}subs/secret.vtt", tmp_path)
    assert b_log == []


def test_non_global_addresses_are_refused_unless_allowed(sites, tmp_path):
    a, root, _, b, b_log = sites
    port = b.split(":")[2].rstrip("/")
    d = downloader(CFG)  # no allow-list at all: any host, but only global addresses
    for url in (f"{b}subs/secret.vtt", f"http://localhost:{port}/subs/secret.vtt",
                f"http://2130706433:{port}/subs/secret.vtt",  # 127.0.0.1 spelt as one number
                f"http://[::ffff:127.0.0.1]:{port}/subs/secret.vtt",
                "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                "http://[fd00:ec2::254]/latest/meta-data/", "http://100.64.0.1/", "http://10.0.0.1/",
                "http://0.0.0.0/"):
        err = refused(d, url, tmp_path)
        assert "not a global address" in err.detail, url
        assert d.last.requests == 0
    assert b_log == []
    for url in ("file:///etc/passwd", "ftp://127.0.0.1/x"):
        refused(d, url, tmp_path)
    # a redirect from an allowed page to the metadata address is refused at the hop
    allowed = dataclasses.replace(CFG, allowed_networks=("127.0.0.0/8",))
    with serve(root, faults={"/meta": {"kind": "redirect", "to": "http://169.254.169.254/latest/meta-data/"}}) as c:
        refused(downloader(allowed), f"{c}meta", tmp_path)
    # explicitly allowed: a CIDR, or an IP-literal entry
    res = downloader(allowed).fetch(f"{b}subs/secret.vtt", "v", tmp_path / "s1")
    assert res.video_path.read_bytes().endswith(b"SECRET-TOKEN\n")


def test_hls_fragments_from_another_port_are_refused(sites, tmp_path):
    a, root, a_log, b, b_log = sites
    (root / "hls.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:4.0,\n{b}media/seg0.ts\n#EXTINF:4.0,\n{b}media/seg1.ts\n#EXT-X-ENDLIST\n")
    (root / "hls.html").write_text(
        '<!doctype html><html><head><title>h</title></head><body><video controls>'
        '<source src="hls.m3u8" type="application/x-mpegURL"></video></body></html>')
    err = refused(downloader(only(a)), f"{a}hls.html", tmp_path)
    assert b_log == [] and ("GET", "/hls.m3u8") in a_log
    assert f"{b.split('/')[2]} is not in" in err.detail  # the fragment's host, refused at its request


def test_the_gate_is_called_before_every_request(sites, tmp_path):
    a, root, a_log, _, _ = sites
    (root / "v.html").write_text(page("media/v.mp4", {"en": "subs/en.vtt"}))
    hosts = []
    d = Downloader(only(a), ("en",), fetch_subtitles=True, gate=hosts.append)
    d.setup()
    res = d.fetch(f"{a}v.html", "v", tmp_path / "scratch")
    assert hosts == ["127.0.0.1"] * 3 == ["127.0.0.1"] * res.requests and len(a_log) == 3


def test_allow_list_entries():
    g = RequestGuard(dataclasses.replace(CFG, allowed_hosts=(".googlevideo.com", "www.youtube.com", "[::1]:8080", "127.0.0.1:9")))
    g.resolve = lambda host, port, type: [(0, 0, 0, "", ("142.250.1.1", port))]  # a global address
    assert g.check_url("https://rr3---sn-abc.googlevideo.com/videoplayback?x=1") == "rr3---sn-abc.googlevideo.com"
    assert g.check_url("https://WWW.YouTube.com./watch?v=x") == "www.youtube.com"
    assert g.check_url("http://[::1]:8080/x") == "::1" and g.check_url("http://127.0.0.1:9/") == "127.0.0.1"
    for url in ("https://googlevideo.com/", "https://evilgooglevideo.com/", "https://www.youtube.com:8443/",
                "https://www.youtube.com.evil.net/", "http://user:pw@evil.net/@www.youtube.com/", "http://[::1]:8081/"):
        with pytest.raises(StageError):
            g.check_url(url)


def test_config_checks_entries():
    for bad in ({"allowed_hosts": ("bad host",)}, {"allowed_hosts": ("x.com:99999",)},
                {"allowed_networks": ("10.0.0.0/40",)}, {"deadline_s": 0.0}, {"js_runtimes": ("rhino",)}):
        with pytest.raises(ConfigError, match="download."):
            validate(RegionConfig(download=dataclasses.replace(CFG, **bad)))
    validate(RegionConfig(download=dataclasses.replace(CFG, allowed_hosts=(".googlevideo.com", "127.0.0.1:8000"),
                                                       allowed_networks=("127.0.0.0/8",))))


def test_a_name_that_resolves_elsewhere_at_connect_is_refused_there(sites, tmp_path):
    """The address is checked again once connected: a DNS answer that changes between the
    check and the connect (rebinding) reaches no request."""
    a, _, a_log, b, b_log = sites
    port = b.split(":")[2].rstrip("/")
    d = downloader(CFG)  # any host, global addresses only
    d.guard.resolve = lambda host, port, type: [(0, 0, 0, "", ("93.184.216.34", port))]  # "global" at check time
    err = refused(d, f"http://localhost:{port}/subs/secret.vtt", tmp_path)
    assert "connected to 127.0.0.1" in err.detail and b_log == []


def test_allow_origin_admits_exactly_the_served_site(sites, tmp_path):
    from multihowto.operators.download import allow_origin

    a, root, _, b, b_log = sites
    (root / "v.html").write_text(page("media/v.mp4", {"en": "subs/en.vtt"}))
    cfg = allow_origin(CFG, a)
    assert cfg.allowed_hosts == (a.split("/")[2],) and cfg.allowed_networks == ()
    assert downloader(cfg).fetch(f"{a}v.html", "v", tmp_path / "s").tracks["en"].tag == "en"
    refused(downloader(cfg), f"{b}subs/secret.vtt", tmp_path)
    assert b_log == []
