"""Retrieval metrics in the paper's conventions, and evaluation on a split of clips.

R@K = 100 x the share of queries whose true item ranks in the top K; MedR = the median
rank (1-based). Text->video uses the similarity matrix (queries x gallery), video->text
its transpose. A rank counts the items scored strictly higher than the true one, so ties
do not help. The multilingual figure is the mean of the per-language figures.
"""

from __future__ import annotations

import statistics

import torch

from multihowto.schemas.sample import LANGS


def ranks(sim: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1-based rank of each row's target column in ``sim`` (Q, G)."""
    true = sim.gather(1, targets.view(-1, 1))
    return (sim > true).sum(dim=1) + 1


def retrieval_metrics(r: torch.Tensor) -> dict[str, float]:
    r = r.float()
    return {
        "R@1": 100 * (r <= 1).float().mean().item(),
        "R@5": 100 * (r <= 5).float().mean().item(),
        "R@10": 100 * (r <= 10).float().mean().item(),
        "MedR": float(r.median().item()) if len(r) % 2 else float(statistics.median(r.tolist())),
        "n": len(r),
    }


@torch.no_grad()
def embed_clips(model, tokenizer, clips: list[dict], langs: tuple[str, ...], device: str, batch: int = 64):
    """Video embeddings (N, D) and, per language, (clip indices, text embeddings)."""
    model.eval()
    videos = []
    for i in range(0, len(clips), batch):
        v = torch.stack([c["video"] for c in clips[i : i + batch]]).to(device)
        videos.append(model.video(v).float().cpu())
    texts = {}
    for lang in langs:
        idx = [i for i, c in enumerate(clips) if lang in c["texts"]]
        if not idx:
            continue
        embs = []
        for j in range(0, len(idx), batch):
            ids, mask = tokenizer.encode([clips[i]["texts"][lang] for i in idx[j : j + batch]], model.cfg.max_len)
            embs.append(model.text(ids.to(device), mask.to(device)).float().cpu())
        texts[lang] = (torch.tensor(idx), torch.cat(embs))
    return torch.cat(videos), texts


def evaluate_clips(model, tokenizer, clips: list[dict], langs: tuple[str, ...] = LANGS, device: str = "cpu") -> dict:
    """t2v and v2t metrics per language over ``clips`` (each its own gallery item)."""
    video, texts = embed_clips(model, tokenizer, clips, langs, device)
    out = {}
    for lang, (idx, text) in texts.items():
        sim = text @ video.t()  # (queries, all clips)
        t2v = retrieval_metrics(ranks(sim, idx))
        # video->text: each clip that has a caption in this language against those captions
        v2t = retrieval_metrics(ranks(sim[:, idx].t(), torch.arange(len(idx))))
        out[lang] = {"t2v": t2v, "v2t": v2t}
    return out


def mean_over(results: dict, langs, direction: str = "t2v", metric: str = "R@1") -> float:
    vals = [results[lang][direction][metric] for lang in langs if lang in results]
    return sum(vals) / len(vals) if vals else float("nan")
