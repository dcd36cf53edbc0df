"""Read-only random access to a built dataset, for the browser (``mhowto browse``).

Everything is read through the storage layer (a local folder or S3): the small files
(parquet indexes, stats, plan) whole and cached per process, lazily; a clip's members by
one ranged read of its byte span in its tar (``tar_offset``/``tar_size`` from the index),
never the whole tar. Names that reach storage are built here from validated keys and ids
(``[A-Za-z0-9_-]``, found in an index or a stats file), never taken from a request.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow.parquet as pq

from multihowto.pipeline.summary import committed_shards, read_stats
from multihowto.schemas.frames import unpack_jpegs
from multihowto.schemas.index import INDEX_SUFFIX, REPORT_DIR, TAR_SUFFIX
from multihowto.schemas.sample import FRAMES_EXT, JSON_EXT, LANGS, text_ext

SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
PLOT_NAME = re.compile(r"^[a-z0-9_]{1,64}\.png$")


class NotInDataset(LookupError):
    """A key, id or name that the dataset does not hold (the web app answers 404)."""


@dataclass(frozen=True)
class ClipFilter:
    """What the clips grid shows: languages present/missing, videos whose track in a
    language got the LID verdict ``uncertain`` (``any``: in any language), one video,
    and a case-insensitive text search over every language."""

    has: str = ""
    missing: str = ""
    uncertain: str = ""
    video: str = ""
    q: str = ""

    def __post_init__(self) -> None:
        for field in ("has", "missing"):
            value = getattr(self, field)
            if value and value not in LANGS:
                raise ValueError(f"{field}={value!r}: expected one of {', '.join(LANGS)}")
        if self.uncertain and self.uncertain != "any" and self.uncertain not in LANGS:
            raise ValueError(f"uncertain={self.uncertain!r}: expected 'any' or one of {', '.join(LANGS)}")
        if self.video and not SAFE_ID.match(self.video):
            raise ValueError(f"video={self.video!r}: not a video id")

    def matches(self, row: dict, verdicts: dict[str, str]) -> bool:
        """``row``: an index row; ``verdicts``: its video's LID verdict per language."""
        if self.video and row["video_id"] != self.video:
            return False
        if self.has and self.has not in row["langs"]:
            return False
        if self.missing and self.missing in row["langs"]:
            return False
        if self.uncertain:
            langs = LANGS if self.uncertain == "any" else (self.uncertain,)
            if not any(verdicts.get(lang) == "uncertain" for lang in langs):
                return False
        if self.q:
            needle = self.q.casefold()
            if not any(needle in (row[f"text_{lang}"] or "").casefold() for lang in LANGS):
                return False
        return True


@dataclass
class Clip:
    """One sample read from its tar span."""

    shard: str
    row: dict  # its index row
    meta: dict  # the sample's json member
    texts: dict[str, str]  # lang -> text, languages present only
    frames: list[bytes]  # JPEG files


