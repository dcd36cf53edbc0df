"""The one summary model, and the card and ``inspect`` rendering it: counts over
committed shards (synthetic units committed by the real ShardCommit), new per-shard
counters summed without a code change, the same summary from S3, and input quoted so
that it cannot inject markup into the card."""

import json
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from markdown_it import MarkdownIt

from multihowto.operators.shards import ShardCommit
from multihowto.pipeline.inspect_dataset import inspect_dataset
from multihowto.pipeline.plan import REJECTED_SCHEMA
from multihowto.pipeline.plots import box_stats
from multihowto.pipeline.report import write_report
from multihowto.pipeline.storage import LocalStorage, S3Storage
from multihowto.pipeline.summary import FailedVideo, RejectedRow, summarise
from multihowto.schemas.frames import pack_jpegs
from multihowto.schemas.index import PLAN_REJECTED_FILE
from multihowto.schemas.item import Clip, Failure, Track, VideoItem

HOSTILE = ('x</td><script>alert(1)</script> | [click](http://evil.example/) ](javascript:alert(1)) '
           '![i](http://evil.example/i.png) <img src=x onerror=alert(1)>\n# Owned\n| a | b |\n- item `code`')


def ok_item(video_id: str, extra_lang: str = "de", scratch=None) -> VideoItem:
    scratch = scratch or Path(tempfile.mkdtemp(prefix="summary-"))
    frames = []
    for i, jpeg in enumerate([b"\xff\xd8a\xff\xd9", b"\xff\xd8b\xff\xd9"]):
        frames.append(scratch / f"{video_id}-{i}.frames.npz")
        frames[-1].write_bytes(pack_jpegs([jpeg]))
    return VideoItem(
        video_id=video_id, url=f"http://127.0.0.1/v/{video_id}.html", unit=0, pivot="en",
        tracks={"en": Track([], "vtt", "manual"), extra_lang: Track([], "vtt", "manual")},
        lid={"en": {"verdict": "accept", "label": "en", "score": 0.9},
             extra_lang: {"verdict": "uncertain", "label": extra_lang, "score": 0.4},
             "fr": {"verdict": "reject", "label": "de", "score": 0.7, "reason": "wrong_language"}},
        missing_langs={"sw": "no_track"},
        track_errors={"cs": "http_404"},
        clips=[
            Clip(0, 0.0, 2.0, {"en": "bread", extra_lang: "Brot"}, {"en": 1.0, extra_lang: 0.9}, str(frames[0]), 1),
            Clip(1, 2.0, 5.5, {"en": "water"}, {"en": 1.0}, str(frames[1]), 1),
        ],
        timings={"frames": 0.5},
        retried=["http_429"],
    )


def failed_item(video_id: str, error: str) -> VideoItem:
    reason, _, detail = error.partition(": ")
    return VideoItem(video_id, "", 0, failure=Failure("frames", reason, detail))


def write_rejected(root, rows) -> None:
    pq.write_table(pa.Table.from_pylist(rows, schema=REJECTED_SCHEMA), root / PLAN_REJECTED_FILE)


def add_to_stats(root, unit: int, **fields) -> None:
    """What another stage's new counter looks like in a stats file."""
    path = root / f"shard-{unit:06d}.stats.json"
    st = json.loads(path.read_text())
    st.update(fields)
    path.write_text(json.dumps(st))


@pytest.fixture()
def dataset(cfg, tmp_path):
    root = tmp_path / "ds"
    commit = ShardCommit(1.0, LocalStorage(root), tmp_path / "tmp", written_by={"node": "n"})
    commit.commit(0, [ok_item("vid-a"), failed_item("vid-b", "corrupt_video: moov atom not found"),
                      failed_item("vid-c", "http_404: gone")])
    # unit 1 retries vid-c (now ok) and holds one more failure
    commit.commit(1, [ok_item("vid-c", "zh"), failed_item("vid-d", "timeout: download took longer than 60s")])
    add_to_stats(root, 0, clips_dropped={"too_long": 1}, bytes_downloaded=100, encodings={"utf-16": 1})
    add_to_stats(root, 1, clips_dropped={"too_long": 2, "too_short": 1}, bytes_downloaded=50,
                 track_fetch_errors={"en": {"http_404": 1}}, note="not a count")
    write_rejected(root, [{"line": 3, "reason": "bad_url", "value": "ftp://x"}])
    return root


