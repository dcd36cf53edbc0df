"""Property tests: the caption readers never crash and never emit a bad cue.

Every parser, given any input, either raises CaptionFormatError (a clear per-track
reason) or returns cues with finite times and end >= start; the de-duplication and
normalisation that follow emit segments with end > start and non-empty text.
`make fuzz` runs the same properties with 20,000 examples each.
"""

import codecs
import json
import math
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from multihowto.operators.caption_formats import (
    DEFAULT_LIMITS,
    FORMATS,
    CaptionFormatError,
    ParsedCaptions,
    parse_caption_bytes,
    parse_json3,
    parse_srt,
    parse_vtt,
)
from multihowto.operators.caption_text import (
    dedupe_rolling,
    is_rolling,
    normalise_text,
    plain_segments,
)
from multihowto.schemas.config import SubtitlesConfig
from multihowto.schemas.sample import LANGS
from tests.conftest import DATA

FIXTURES = [(DATA / name).read_text(encoding="utf-8") for name in ("youtube_rolling.en.vtt", "manual.de.vtt")]
SRT = "1\n00:00:01,000 --> 00:00:02,500\nHello <i>there</i>\n\n2\n00:00:03,000 --> 00:00:04,000\nSecond &amp; last\n"

_timestamp = st.builds(
    lambda h, m, s, ms: f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}",
    st.integers(0, 99), st.integers(0, 59), st.integers(0, 59), st.integers(0, 999),
)
_cue_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60).map(lambda t: t.replace("-->", "->"))
_cue = st.builds(
    lambda a, b, settings, text: f"{a} --> {b}{settings}\n{text}\n",
    _timestamp, _timestamp, st.sampled_from(["", " align:start position:0%", " line:90%"]), _cue_text,
)
_vtt_doc = st.lists(_cue, max_size=12).map(lambda cues: "WEBVTT\n\n" + "\n".join(cues))


@st.composite
def _mutated(draw, base_docs):
    """A real file with lines deleted, duplicated, swapped or corrupted."""
    lines = draw(st.sampled_from(base_docs)).split("\n")
    for _ in range(draw(st.integers(1, 6))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "dup", "swap", "garble", "insert"]))
        if op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "garble":
            pos = draw(st.integers(0, max(0, len(lines[i]))))
            lines[i] = lines[i][:pos] + draw(st.text(max_size=5)) + lines[i][pos + 1 :]
        else:
            lines.insert(i, draw(st.text(max_size=30)))
    return "\n".join(lines)


def _check_cues(cues):
    for start, end, text in cues:
        assert math.isfinite(start) and math.isfinite(end)
        assert end >= start
        assert isinstance(text, str)


def _check_pipeline(cues):
    rolling = is_rolling(cues)
    segments = dedupe_rolling(cues) if rolling else plain_segments(cues)
    for seg in segments:
        assert seg.end >= seg.start
        assert seg.end > seg.start or not rolling  # rolling segments are never empty in time
        assert seg.text.strip() == seg.text and seg.text


def _parse_or_reason(parser, text):
    try:
        cues = parser(text)
    except CaptionFormatError as e:
        assert e.reason  # a clear, countable reason
        return None
    _check_cues(cues)
    _check_pipeline(cues)
    return cues


@given(st.text(max_size=400))
def test_vtt_parser_on_arbitrary_text(text):
    _parse_or_reason(parse_vtt, text)


@given(_vtt_doc)
def test_vtt_parser_on_generated_files(text):
    _parse_or_reason(parse_vtt, text)


@given(_mutated(FIXTURES))
def test_vtt_parser_on_mutated_real_files(text):
    _parse_or_reason(parse_vtt, text)


@given(st.one_of(st.text(max_size=300), _mutated([SRT])))
def test_srt_parser(text):
    _parse_or_reason(parse_srt, text)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
_event = st.fixed_dictionaries(
    {},
    optional={
        "tStartMs": st.one_of(st.integers(-1000, 10**7), st.floats(), st.text(max_size=3), st.none()),
        "dDurationMs": st.one_of(st.integers(-1000, 10**6), st.floats(), st.none()),
        "segs": st.one_of(st.lists(st.fixed_dictionaries({}, optional={"utf8": st.one_of(st.text(max_size=15), st.integers()), "tOffsetMs": st.integers()}), max_size=4), _json),
        "aAppend": st.integers(0, 1),
    },
)


@given(st.one_of(_json.map(json.dumps), st.lists(_event, max_size=8).map(lambda evs: json.dumps({"events": evs})), st.text(max_size=100)))
def test_json3_parser(text):
    _parse_or_reason(parse_json3, text)


def _bytes_or_reason(fmt, data, lang, cfg=DEFAULT_LIMITS):
    try:
        parsed = parse_caption_bytes(fmt, data, lang, cfg)
    except CaptionFormatError as e:
        assert e.reason
        return None
    assert isinstance(parsed, ParsedCaptions) and parsed.encoding
    _check_cues(parsed.cues)
    _check_pipeline(parsed.cues)
    assert len(parsed.cues) <= cfg.max_cues
    assert all(end - start <= cfg.max_cue_s for start, end, _ in parsed.cues)
    return parsed


_langs = st.sampled_from(("", *LANGS))


@given(st.binary(max_size=600), st.sampled_from(FORMATS), _langs)
def test_any_bytes_give_cues_or_a_reason(data, fmt, lang):
    _bytes_or_reason(fmt, data, lang)


_ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp1252", "latin-1", "cp1251", "koi8_r", "gb18030", "cp1250"]


@given(
    st.one_of(_vtt_doc, _mutated(FIXTURES), _mutated([SRT])),
    st.sampled_from(_ENCODINGS),
    _langs,
    st.sampled_from(FORMATS),
    st.sampled_from([b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF32_BE]),
    st.integers(1, 30),
)
def test_real_files_in_any_encoding_give_cues_or_a_reason(text, encoding, lang, fmt, bom, max_cues):
    data = bom + text.encode(encoding, errors="replace")
    _bytes_or_reason(fmt, data, lang, SubtitlesConfig(max_cues=max_cues, max_cue_s=5.0))


@given(st.text(max_size=200))
def test_normalised_text_has_no_control_characters(text):
    out = normalise_text(text)
    assert not any(unicodedata.category(ch) == "Cc" for ch in out)
    assert out == out.strip()


@given(st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**5), _cue_text.filter(lambda t: t.strip() and "\n\n" not in t)), max_size=8))
def test_srt_cue_numbers_are_optional(cues):
    def doc(numbered):
        blocks = []
        for i, (start_ms, dur_ms, text) in enumerate(cues):
            def ts(ms):
                return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
            blocks.append((f"{i + 1}\n" if numbered else "") + f"{ts(start_ms)} --> {ts(start_ms + dur_ms)}\n{text.strip()}\n")
        return "\n".join(blocks)

    try:
        with_numbers = parse_srt(doc(True))
    except CaptionFormatError:
        with_numbers = None
    try:
        without = parse_srt(doc(False))
    except CaptionFormatError:
        without = None
    assert with_numbers == without