class DatasetView:
    """A dataset in a storage (``pipeline/storage.py``), read lazily and cached.

    Safe to share between the threads of a web server: caches fill under a lock."""

    def __init__(self, storage, clip_cache: int = 64):
        self.storage = storage
        self.uri = storage.uri
        self._lock = threading.RLock()
        self._shards: list[str] | None = None
        self._indexes: dict[str, list[dict]] = {}
        self._by_key: dict[str, dict[str, dict]] = {}
        self._stats: dict[str, dict] = {}
        self._videos: dict[str, dict] | None = None
        self._clips: OrderedDict[str, Clip] = OrderedDict()
        self._clip_cache = clip_cache

    # -- small files -------------------------------------------------------------
    def shards(self) -> list[str]:
        """Committed shards (those with a parquet index), in unit order."""
        with self._lock:
            if self._shards is None:
                self._shards = sorted(n.removesuffix(INDEX_SUFFIX) for n in committed_shards(self.storage))
            return self._shards

    def index(self, shard: str) -> list[dict]:
        """The index rows of one shard, in video and clip order."""
        with self._lock:
            if shard not in self._indexes:
                if shard not in self.shards():
                    raise NotInDataset(f"no committed shard {shard!r}")
                with self.storage.open_random(shard + INDEX_SUFFIX) as f:  # S3: ranged reads
                    table = pq.ParquetFile(f).read()
                rows = sorted(table.to_pylist(), key=lambda r: (r["video_id"], r["clip_index"]))
                self._indexes[shard] = rows
                self._by_key[shard] = {r["key"]: r for r in rows}
            return self._indexes[shard]

    def stats(self, shard: str) -> dict:
        with self._lock:
            if shard not in self._stats:
                if shard not in self.shards():
                    raise NotInDataset(f"no committed shard {shard!r}")
                self._stats[shard] = read_stats(self.storage, shard + INDEX_SUFFIX)
            return self._stats[shard]

    def videos(self) -> dict[str, dict]:
        """video_id -> its latest stats entry (shards in unit order: a retry unit comes
        later), with ``shards``: every shard whose stats list the video."""
        with self._lock:
            if self._videos is None:
                videos: dict[str, dict] = {}
                for shard in self.shards():
                    for entry in self.stats(shard).get("per_video", []):
                        seen = videos.get(entry["video_id"], {}).get("shards", [])
                        videos[entry["video_id"]] = {**entry, "shards": [*seen, shard]}
                self._videos = videos
            return self._videos

    def video(self, video_id: str) -> dict:
        if not SAFE_ID.match(video_id) or video_id not in self.videos():
            raise NotInDataset(f"no video {video_id!r} in the dataset")
        return self.videos()[video_id]

    def plot(self, name: str) -> bytes:
        """A PNG of the dataset card (``_report/{name}``)."""
        if not PLOT_NAME.match(name) or not self.storage.exists(f"{REPORT_DIR}/{name}"):
            raise NotInDataset(f"no plot {name!r}")
        return self.storage.get_bytes(f"{REPORT_DIR}/{name}")

    def plots(self, names: tuple[str, ...]) -> list[str]:
        return [n for n in names if PLOT_NAME.match(n) and self.storage.exists(f"{REPORT_DIR}/{n}")]

    # -- clips -------------------------------------------------------------------
    def find(self, key: str) -> tuple[str, dict]:
        """(shard, index row) of a clip key, looked up in the shards that list its video."""
        if not SAFE_ID.match(key) or "_" not in key:
            raise NotInDataset(f"no clip {key!r}")
        video_id = key.rsplit("_", 1)[0]
        for shard in self.videos().get(video_id, {}).get("shards", []):
            self.index(shard)
            row = self._by_key[shard].get(key)
            if row is not None:
                return shard, row
        raise NotInDataset(f"no clip {key!r}")

    def video_clips(self, video_id: str) -> list[dict]:
        entry = self.video(video_id)
        return [r for shard in entry["shards"] for r in self.index(shard) if r["video_id"] == video_id]

    def iter_clips(self, flt: ClipFilter) -> Iterator[dict]:
        """Index rows that pass the filter, shard by shard (indexes load as needed)."""
        videos = self.videos() if flt.uncertain else {}
        shards = self.video(flt.video)["shards"] if flt.video else self.shards()
        for shard in shards:
            for row in self.index(shard):
                if flt.matches(row, videos.get(row["video_id"], {}).get("lid", {})):
                    yield row

    def page(self, flt: ClipFilter, page: int, per_page: int) -> tuple[list[dict], bool]:
        """One page (1-based) of matching rows and whether another page follows."""
        skip, rows = (page - 1) * per_page, []
        for row in self.iter_clips(flt):
            if skip:
                skip -= 1
                continue
            if len(rows) == per_page:
                return rows, True
            rows.append(row)
        return rows, False

    def clip(self, key: str) -> Clip:
        """A clip's members, by one ranged read of its span in its tar (cached)."""
        with self._lock:
            if key in self._clips:
                self._clips.move_to_end(key)
                return self._clips[key]
            shard, row = self.find(key)
            span = self.storage.get_range(shard + TAR_SUFFIX, row["tar_offset"], row["tar_size"])
            clip = parse_span(shard, row, span)
            self._clips[key] = clip
            while len(self._clips) > self._clip_cache:
                self._clips.popitem(last=False)
            return clip


def parse_span(shard: str, row: dict, span: bytes) -> Clip:
    """The members of one sample from its tar bytes (headers and padded data)."""
    members: dict[str, bytes] = {}
    prefix = row["key"] + "."
    try:
        with tarfile.open(fileobj=io.BytesIO(span), mode="r:") as tf:
            for m in tf:
                if m.isfile() and m.name.startswith(prefix):
                    members[m.name[len(prefix):]] = tf.extractfile(m).read()
    except tarfile.TarError as e:
        raise ValueError(f"{shard}{TAR_SUFFIX}: span of {row['key']} at {row['tar_offset']}: {e}") from e
    if JSON_EXT not in members:
        raise ValueError(f"{shard}{TAR_SUFFIX}: span of {row['key']} has no {JSON_EXT} member")
    texts = {lang: members[text_ext(lang)].decode("utf-8", "replace") for lang in LANGS if text_ext(lang) in members}
    try:
        meta = json.loads(members[JSON_EXT])
        frames = unpack_jpegs(members[FRAMES_EXT]) if FRAMES_EXT in members else []
    except (ValueError, OSError, KeyError, zipfile.BadZipFile) as e:  # what np.load raises on a bad .npz
        raise ValueError(f"{shard}{TAR_SUFFIX}: sample {row['key']}: {e}") from e
    return Clip(shard, row, meta, texts, frames)