def test_summary_counts_latest_status_and_sums_unknown_counters(dataset):
    s = summarise(dataset)
    assert s.uri == str(dataset) and s.shards == 2
    assert s.videos == {"total": 4, "ok": 2, "failed": 2} and s.videos_with_clips == 2
    assert sorted(s.failed_videos, key=lambda v: v.video_id) == [
        FailedVideo("vid-b", "frames", "corrupt_video", "moov atom not found"),
        FailedVideo("vid-d", "frames", "timeout", "download took longer than 60s"),
    ]
    assert s.failures == {"corrupt_video": 1, "timeout": 1}  # vid-c's http_404 was retried away
    assert s.clips == 4 and s.clip_seconds == pytest.approx(11.0) and sum(s.duration_counts) == 4
    assert s.clips_per_lang["en"] == 4 and s.clips_per_lang["de"] == 1 and s.clips_per_lang["zh"] == 1
    assert s.lid_rejected["fr"] == {"wrong_language": 2} and s.lid_uncertain == {"de": 1, "zh": 1}
    # accepted tracks' scores, binned: rejected tracks (fr) left out
    assert sorted(s.lid_score_counts) == ["de", "en", "zh"] and sum(s.lid_score_counts["en"]) == 2
    assert s.lid_score_counts["en"][90] == 2 and s.lid_score_counts["de"][40] == 1
    box = box_stats(s.lid_score_edges, s.lid_score_counts["en"], "en")
    assert box["q1"] == box["med"] == box["q3"] == pytest.approx(0.905)
    assert s.missing_langs["sw"] == {"no_track": 2} and s.track_errors["cs"] == {"http_404": 2}
    assert s.retries == {"http_429": 2} and s.timings_s["frames"] == pytest.approx(1.0)
    assert s.rejected_rows == [RejectedRow(3, "bad_url", "ftp://x")]
    # counters nobody taught the summary about are summed as they come
    assert s.counters["clips_dropped"] == {"too_long": 3, "too_short": 1}
    assert s.counters["encodings"] == {"utf-16": 1}
    assert s.counters["track_fetch_errors"] == {"en/http_404": 1}
    assert s.totals == {"bytes_downloaded": 150} and "note" not in s.counters
    assert "written_by" not in s.counters  # provenance, not a count
    assert json.loads(json.dumps(s.to_dict()))["counters"]["clips_dropped"]["too_long"] == 3


def test_inspect_renders_the_summary(dataset):
    text = inspect_dataset(dataset)
    assert "videos: 4 planned, 2 ok, 2 failed, 2 with clips" in text
    assert "vid-b (at frames): corrupt_video: moov atom not found" in text
    assert "clips planned but not written (by reason): too_long=3, too_short=1" in text and "bytes_downloaded: 150" in text
    assert "sample vid-a_00000" in text and "  en: bread" in text


@pytest.mark.slow
def test_the_same_summary_from_s3(dataset, s3):
    storage = S3Storage("s3://mhowto/summary/run1", s3)
    for f in sorted(dataset.iterdir()):
        storage.put_bytes(f.read_bytes(), f.name)
    local, remote = summarise(dataset).to_dict(), summarise("s3://mhowto/summary/run1").to_dict()
    assert remote.pop("uri") == "s3://mhowto/summary/run1" and local.pop("uri") == str(dataset)
    assert remote == local
    text = inspect_dataset("s3://mhowto/summary/run1")
    assert text.startswith("dataset: s3://mhowto/summary/run1") and "sample vid-a_00000" in text


def test_the_card_quotes_hostile_input_as_text(cfg, tmp_path):
    root = tmp_path / "ds"
    ShardCommit(1.0, LocalStorage(root), tmp_path / "tmp").commit(0, [ok_item("vid-a"), failed_item("vid-<b>", "corrupt_video: " + HOSTILE)])
    write_rejected(root, [{"line": 7, "reason": "bad_url", "value": HOSTILE}])
    card = write_report(root)
    assert card == (root / "README.md").read_text()
    md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")
    tokens = md.parse(card)
    inline = [t for tok in tokens if tok.type == "inline" for t in tok.children]
    # no raw HTML, no link, and no images but the card's own four plots
    assert not [t for t in [*tokens, *inline] if t.type in ("html_block", "html_inline", "link_open")]
    assert sorted(t.attrs["src"] for t in inline if t.type == "image") == [
        "_report/clip_lengths.png", "_report/clips_per_lang.png", "_report/failures.png", "_report/lid_scores.png"]
    # nothing became a heading, and every table row keeps its three cells
    assert [t.content for t in tokens if t.type == "inline" and tokens[tokens.index(t) - 1].type == "heading_open"] == [
        "multihowto dataset card", "Clips per language", "Language ID", "Missing languages (videos without a usable track)",
        "Track errors", "Failures by reason", "Clip lengths", "Stage time (summed over videos, seconds)"]
    rows = [i for i, t in enumerate(tokens) if t.type == "tr_open"]
    for i in rows:
        cells = 0
        for t in tokens[i + 1:]:
            if t.type == "tr_close":
                break
            cells += t.type in ("td_open", "th_open")
        assert cells == 3
    # the hostile values are there, as text, each on its own line
    html = md.render(card)
    assert "<script>" not in html and "<img src=x" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert sum("alert(1)&lt;/script&gt;" in line for line in html.splitlines()) == 2
    assert "vid-&lt;b&gt;" in html


def test_inspect_shows_control_characters_escaped(cfg, tmp_path):
    root = tmp_path / "ds"
    ShardCommit(1.0, LocalStorage(root), tmp_path / "tmp").commit(
        0, [ok_item("vid-a"), failed_item("vid-b", "corrupt_video: \x1b]0;owned\x07\x1b[2J\nfake line\x00")])
    text = inspect_dataset(root)
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text
    assert "vid-b (at frames): corrupt_video: \\x1b]0;owned\\x07\\x1b[2J\\nfake line\\x00" in text
