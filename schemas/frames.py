"""``frames.npz``: a clip's JPEG frames in one member, readable without pickle.

An uncompressed NumPy ``.npz`` with two arrays:

- ``offsets``: int64, shape (T + 1,), byte offsets into ``data``; frame i is
  ``data[offsets[i]:offsets[i + 1]]``;
- ``data``: uint8, the T JPEG files concatenated.

``np.load(..., allow_pickle=False)`` reads it, so a hostile shard cannot execute code.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

# The per-channel mean and std (RGB, 0..1) that ImageNet-trained backbones expect;
# the features stage and the trainer's frame encoder normalise frames with them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def pack_jpegs(jpegs: list[bytes]) -> bytes:
    offsets = np.zeros(len(jpegs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(j) for j in jpegs])
    data = np.frombuffer(b"".join(jpegs), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez(buf, offsets=offsets, data=data)
    return buf.getvalue()


# What a reader accepts from a ``frames.npz``, checked against the zip directory and each
# member's .npy header before anything is inflated or allocated: a shard is untrusted.
MAX_FRAMES = 10_000  # frames in one clip (a whole 2-hour video at 1 fps is 7200)
MAX_BYTES = 256 * 1024 * 1024  # JPEG bytes in one clip
MAX_FRAME_PIXELS = 4096 * 4096  # one decoded frame
MAX_DECODED_BYTES = 2 * 1024**3  # one clip's decoded RGB frames
_NPY_HEADER_MAX = 64 * 1024  # numpy's own cap on a .npy header


def _read_member(z: zipfile.ZipFile, name: str, kind: str, max_items: int, itemsize: int) -> np.ndarray:
    """One 1-D array member of at most ``max_items`` items of up to ``itemsize`` bytes, its
    size checked on the zip directory, then its .npy header, before it is used."""
    try:
        info = z.getinfo(name)
    except KeyError:
        raise ValueError(f"frames.npz: no member {name!r}") from None
    limit = max_items * itemsize + _NPY_HEADER_MAX
    if info.file_size > limit:
        raise ValueError(f"frames.npz: member {name!r} inflates to {info.file_size} bytes, over the limit of {limit}")
    raw = z.read(info)  # zipfile yields at most file_size bytes and checks the CRC
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f".npy version {version}")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
    except ValueError as e:
        raise ValueError(f"frames.npz: member {name!r} has no valid .npy header ({e})") from None
    if dtype.kind != kind or dtype.itemsize > itemsize or len(shape) != 1:
        raise ValueError(f"frames.npz: member {name!r} is {dtype} {shape}, expected a 1-D {kind} array")
    if shape[0] > max_items or shape[0] * dtype.itemsize != len(raw) - f.tell():
        raise ValueError(f"frames.npz: member {name!r} claims {shape[0]} items in {len(raw) - f.tell()} bytes")
    return np.frombuffer(raw, dtype=dtype, count=shape[0], offset=f.tell())


def unpack_jpegs(blob: bytes, max_frames: int = MAX_FRAMES, max_bytes: int = MAX_BYTES) -> list[bytes]:
    """The JPEG files of a ``frames.npz`` member; raises ValueError, naming the member, on a
    bad pack or one over ``max_frames`` frames or ``max_bytes`` bytes (checked on the zip
    directory and the .npy headers before anything is inflated)."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            extra = sorted(set(z.namelist()) - {"offsets.npy", "data.npy"})
            if extra:
                raise ValueError(f"frames.npz: unexpected member {extra[0]!r}")
            offsets = _read_member(z, "offsets.npy", "i", max_frames + 1, 8).astype(np.int64)
            data = _read_member(z, "data.npy", "u", max_bytes, 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError, RuntimeError) as e:
        raise ValueError(f"frames.npz: not a readable zip ({e})") from None
    if offsets.size == 0 or offsets[0] != 0 or np.any(np.diff(offsets) < 0) or offsets[-1] != data.size:
        raise ValueError("frames.npz: offsets do not describe data")
    raw = data.tobytes()
    return [raw[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def decode_frames(blob: bytes, max_frame_pixels: int = MAX_FRAME_PIXELS,
                  max_decoded_bytes: int = MAX_DECODED_BYTES) -> np.ndarray:
    """Decode a ``frames.npz`` member to uint8 RGB frames, shape (T, H, W, 3). Raises
    ValueError on a bad pack, frames of different sizes, a frame over ``max_frame_pixels``
    or frames over ``max_decoded_bytes`` in all (read from the JPEG headers first)."""
    from PIL import Image

    images = []
    for i, jpeg in enumerate(unpack_jpegs(blob)):
        try:
            images.append(Image.open(io.BytesIO(jpeg)))  # reads the header only
        except (OSError, Image.DecompressionBombError) as e:
            raise ValueError(f"frames.npz: frame {i} is not a readable image ({e})") from None
    if not images:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        if im.size != images[0].size:
            raise ValueError(f"frames.npz: frame {i} is {im.size}, frame 0 is {images[0].size}")
    w, h = images[0].size
    if w * h > max_frame_pixels or len(images) * w * h * 3 > max_decoded_bytes:
        raise ValueError(f"frames.npz: {len(images)} frames of {w}x{h} exceed the decode limits")
    try:
        return np.stack([np.asarray(im.convert("RGB")) for im in images])
    except OSError as e:  # a header that reads, over data that does not
        raise ValueError(f"frames.npz: a frame does not decode ({e})") from None
