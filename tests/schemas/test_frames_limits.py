"""A hostile ``frames.npz`` is refused from its zip directory and headers, before any
large allocation."""

import io
import tracemalloc
import zipfile

import numpy as np
import pytest
from PIL import Image

from multihowto.schemas.frames import decode_frames, pack_jpegs, unpack_jpegs


def _jpeg(size=(32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def _npy_header(dtype: str, n: int) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": (n,)})
    assert buf.getvalue().startswith(b"\x93NUMPY")
    return buf.getvalue()


def _npz(members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _offsets(*values) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array(values, dtype=np.int64))
    return buf.getvalue()


def peak_alloc(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    except ValueError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_deflate_bomb_is_refused_before_inflating():
    n = 300 * 1024 * 1024  # 300 MiB of zeros, deflated to a few hundred KB
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("offsets.npy", _offsets(0, n))
        with z.open("data.npy", "w", force_zip64=True) as f:
            f.write(_npy_header("|u1", n))
            chunk = bytes(1 << 20)
            for _ in range(300):
                f.write(chunk)
    blob = buf.getvalue()
    assert len(blob) < 2 * 1024 * 1024
    with pytest.raises(ValueError, match="'data.npy' inflates to"):
        unpack_jpegs(blob)
    assert peak_alloc(lambda: unpack_jpegs(blob)) < 8 * 1024 * 1024


def test_directory_claiming_gigabytes_is_refused():
    blob = bytearray(pack_jpegs([_jpeg(), _jpeg()]))
    cd = blob.rindex(b"PK\x01\x02", 0, blob.rindex(b"PK\x05\x06"))  # the last member's entry: data.npy
    assert blob[cd + 46 : cd + 46 + 8] == b"data.npy"
    blob[cd + 24 : cd + 28] = (4_000_000_000).to_bytes(4, "little")  # uncompressed size: ~3.7 GiB
    with pytest.raises(ValueError, match="'data.npy' inflates to 4000000000 bytes"):
        unpack_jpegs(bytes(blob))


def test_npy_header_claiming_billions_of_items_is_refused():
    blob = _npz({"offsets.npy": _offsets(0, 4), "data.npy": _npy_header("|u1", 6_000_000_000) + b"abcd"})
    with pytest.raises(ValueError, match="'data.npy' claims 6000000000 items"):
        unpack_jpegs(blob)
    assert peak_alloc(lambda: unpack_jpegs(blob)) < 1024 * 1024


def test_limits_on_frames_bytes_dtype_and_members():
    blob = pack_jpegs([_jpeg()] * 3)
    assert len(unpack_jpegs(blob)) == 3
    with pytest.raises(ValueError, match="'offsets.npy'"):
        unpack_jpegs(blob, max_frames=2)
    with pytest.raises(ValueError, match="'data.npy'"):
        unpack_jpegs(blob, max_bytes=100)
    with pytest.raises(ValueError, match="'data.npy' is"):
        unpack_jpegs(_npz({"offsets.npy": _offsets(0, 8), "data.npy": _offsets(0)}))
    with pytest.raises(ValueError, match="unexpected member 'x.npy'"):
        unpack_jpegs(_npz({"offsets.npy": _offsets(0), "data.npy": _npy_header("|u1", 0), "x.npy": b""}))
    with pytest.raises(ValueError, match="not a readable zip"):
        unpack_jpegs(b"PK\x03\x04 not really a zip")
    # a deflated pack (np.savez_compressed) of legitimate size still reads
    buf = io.BytesIO()
    np.savez_compressed(buf, offsets=np.array([0, len(_jpeg())], dtype=np.int64), data=np.frombuffer(_jpeg(), np.uint8))
    assert unpack_jpegs(buf.getvalue()) == [_jpeg()]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decode_refuses_huge_or_mixed_frames_from_their_headers():
    small = _jpeg((16, 16))
    sof = small.index(b"\xff\xc0")
    for side, match in ((12000, "12000x12000"), (20000, "frame 0 is not a readable image")):
        huge = bytearray(small)
        huge[sof + 5 : sof + 9] = side.to_bytes(2, "big") * 2  # height, width
        with pytest.raises(ValueError, match=match):
            decode_frames(pack_jpegs([bytes(huge)]))
        assert peak_alloc(lambda h=huge: decode_frames(pack_jpegs([bytes(h)]))) < 1024 * 1024
    with pytest.raises(ValueError, match="frame 1"):
        decode_frames(pack_jpegs([small, _jpeg((32, 24))]))
    assert decode_frames(pack_jpegs([small, small])).shape == (2, 16, 16, 3)
