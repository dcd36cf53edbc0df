"""``frames.npz``: a clip's JPEG frames in one member, readable without pickle.

An uncompressed NumPy ``.npz`` with two arrays:

- ``offsets``: int64, shape (T + 1,), byte offsets into ``data``; frame i is
  ``data[offsets[i]:offsets[i + 1]]``;
- ``data``: uint8, the T JPEG files concatenated.

``np.load(..., allow_pickle=False)`` reads it, so a hostile shard cannot execute code.
"""

from __future__ import annotations

import io

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


def unpack_jpegs(blob: bytes) -> list[bytes]:
    """The JPEG files of a ``frames.npz`` member; raises ValueError on a bad pack."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        offsets, data = z["offsets"], z["data"]
    if offsets.ndim != 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0) or offsets[-1] != data.size:
        raise ValueError("frames.npz: offsets do not describe data")
    raw = data.tobytes()
    return [raw[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]


def decode_frames(blob: bytes) -> np.ndarray:
    """Decode a ``frames.npz`` member to uint8 RGB frames, shape (T, H, W, 3)."""
    from PIL import Image

    frames = [np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in unpack_jpegs(blob)]
    if not frames:
        return np.zeros((0, 0, 0, 3), dtype=np.uint8)
    return np.stack(frames)
