"""``mhowto browse`` in a real headless browser (Debian's chromium driven by Playwright),
on the small site's dataset (local and copied into moto's S3 server) and on a dataset
whose subtitles and errors carry HTML and script."""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from multihowto.operators.shards import ShardCommit
from multihowto.pipeline.browse import create_app, running
from multihowto.pipeline.dataset_view import DatasetView
from multihowto.pipeline.report import write_report
from multihowto.pipeline.storage import LocalStorage, S3Storage
from multihowto.schemas.frames import pack_jpegs
from multihowto.schemas.item import Clip, Failure, Track, VideoItem
from multihowto.schemas.sample import LANGS

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
REPO = Path(__file__).resolve().parents[2]
HOSTILE = "<script>window.__pwned = 1</script><b>bold?</b> & more"


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium (APT_PACKAGES)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


@pytest.fixture(scope="module")
def dataset(built_dataset, tmp_path_factory) -> Path:
    """A copy of the small site's dataset with its card and plots written."""
    _, out, _ = built_dataset
    copy = tmp_path_factory.mktemp("browse") / "ds"
    shutil.copytree(out, copy)
    write_report(copy)
    return copy


@pytest.fixture(scope="module")
def served(dataset):
    with running(create_app(DatasetView(LocalStorage(dataset)))) as base:
        yield base


def index_rows(root: Path) -> list[dict]:
    return [r for p in sorted(root.glob("shard-*.parquet")) for r in pq.read_table(p).to_pylist()]


