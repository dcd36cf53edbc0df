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


def sanitize_id(raw: str) -> str:
    """A video id safe for a file name and a WebDataset key: only ``[A-Za-z0-9_-]``.

    Ids that had to be changed get a short hash suffix so that two different raw ids
    never map to the same safe id."""
    raw = raw.strip()
    safe = _UNSAFE.sub("-", raw).strip("-")[:80]
    if safe == raw and safe:
        return safe
    digest = hashlib.blake2b(raw.encode("utf-8"), digest_size=4).hexdigest()
    return f"{safe or 'id'}-{digest}"


def sample_key(video_id: str, clip_index: int) -> str:
    if sanitize_id(video_id) != video_id:
        raise ValueError(f"video id {video_id!r} is not sanitised")
    return f"{video_id}_{clip_index:05d}"


def shard_name(unit: int) -> str:
    return f"shard-{unit:06d}"
