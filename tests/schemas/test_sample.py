import io

import numpy as np
import pytest

from multihowto.schemas.frames import decode_frames, pack_jpegs, unpack_jpegs
from multihowto.schemas.sample import sample_key, sanitize_id


@pytest.mark.parametrize("raw", ["../../etc/passwd", "a/b", "x.y.z", "..", "id with space", "ü-ñ"])
def test_sanitized_ids_are_safe(raw):
    safe = sanitize_id(raw)
    assert "/" not in safe and "." not in safe and ".." not in safe
    assert safe and sanitize_id(safe) == safe


def test_sanitize_keeps_safe_ids_and_separates_colliding_ones():
    assert sanitize_id("dQw4w9WgXcQ") == "dQw4w9WgXcQ"
    assert sanitize_id("a/b") != sanitize_id("a.b")


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
