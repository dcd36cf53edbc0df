"""Stream multihowto shards into training, with webdataset and without pickle.

``clip_stream(cfg)`` yields one dict per clip: ``key``, ``video`` (uint8 tensor
(n_frames, 3, size, size), or float features (n_frames, D)), ``texts`` ({lang: text} for
the chosen languages) and ``video_id``. Shards come from a dataset folder (its committed
shards only), a brace pattern (``data/local/shard-{000000..000003}.tar``) or a list; they
are split by node and by DataLoader worker; a shuffle buffer mixes samples. Each sample
is decoded by our own decoder from raw bytes: webdataset's auto-decoder, which can
unpickle, is never used.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import webdataset as wds

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


def shard_urls(spec: str | list[str]) -> list[str]:
    """A dataset folder (committed shards only), a brace pattern, or a list."""
    if isinstance(spec, list | tuple):
        return [str(s) for s in spec]
    path = Path(spec)
    if path.is_dir():
        return [str(p.with_suffix(TAR_SUFFIX)) for p in sorted(path.glob(f"shard-*{INDEX_SUFFIX}"))]
    import braceexpand

    return list(braceexpand.braceexpand(spec))


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
    """Raw webdataset sample -> training example; None when it has none of ``langs``."""
    present = [lang for lang in cfg.langs if text_ext(lang) in sample]
    if not present:
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
    meta = json.loads(sample["json"])
    return {"key": sample["__key__"], "video_id": meta["video_id"], "video": video, "texts": texts}


def clip_stream(cfg: DataConfig, epoch: int = 0) -> Iterator[dict]:
    """Decoded clips from the shards, split by node and by DataLoader worker."""
    urls = shard_urls(cfg.shards)
    if not urls:
        raise FileNotFoundError(f"no committed shard under {cfg.shards!r}")
    ds = wds.WebDataset(
        urls,
        shardshuffle=len(urls) if cfg.shuffle else False,
        nodesplitter=wds.split_by_node,
        workersplitter=wds.split_by_worker,
        empty_check=False,
        seed=cfg.seed + epoch,
    )
    if cfg.shuffle:
        ds = ds.shuffle(cfg.shuffle, rng=random.Random(cfg.seed + epoch))
    rng = random.Random(cfg.seed * 1000 + epoch)
    for sample in ds:  # raw bytes: no decoder is attached
        out = decode_sample(sample, cfg, rng)
        if out is not None:
            yield out


class ClipDataset(torch.utils.data.IterableDataset):
    """``clip_stream`` as an IterableDataset for a DataLoader (workers split shards).
    Call ``set_epoch`` before each epoch for a new shard and sample order."""

    def __init__(self, cfg: DataConfig):
        self.cfg = cfg
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return clip_stream(self.cfg, self.epoch)


def collate(batch: list[dict]) -> dict:
    return {
        "key": [b["key"] for b in batch],
        "video_id": [b["video_id"] for b in batch],
        "video": torch.stack([b["video"] for b in batch]),
        "texts": [b["texts"] for b in batch],
    }
