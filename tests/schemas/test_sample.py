import io
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from multihowto.schemas.frames import decode_frames, pack_jpegs, unpack_jpegs
from multihowto.schemas.sample import MAX_ID_CHARS, sample_key, sanitize_id


@pytest.mark.parametrize("raw", ["../../etc/passwd", "a/b", "x.y.z", "..", "id with space", "ü-ñ"])
def test_sanitized_ids_are_safe(raw):
    safe = sanitize_id(raw)
    assert "/" not in safe and "." not in safe and ".." not in safe
    assert safe and sanitize_id(safe) == safe


def test_sanitize_keeps_safe_ids_and_separates_colliding_ones():
    assert sanitize_id("dQw4w9WgXcQ") == "dQw4w9WgXcQ"
    assert sanitize_id("a/b") != sanitize_id("a.b")


# Ids near the edges: the safe alphabet plus a few unsafe characters, short and past the
# 80-character cap, and any text at all.
_NEAR_SAFE = st.text(alphabet="ab_-./ \u00e9\x00", max_size=120)
_LONG = st.text(alphabet="xy-_.", min_size=MAX_ID_CHARS - 5, max_size=MAX_ID_CHARS + 40)
ANY_ID = st.one_of(st.text(), _NEAR_SAFE, _LONG, st.from_regex(r"[A-Za-z0-9_-]{70,90}", fullmatch=True))
_SAFE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@given(ANY_ID)
def test_sanitize_is_idempotent_and_safe(raw):
    safe = sanitize_id(raw)
    assert sanitize_id(safe) == safe
    assert 1 <= len(safe) <= MAX_ID_CHARS and set(safe) <= _SAFE_CHARS
    assert sample_key(safe, 0) == f"{safe}_00000"  # the 81+ character crash


def _variant(raw: str, how: int) -> str:
    """Another raw id that an unsafe sanitiser could map to the same key as ``raw``."""
    return [
        raw.replace(".", "/"), raw.replace(".", "-"), raw.strip(), raw + "-", raw + ".", " " + raw,
        raw[:MAX_ID_CHARS], raw + "z", raw[:-1], sanitize_id(raw) + "0",
    ][how]


_HASHED = re.compile(r"[A-Za-z0-9_-]*--[0-9a-f]{20}")


@given(ANY_ID, st.integers(-1, 9), ANY_ID)
def test_different_raw_ids_never_share_a_safe_id(a, how, other):
    b = other if how < 0 else _variant(a, how)
    for raw in (a, b):
        if sanitize_id(raw) != raw:  # a changed id always carries the hash of the raw id
            assert _HASHED.fullmatch(sanitize_id(raw))
    if a != b and sanitize_id(a) == sanitize_id(b):
        # the one case an idempotent sanitiser cannot avoid: one raw id is the other's
        # hashed safe form, written out as a raw id
        assert sanitize_id(a) in (a, b) and _HASHED.fullmatch(sanitize_id(a))


def test_ids_past_the_cap_that_differ_only_at_the_end_stay_apart():
    a, b = "v" * 100 + "a", "v" * 100 + "b"
    assert sanitize_id(a) != sanitize_id(b)
    assert sanitize_id("a-b") == "a-b" and sanitize_id("a/b") not in ("a-b", sanitize_id("a.b"))
    assert sanitize_id(" a") != sanitize_id("a") == "a"


def test_sample_key_refuses_unsanitised_ids():
    assert sample_key("abc", 7) == "abc_00007"
    with pytest.raises(ValueError):
        sample_key("a.b", 0)


def _jpeg(color) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buf, format="JPEG")
    return buf.getvalue()


def test_frames_pack_round_trip():
    jpegs = [_jpeg((255, 0, 0)), _jpeg((0, 255, 0)), _jpeg((0, 0, 255))]
    blob = pack_jpegs(jpegs)
    assert unpack_jpegs(blob) == jpegs
    frames = decode_frames(blob)
    assert frames.shape == (3, 24, 32, 3) and frames.dtype == np.uint8
    assert frames[0, 10, 10, 0] > 200 and frames[2, 10, 10, 2] > 200


def test_frames_pack_refuses_pickled_content():
    buf = io.BytesIO()
    np.savez(buf, offsets=np.array([0, 1]), data=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError):
        unpack_jpegs(buf.getvalue())


def test_frames_pack_refuses_inconsistent_offsets():
    buf = io.BytesIO()
    np.savez(buf, offsets=np.array([0, 50], dtype=np.int64), data=np.zeros(10, dtype=np.uint8))
    with pytest.raises(ValueError, match="offsets"):
        unpack_jpegs(buf.getvalue())