def shot(page, tmp_path: Path, name: str, docs: bool = False) -> Path:
    """A full-page screenshot into the test's folder (and, with ``docs``, into docs/ for
    the README when MHOWTO_SCREENSHOTS is set)."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs and os.environ.get("MHOWTO_SCREENSHOTS"):
        (REPO / "docs").mkdir(exist_ok=True)
        shutil.copy(path, REPO / "docs" / f"{name}.png")
    assert path.stat().st_size > 1000
    return path


def wait_images(page) -> list[int]:
    """naturalWidth of every image on the page once all have loaded or failed."""
    page.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=30_000)
    return page.evaluate("() => [...document.images].map(i => i.naturalWidth)")


def test_overview_shows_the_cards_figures_and_plots(page, served, dataset, tmp_path):
    clips = len(index_rows(dataset))
    page.goto(served + "/")
    assert page.locator("h1").inner_text() == "Overview"
    figures = page.locator(".figures").inner_text()
    assert f"{clips}\nclips" in figures and "1\nfailed" in figures
    widths = wait_images(page)
    assert len(widths) == 4 and all(w > 0 for w in widths)  # the card's four plots
    page.click("a[href='/clips?missing=sw']")
    assert page.url.endswith("/clips?missing=sw")
    shot(page, tmp_path, "browse-overview")


def test_clips_filtered_to_those_missing_sw(page, served, dataset, tmp_path):
    want = sorted(r["key"] for r in index_rows(dataset) if "sw" not in r["langs"])
    assert want  # video 4 of the small site has no sw track
    page.goto(served + "/clips")
    page.select_option("select[name=missing]", "sw")
    page.click("button[type=submit]")
    keys = page.locator(".card").evaluate_all("cards => cards.map(c => c.dataset.key)")
    assert sorted(keys) == want
    chips = page.locator(".card .chip", has_text="sw").evaluate_all("cs => cs.map(c => c.className)")
    assert chips and all("off" in c for c in chips)
    assert all(w > 0 for w in wait_images(page))  # thumbnails: frames of each clip
    shot(page, tmp_path, "browse-clips")


def test_text_search_and_uncertain_filter(page, served, dataset):
    rows = index_rows(dataset)
    word = rows[0]["text_ru"].split()[0]
    page.goto(served + "/clips?" + urllib.parse.urlencode({"q": word.upper()}))
    keys = set(page.locator(".card").evaluate_all("cards => cards.map(c => c.dataset.key)"))
    want = {r["key"] for r in rows if any(word.casefold() in (r[f"text_{lang}"] or "").casefold() for lang in LANGS)}
    assert keys == set(list(sorted(want))[:24]) and rows[0]["key"] in keys
    page.goto(served + "/clips?uncertain=any")
    assert page.locator(".card").count() > 0  # the small site has uncertain sw tracks


def test_clip_page_shows_nine_texts_and_decoded_frames(page, served, dataset, tmp_path):
    row = next(r for r in index_rows(dataset) if len(r["langs"]) == len(LANGS) and r["clip_index"] > 0)
    page.goto(f"{served}/clip/{row['key']}")
    sections = page.locator(".texts section.present")
    assert sections.count() == 9
    for lang in LANGS:
        body = page.locator(f".texts section[data-lang={lang}] .body").inner_text()
        assert body == row[f"text_{lang}"].strip(), lang
        assert page.locator(f".texts section[data-lang={lang}] .verdict").count() == 1
    widths = wait_images(page)  # the page's only images are the clip's frames
    assert len(widths) == row["n_frames"] > 0 and all(w > 0 for w in widths)
    assert page.locator("a[rel=prev]").count() == 1  # clip_index > 0: a previous clip of its video
    shot(page, tmp_path, "browse-clip", docs=True)


def test_video_page_shows_the_rejected_track_and_why(page, served, dataset):
    n_clips = sum(r["video_id"] == "sample-03" for r in index_rows(dataset))
    page.goto(served + "/video/sample-03")  # the small site's German track is French
    de = page.locator("tr[data-lang=de]")
    assert "rejected" in de.inner_text() and "lid_wrong_language" in de.inner_text()
    assert page.locator("tr[data-lang=en] rect.clip.on").count() == n_clips > 0
    assert page.locator("tr[data-lang=de] rect.clip.on").count() == 0
    assert page.locator("tr[data-lang=de] rect.clip.off").count() == n_clips


def test_failures_page_lists_the_corrupt_video(page, served, tmp_path):
    page.goto(served + "/failures")
    row = page.locator("tr[data-video=sample-05]")
    assert row.locator(".reason").inner_text() == "corrupt_video"
    assert row.locator("td").nth(1).inner_text() == "frames"  # the stage it failed at
    assert row.locator(".detail").inner_text()  # ffmpeg's message
    page.select_option("select[name=reason]", "corrupt_video")
    page.click("button[type=submit]")
    assert page.locator("tr[data-video]").count() == 1
    shot(page, tmp_path, "browse-failures")
    row.locator("a").click()
    assert "failed at frames" in page.locator(".error").inner_text()
    assert "the video failed" in page.locator("tr[data-lang=en]").inner_text()


def raw_get(base: str, path: str, host: str = "") -> tuple[int, bytes]:
    """A GET of ``path`` exactly as written (no client-side normalisation of ``..``)."""
    hostport = base.split("//", 1)[1]
    conn = http.client.HTTPConnection(hostport, timeout=30)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host or hostport)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body


@pytest.mark.parametrize("path", [
    "/clip/../../pyproject.toml",
    "/clip/..%2F..%2Fpyproject.toml",
    "/clip/..%2F_plan.json/frame/0.jpg",
    "/static/../../pyproject.toml",
    "/static/..%2F..%2Fpyproject.toml",
    "/static/%2e%2e/%2e%2e/pyproject.toml",
    "/plot/..%2F_plan.json",
    "/plot/..%2F..%2F..%2Fetc%2Fpasswd",
    "/video/..%2F_plan.json",
    "/../_plan.json",
])
def test_paths_outside_the_dataset_are_refused(served, path):
    status, body = raw_get(served, path)
    assert status in (400, 404), (path, status)
    assert b"[build-system]" not in body and b"fingerprint" not in body and b"root:" not in body


def test_traversal_in_the_browser_is_refused_and_other_hosts_too(page, served):
    resp = page.goto(served + "/clip/..%2F..%2Fpyproject.toml")
    assert resp.status == 404
    status, _ = raw_get(served, "/", host="attacker.example")
    assert status == 400  # DNS rebinding: only a loopback Host is served


# -- untrusted text -----------------------------------------------------------------
def tiny_jpeg(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 18), color).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def hostile_dataset(tmp_path_factory) -> Path:
    """One shard written by the project's ShardCommit whose texts, URL and error hold HTML."""
    root = tmp_path_factory.mktemp("hostile") / "ds"
    texts = {lang: f"{lang}: {HOSTILE}" for lang in LANGS}
    tmp = tmp_path_factory.mktemp("tmp")
    frames = tmp / "evil-0.frames.npz"
    frames.write_bytes(pack_jpegs([tiny_jpeg((200, 0, 0)), tiny_jpeg((0, 0, 200))]))
    ok = VideoItem(
        video_id="evil", url="javascript:window.__pwned=2", unit=0, pivot="en",
        tracks={lang: Track([], "vtt", "manual<i>") for lang in LANGS},
        lid={lang: {"verdict": "accept", "label": lang, "score": 0.9} for lang in LANGS},
        clips=[Clip(0, 0.0, 2.0, texts, dict.fromkeys(LANGS, 1.0), frames_path=str(frames), n_frames=2)],
    )
    failed = VideoItem("broken", "http://127.0.0.1/x", 0,
                       failure=Failure("frames", "corrupt_video", "<img src=x onerror=\"window.__pwned=3\">"))
    ShardCommit(1.0, LocalStorage(root), tmp).commit(0, [ok, failed])
    return root


