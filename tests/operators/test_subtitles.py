"""The subtitle layer on the real formats: YouTube rolling ASR VTT, a manual VTT with
STYLE/NOTE blocks, YouTube json3, and broken input."""

import random
import unicodedata

import pytest

from multihowto.operators.caption_formats import CaptionFormatError, parse_caption_file, parse_json3
from multihowto.operators.caption_text import dedupe_rolling, is_rolling, join_texts, normalise_text
from multihowto.operators.subtitles import ParseSubtitles, read_track
from multihowto.schemas.config import SubtitlesConfig
from multihowto.schemas.download import RawTrack
from multihowto.schemas.item import VideoItem
from multihowto.schemas.sample import LANGS
from tests.conftest import DATA

# Hand-checked from the fixture: each spoken line once, from its speech cue's start to
# the hold cue that follows it. The [Music] line carries no words.
ROLLING_ANSWER = [
    (0.16, 2.79, "today we're going to make bread"),
    (2.80, 5.51, "first mix the flour and water"),
    (8.25, 11.03, "then knead it for ten minutes"),
    (11.04, 13.87, "until the dough is smooth"),
]


def test_rolling_vtt_becomes_clean_segments():
    parsed = parse_caption_file(DATA / "youtube_rolling.en.vtt")
    raw = parsed.cues
    assert parsed.format == "vtt" and is_rolling(raw)
    segments = dedupe_rolling(raw)
    assert [s.text for s in segments] == [t for _, _, t in ROLLING_ANSWER]
    for seg, (start, end, _) in zip(segments, ROLLING_ANSWER, strict=True):
        assert abs(seg.start - start) <= 0.05 and abs(seg.end - end) <= 0.05
    words = " ".join(s.text for s in segments).split()
    # verbatim cue text repeats every line; de-duplicated text has each word once
    verbatim = " ".join(normalise_text(t) for _, _, t in raw).split()
    assert len(verbatim) > len(words)
    assert words.count("bread") == 1 and words.count("water") == 1
    assert all(a.end <= b.start for a, b in zip(segments, segments[1:], strict=False))


def test_manual_vtt_with_style_note_voice_and_entities():
    track = read_track(str(DATA / "manual.de.vtt"))
    assert track["kind"] == "manual" and track["format"] == "vtt"
    texts = [c[2] for c in track["cues"]]
    assert texts == [
        "Heute backen wir Brot & Brötchen.",
        "Zuerst Mehl und Wasser mischen.",
        "Dann zehn Minuten kneten,",
        "bis der Teig glatt ist.",
    ]  # the ♪-only cue is dropped, <v>/<i> tags removed, &amp; decoded
    assert all(s < e for s, e, _ in track["cues"])


def test_json3_events_become_lines():
    parsed = parse_caption_file(DATA / "youtube.en.json3")
    raw = parsed.cues
    assert parsed.format == "json3"
    assert [t.strip() for _, _, t in raw] == [
        "today we're going to make bread",
        "first mix the flour and water",
        "then knead it for ten minutes",
    ]
    starts = [s for s, _, _ in raw]
    assert starts == [0.16, 2.8, 8.25]
    assert all(e <= nxt for (_, e, _), nxt in zip(raw, starts[1:], strict=False))  # windows clipped


def test_normalisation():
    assert normalise_text(">> [Applause] Tom &amp; Jerry ♪") == "Tom & Jerry"
    decomposed = unicodedata.normalize("NFD", "bong bóng")
    assert normalise_text(decomposed) == unicodedata.normalize("NFC", "bong bóng")
    assert normalise_text("气泡\n很多") == "气泡很多"  # CJK lines joined without a space
    assert join_texts(["hello", "world"]) == "hello world"


@pytest.mark.parametrize("bad", ["broken.vtt"])
def test_broken_file_is_a_format_error(bad):
    with pytest.raises(CaptionFormatError) as err:
        parse_caption_file(DATA / bad)
    assert err.value.reason == "malformed_vtt"


def test_json3_garbage_is_a_format_error():
    with pytest.raises(CaptionFormatError):
        parse_json3("{not json")
    with pytest.raises(CaptionFormatError):
        parse_json3('{"events": 3}')


def _sub(name: str) -> RawTrack:
    return RawTrack(format=name.rsplit(".", 1)[1], data=(DATA / name).read_bytes(), kind="manual", tag="en")


def test_operator_records_a_broken_track_and_keeps_the_video():
    op = ParseSubtitles(SubtitlesConfig(), LANGS)
    item = VideoItem("v", "", 0, raw_tracks={"en": _sub("youtube_rolling.en.vtt"), "de": _sub("broken.vtt")})
    [out] = op.process_batch([item])
    assert out.ok
    assert out.track_errors == {"de": "malformed_vtt"}
    assert out.tracks["en"].kind == "asr-rolling"
    assert out.raw_tracks == {}  # the raw files are consumed


def test_operator_fails_a_video_without_readable_tracks():
    op = ParseSubtitles(SubtitlesConfig(), LANGS)
    [out] = op.process_batch([VideoItem("v", "", 0, raw_tracks={"de": _sub("broken.vtt")})])
    assert out.status == "failed" and out.failure.stage == "subtitles"
    assert out.failure.reason == "no_subtitles"


def test_missing_or_undecodable_files_are_format_errors(tmp_path):
    with pytest.raises(CaptionFormatError) as err:
        parse_caption_file(tmp_path / "gone.vtt")
    assert err.value.reason == "missing_file"
    # a UTF-16 byte-order mark followed by an odd number of bytes: certain, and broken
    torn = tmp_path / "torn.vtt"
    torn.write_bytes("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nÇa\n".encode("utf-16") + b"\x00")
    with pytest.raises(CaptionFormatError) as err:
        parse_caption_file(torn, "fr")
    assert err.value.reason == "undecodable" and "utf-16-le" in str(err.value)
    noise = tmp_path / "noise.srt"  # no BOM, not UTF-8, and no code page reads it as text
    noise.write_bytes(random.Random(0).randbytes(3000))
    with pytest.raises(CaptionFormatError) as err:
        parse_caption_file(noise, "de")
    assert err.value.reason == "undecodable"
