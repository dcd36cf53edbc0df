"""Stream multihowto shards into training, with webdataset and without pickle.

``clip_stream(cfg)`` yields one dict per clip: ``key``, ``video`` (uint8 tensor
(n_frames, 3, size, size), or float features (n_frames, D)), ``texts`` ({lang: text} for
the chosen languages) and ``video_id``. Shards come from a dataset folder (its committed
shards only), a brace pattern (``data/local/shard-{000000..000003}.tar``) or a list, on
local disk or S3 (``s3://bucket/prefix`` lists the committed shards there; objects stream
through boto3, credentials and ``AWS_ENDPOINT_URL`` from its usual chain); they are
split by node and by DataLoader worker; a shuffle buffer mixes samples. Each sample is
decoded by our own decoder from raw bytes: webdataset's auto-decoder, which can
unpickle, is never used, and no URL reaches a shell (no ``pipe:``).
"""

from __future__ import annotations

import functools
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass

import braceexpand
import numpy as np
import torch
import webdataset as wds
from webdataset.tariterators import group_by_keys, tar_file_expander

from multihowto.pipeline.storage import LocalStorage, open_storage, open_url
from multihowto.schemas.frames import unpack_jpegs
from multihowto.schemas.index import INDEX_SUFFIX, TAR_SUFFIX
from multihowto.schemas.sample import FEATURES_EXT, FRAMES_EXT, LANGS, text_ext


@dataclass(frozen=True)
class DataConfig:
    shards: str = "data/local"
    langs: tuple[str, ...] = LANGS
    lang_mode: str = "one"  # one: a random language among those present; all: every one
    n_frames: int = 4  # frames per clip, spread evenly (repeated when a clip has fewer)
    frame_size: int = 64
    use_features: bool = False
    shuffle: int = 500  # shuffle buffer; 0: stream order
    seed: int = 0
    s3_endpoint: str = ""  # S3-compatible endpoint; empty: boto3's default (or AWS_ENDPOINT_URL)
    videos: frozenset[str] | None = None  # only these videos' clips (a split); None: all


def shard_urls(spec: str | list[str], s3_endpoint: str = "") -> list[str]:
    """A dataset folder or ``s3://`` prefix (its committed shards only: those with an
    index), a brace pattern or a single shard (local or ``s3://``), or a list."""
    if isinstance(spec, list | tuple):
        return [str(s) for s in spec]
    if "{" not in spec and not spec.endswith(TAR_SUFFIX):
        storage = open_storage(spec, s3_endpoint, create=False)
        if not isinstance(storage, LocalStorage) or storage.root.is_dir():
            names = storage.list("shard-")
            return [storage.url(n.removesuffix(INDEX_SUFFIX) + TAR_SUFFIX) for n in names if n.endswith(INDEX_SUFFIX)]
    return list(braceexpand.braceexpand(spec))


def open_shard(url: str, s3_endpoint: str = ""):
    """A binary stream of one shard (a local path, ``file://`` or ``s3://``), through
    the storage layer; any other scheme (``pipe:``, ``http://``) is a ValueError."""
    return open_url(url, s3_endpoint)


def opened_shards(src, s3_endpoint: str = ""):
    """webdataset pipeline stage: {url} -> {url, stream}; each stream is closed once the
    tar reader asks for the next shard (it reads one shard to its end first)."""
    for item in src:
        stream = open_shard(item["url"], s3_endpoint)
        try:
            yield {**item, "stream": stream}
        finally:
            stream.close()


def decode_jpeg(data: bytes, size: int) -> np.ndarray:
    """Decode a JPEG straight to about ``size`` pixels (libjpeg's DCT scaling), then
    resize to exactly size×size. uint8 (size, size, 3)."""
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.draft("RGB", (size, size))
    img = img.convert("RGB")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img)


def pick_evenly(n_have: int, n_want: int) -> list[int]:
    if n_have <= 0:
        return []
    return [min(n_have - 1, int((i + 0.5) * n_have / n_want)) for i in range(n_want)]


def decode_sample(sample: dict, cfg: DataConfig, rng: random.Random) -> dict | None:
    """Raw webdataset sample -> training example; None when it has none of ``langs`` or
    is not among ``videos`` (checked before any frame is decoded)."""
    present = [lang for lang in cfg.langs if text_ext(lang) in sample]
    if not present:
        return None
    meta = json.loads(sample["json"])
    if cfg.videos is not None and meta["video_id"] not in cfg.videos:
        return None
    chosen = present if cfg.lang_mode == "all" else [rng.choice(present)]
    texts = {lang: sample[text_ext(lang)].decode("utf-8") for lang in chosen}
    if cfg.use_features:
        feats = np.load(io.BytesIO(sample[FEATURES_EXT]), allow_pickle=False).astype(np.float32)
        video = torch.from_numpy(feats[pick_evenly(len(feats), cfg.n_frames)])
    else:
        jpegs = unpack_jpegs(sample[FRAMES_EXT])
        frames = [decode_jpeg(jpegs[i], cfg.frame_size) for i in pick_evenly(len(jpegs), cfg.n_frames)]
        video = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
    return {"key": sample["__key__"], "video_id": meta["video_id"], "video": video, "texts": texts}


def clip_stream(cfg: DataConfig, epoch: int = 0) -> Iterator[dict]:
    """Decoded clips from the shards, split by node and by DataLoader worker."""
    urls = shard_urls(cfg.shards, cfg.s3_endpoint)
    if not urls:
        raise FileNotFoundError(f"no committed shard under {cfg.shards!r}")
    stages = [wds.SimpleShardList(urls), wds.split_by_node, wds.split_by_worker]
    if cfg.shuffle:
        stages.append(wds.shuffle(len(urls), seed=cfg.seed + epoch))  # shard order
    stages += [functools.partial(opened_shards, s3_endpoint=cfg.s3_endpoint), tar_file_expander, group_by_keys]
    if cfg.shuffle:
        stages.append(wds.shuffle(cfg.shuffle, rng=random.Random(cfg.seed + epoch)))
    ds = wds.DataPipeline(*stages)
    rng = random.Random(cfg.seed * 1000 + epoch)
    for sample in ds:  # raw bytes: no decoder is attached
        out = decode_sample(sample, cfg, rng)
        if out is not None:
            yield out


class ClipDataset(torch.utils.data.IterableDataset):
    """``clip_stream`` as an IterableDataset for a DataLoader (workers split shards).

    One pass by default: call ``set_epoch`` before each pass for a new shard and sample
    order. ``repeat=True``: each worker goes on by itself from ``set_epoch``'s epoch to
    the next, for ever, so one DataLoader iterator (its workers started once) serves a
    whole training run; a worker whose shards hold no chosen clip stops instead of
    spinning."""

    def __init__(self, cfg: DataConfig, repeat: bool = False):
        self.cfg = cfg
        self.repeat = repeat
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if not self.repeat:
            yield from clip_stream(self.cfg, self.epoch)
            return
        epoch = self.epoch
        while True:
            empty = True
            for clip in clip_stream(self.cfg, epoch):
                empty = False
                yield clip
            if empty:
                return
            epoch += 1


def collate(batch: list[dict]) -> dict:
    return {
        "key": [b["key"] for b in batch],
        "video_id": [b["video_id"] for b in batch],
        "video": torch.stack([b["video"] for b in batch]),
        "texts": [b["texts"] for b in batch],
    }
