"""The sample format: keys, members and their encodings. Writers and readers import this.

A WebDataset sample is one clip, key ``{video_id}_{clip_index:05d}``:

- ``json``        clip metadata (see :func:`clip_json`)
- ``{lang}.txt``  UTF-8 text of the clip in each language present
- ``frames.npz``  the clip's frames as JPEGs, packed without pickle (see :mod:`.frames`)
- ``features.npy`` optional float16 T×D per-second features

Video ids are sanitised so that a key never contains ``/``, ``..`` or a dot (a dot would
split the key from its extension in WebDataset).
"""

from __future__ import annotations

import hashlib
import re

LANGS: tuple[str, ...] = ("en", "de", "fr", "ru", "es", "cs", "sw", "zh", "vi")
PIPELINE_VERSION = "0.1.0"

JSON_EXT = "json"
FRAMES_EXT = "frames.npz"
FEATURES_EXT = "features.npy"


def text_ext(lang: str) -> str:
    return f"{lang}.txt"


_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_SAFE = re.compile(r"[A-Za-z0-9_-]{1,80}")
MAX_ID_CHARS = 80
_DIGEST_BYTES = 10  # 20 hex digits: 80 bits, no birthday collision in a billion ids


def sanitize_id(raw: str) -> str:
    """A video id safe for a file name and a WebDataset key: 1-80 of ``[A-Za-z0-9_-]``.

    An id that is already such a string is kept as is. Any other id (unsafe characters,
    surrounding spaces, empty, longer than 80) becomes ``{readable part}--{20 hex}``, the
    hex a hash of the whole raw id; that result is itself safe, so sanitising is
    idempotent. Two raw ids therefore share a safe id only when one of them is the
    other's safe form (sanitising is idempotent, so that case cannot be avoided), or
    on an 80-bit hash collision. Never raises on a string input."""
    if _SAFE.fullmatch(raw):
        return raw
    digest = hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=_DIGEST_BYTES).hexdigest()
    room = MAX_ID_CHARS - len(digest) - 2
    readable = _UNSAFE.sub("-", raw[: room * 2]).strip("-")[:room].strip("-")
    return f"{readable or 'id'}--{digest}"


def sample_key(video_id: str, clip_index: int) -> str:
    if sanitize_id(video_id) != video_id:
        raise ValueError(f"video id {video_id!r} is not sanitised")
    return f"{video_id}_{clip_index:05d}"


def shard_name(unit: int) -> str:
    return f"shard-{unit:06d}"