def test_a_subtitle_holding_script_is_shown_as_text_and_never_runs(page, hostile_dataset, tmp_path):
    with running(create_app(DatasetView(LocalStorage(hostile_dataset)))) as base:
        with urllib.request.urlopen(f"{base}/clip/evil_00000") as resp:
            html = resp.read().decode()
            csp = resp.headers["Content-Security-Policy"]
        assert "<script" not in html and "&lt;script&gt;" in html and "<b>bold" not in html
        assert "script-src" not in csp and "default-src 'none'" in csp  # no script from anywhere
        page.goto(f"{base}/clip/evil_00000")
        for lang in LANGS:
            assert page.locator(f".texts section[data-lang={lang}] .body").inner_text() == f"{lang}: {HOSTILE}"
        assert page.locator("script").count() == 0 and page.locator(".texts b").count() == 0
        assert page.locator("a[href^='javascript']").count() == 0  # the source URL stays text
        assert all(w > 0 for w in wait_images(page))
        shot(page, tmp_path, "browse-hostile")
        page.goto(f"{base}/failures")
        assert page.locator("tr[data-video=broken] .detail").inner_text() == '<img src=x onerror="window.__pwned=3">'
        page.goto(f"{base}/video/broken")
        page.goto(f"{base}/")
        assert page.evaluate("() => window.__pwned") is None and page.dialogs == []


def test_a_damaged_clip_span_is_an_error_page_naming_the_file(hostile_dataset, tmp_path):
    damaged = tmp_path / "ds"
    shutil.copytree(hostile_dataset, damaged)
    row = pq.read_table(damaged / "shard-000000.parquet").to_pylist()[0]
    tar = bytearray((damaged / "shard-000000.tar").read_bytes())
    tar[row["tar_offset"]:row["tar_offset"] + row["tar_size"]] = b"\x07" * row["tar_size"]
    (damaged / "shard-000000.tar").write_bytes(bytes(tar))
    with running(create_app(DatasetView(LocalStorage(damaged)))) as base:
        status, body = raw_get(base, "/clip/evil_00000")
        assert status == 500 and b"shard-000000.tar" in body and b"evil_00000" in body
        status, _ = raw_get(base, "/video/evil")  # the rest of the app goes on
        assert status == 200


# -- S3 ---------------------------------------------------------------------------
class CountingStorage:
    """A storage that counts the bytes read from each file, by whole and ranged reads."""

    def __init__(self, inner):
        self.inner, self.uri = inner, inner.uri
        self.whole: dict[str, int] = {}
        self.ranged: dict[str, int] = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def get_bytes(self, name: str) -> bytes:
        data = self.inner.get_bytes(name)
        self.whole[name] = self.whole.get(name, 0) + len(data)
        return data

    def get_range(self, name: str, start: int, length: int) -> bytes:
        data = self.inner.get_range(name, start, length)
        self.ranged[name] = self.ranged.get(name, 0) + len(data)
        return data


def test_clip_page_on_s3_reads_only_the_clips_span(page, s3, dataset, tmp_path):
    s3store = S3Storage("s3://mhowto/browse", s3)
    for path in sorted(p for p in dataset.rglob("*") if p.is_file() and not p.name.startswith(".")):
        s3store.put_bytes(path.read_bytes(), str(path.relative_to(dataset)))
    counting = CountingStorage(s3store)
    row = next(r for r in index_rows(dataset) if len(r["langs"]) == len(LANGS))
    tar = next(p.name.replace(".parquet", ".tar") for p in sorted(dataset.glob("shard-*.parquet"))
               if row["key"] in pq.read_table(p, columns=["key"]).column("key").to_pylist())
    with running(create_app(DatasetView(counting))) as base:
        page.goto(f"{base}/clip/{row['key']}")
        widths = wait_images(page)
        assert page.locator(".texts section.present").count() == 9
        assert len(widths) == row["n_frames"] and all(w > 0 for w in widths)
        page.goto(f"{base}/")  # the overview from S3 too (the card's summary, its plots)
        assert all(w > 0 for w in wait_images(page))
    assert not any(n.endswith(".tar") for n in counting.whole)  # never a whole tar
    assert set(n for n in counting.ranged) == {tar}
    assert 0 < counting.ranged[tar] < 2 * row["tar_size"]
    print(json.dumps({"span": row["tar_size"], "read": counting.ranged}))


def test_the_cli_prints_a_free_loopback_port_and_serves(dataset):
    proc = subprocess.Popen([sys.executable, "-m", "multihowto.pipeline.cli", "browse", str(dataset)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = next(line for line in proc.stdout if line.startswith("[browse]"))
        assert " at http://127.0.0.1:" in line, line
        url = line.split(" at ", 1)[1].split()[0]
        with urllib.request.urlopen(url + "failures") as resp:
            assert resp.status == 200 and b"sample-05" in resp.read()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
