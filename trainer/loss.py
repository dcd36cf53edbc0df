"""Contrastive losses: symmetric InfoNCE between any two aligned batches of embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``a`` matches row i of ``b`` (both unit norm, (B, D))."""
    logits = scale * a @ b.t()
    target = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def video_text_loss(video: torch.Tensor, text: torch.Tensor, scale: torch.Tensor,
                    text_b: torch.Tensor | None = None, xling_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Text<->video InfoNCE, plus the cross-lingual text<->text term between two
    translations of the same clip (the video as pivot) when ``text_b`` is given."""
    tv = info_nce(text, video, scale)
    out = {"tv": tv, "loss": tv}
    if text_b is not None and xling_weight > 0:
        tt = info_nce(text, text_b, scale)
        out["tt"] = tt
        out["loss"] = tv + xling_weight * tt
    return out
