"""Loaders for the paper's evaluation sets, from local paths in their released formats.

- **Multi-MSRVTT**: the JSFusion 1k-A test CSV (``key,vid_key,video_id,sentence``), the
  English caption in ``sentence``; the machine-translated captions as further columns
  ``eval_caption_{lang}`` in the same file (Multi-MSRVTT adds them per test video).
- **VATEX**: the public test JSON, a list of ``{"videoID", "enCap": [...], "chCap": [...]}``
  (10 captions each); every caption is a query for its video; ``en`` and ``zh``.
- **Multi30K** (text->image): aligned caption files ``{split}.{lang}`` (en, de, fr, cs),
  one per line, and the image list ``{split}.txt`` (the ``image_splits`` file).

Each gives an :class:`EvalSet`: the media items and, per language, the queries as
(item index, caption). :func:`evaluate_set` embeds the media from a local folder
(videos through our one-decode frame path, images as still frames) and scores
text->media and media->text per language.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from multihowto.trainer.evaluate import ranks, retrieval_metrics


@dataclass
class EvalSet:
    name: str
    media: str  # "video" or "image"
    items: list[str]  # media ids, gallery order
    queries: dict[str, list[tuple[int, str]]] = field(default_factory=dict)


def load_multi_msrvtt(csv_path: str | Path) -> EvalSet:
    items: list[str] = []
    queries: dict[str, list[tuple[int, str]]] = {}
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "video_id" not in reader.fieldnames:
            raise ValueError(f"{csv_path}: expected the JSFusion columns (key,vid_key,video_id,sentence)")
        langs = {"en": "sentence"} | {c[len("eval_caption_"):]: c for c in reader.fieldnames if c.startswith("eval_caption_")}
        for row in reader:
            items.append(row["video_id"])
            for lang, col in langs.items():
                if row.get(col):
                    queries.setdefault(lang, []).append((len(items) - 1, row[col].strip()))
    return EvalSet("multi-msrvtt", "video", items, queries)


def load_vatex(json_path: str | Path) -> EvalSet:
    data = json.loads(Path(json_path).read_text(encoding="utf-8"))
    items, queries = [], {"en": [], "zh": []}
    for entry in data:
        items.append(entry["videoID"])
        for lang, key in (("en", "enCap"), ("zh", "chCap")):
            for cap in entry.get(key, []):
                queries[lang].append((len(items) - 1, cap.strip()))
    return EvalSet("vatex", "video", items, {k: v for k, v in queries.items() if v})


def load_multi30k(folder: str | Path, split: str = "test_2016_flickr", langs=("en", "de", "fr", "cs")) -> EvalSet:
    folder = Path(folder)
    images = [line.strip() for line in (folder / f"{split}.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
    queries = {}
    for lang in langs:
        path = folder / f"{split}.{lang}"
        if not path.exists():
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) != len(images):
            raise ValueError(f"{path}: {len(lines)} captions for {len(images)} images")
        queries[lang] = [(i, line.strip()) for i, line in enumerate(lines)]
    return EvalSet("multi30k", "image", images, queries)


def media_frames(path: Path, media: str, n_frames: int, size: int) -> torch.Tensor:
    """uint8 (n_frames, 3, size, size): a video's frames spread evenly, or an image
    repeated."""
    from multihowto.trainer.data import decode_jpeg, pick_evenly

    if media == "image":
        frame = decode_jpeg(path.read_bytes(), size)
        frames = [frame] * n_frames
    else:
        from multihowto.operators.frames import decode_video
        from multihowto.schemas.config import FramesConfig

        jpegs = decode_video(str(path), FramesConfig(fps=1.0, size=max(size, 64)))
        frames = [decode_jpeg(jpegs[i], size) for i in pick_evenly(len(jpegs), n_frames)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def find_media(folder: Path, item: str) -> Path:
    for ext in ("", ".mp4", ".webm", ".mkv", ".avi", ".jpg", ".jpeg", ".png"):
        p = folder / f"{item}{ext}"
        if p.is_file():
            return p
    raise FileNotFoundError(f"no media file for {item!r} under {folder}")


@torch.no_grad()
def evaluate_set(model, tokenizer, evalset: EvalSet, media_dir: str | Path, device: str = "cpu") -> dict:
    """Text->media and media->text metrics per language (each media item's first
    caption in a language stands for it in media->text)."""
    model.eval()
    m = model.cfg
    videos = torch.stack([media_frames(find_media(Path(media_dir), item), evalset.media, m.n_frames, m.frame_size)
                          for item in evalset.items])
    v = torch.cat([model.video(videos[i : i + 64].to(device)).float().cpu() for i in range(0, len(videos), 64)])
    out = {}
    for lang, qs in evalset.queries.items():
        texts = [t for _, t in qs]
        emb = []
        for i in range(0, len(texts), 128):
            ids, mask = tokenizer.encode(texts[i : i + 128], m.max_len)
            emb.append(model.text(ids.to(device), mask.to(device)).float().cpu())
        t = torch.cat(emb)
        sim = t @ v.t()
        targets = torch.tensor([i for i, _ in qs])
        first = {}
        for q, (i, _) in enumerate(qs):
            first.setdefault(i, q)
        items = sorted(first)
        v2t = ranks(sim[[first[i] for i in items]][:, items].t(), torch.arange(len(items)))
        out[lang] = {"t2v": retrieval_metrics(ranks(sim, targets)), "v2t": retrieval_metrics(v2t)}
    return out
