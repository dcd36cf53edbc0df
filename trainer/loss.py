"""Contrastive losses: symmetric InfoNCE between any two aligned batches of embeddings.

Under ``torchrun`` each process holds its own rows; ``world`` gathers the other
processes' rows as extra negatives (see :mod:`.distributed`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from multihowto.trainer.distributed import ALONE, World, gather


def info_nce(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor, world: World = ALONE) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``a`` matches row i of ``b`` (both unit norm, (B, D)),
    every other row of the global batch is a negative."""
    target = torch.arange(a.shape[0], device=a.device) + world.rank * a.shape[0]
    if world.size == 1:
        logits = scale * a @ b.t()
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    a_to_b = scale * a @ gather(b, world).t()
    b_to_a = scale * b @ gather(a, world).t()
    return (F.cross_entropy(a_to_b, target) + F.cross_entropy(b_to_a, target)) / 2


def video_text_loss(video: torch.Tensor, text: torch.Tensor, scale: torch.Tensor,
                    text_b: torch.Tensor | None = None, xling_weight: float = 0.0,
                    world: World = ALONE) -> dict[str, torch.Tensor]:
    """Text<->video InfoNCE, plus the cross-lingual text<->text term between two
    translations of the same clip (the video as pivot) when ``text_b`` is given."""
    tv = info_nce(text, video, scale, world)
    out = {"tv": tv, "loss": tv}
    if text_b is not None and xling_weight > 0:
        tt = info_nce(text, text_b, scale, world)
        out["tt"] = tt
        out["loss"] = tv + xling_weight * tt
    return out
