"""The video-text model: a text transformer over the shared multilingual vocabulary, a
video encoder over frames (a small CNN per frame) or features, each with a transformer
and pooling, projected into one joint space. ``ModelConfig`` describes it fully and is
stored in every checkpoint."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from multihowto.schemas.frames import IMAGENET_MEAN, IMAGENET_STD


@dataclass
class ModelConfig:
    vocab_size: int = 4000
    max_len: int = 32
    d_model: int = 128
    n_heads: int = 4
    text_layers: int = 2
    video_layers: int = 1
    n_frames: int = 2
    frame_size: int = 48
    feature_dim: int = 0  # > 0: the video input is (T, feature_dim) features, not frames
    embed_dim: int = 128
    dropout: float = 0.1


def _encoder(cfg: ModelConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        cfg.d_model, cfg.n_heads, 4 * cfg.d_model, cfg.dropout, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class FrameCNN(nn.Module):
    """(N, 3, S, S) uint8 frames -> (N, d_model)."""

    def __init__(self, d_model: int):
        super().__init__()
        chans = [3, 32, 64, 128, 128]
        blocks = []
        for cin, cout in zip(chans, chans[1:], strict=False):
            blocks += [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.GELU()]
        self.net = nn.Sequential(*blocks)
        self.out = nn.Linear(chans[-1], d_model)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x.float() - self.mean) / self.std
        return self.out(self.net(x).mean(dim=(2, 3)))


class VideoEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.frame = nn.Linear(cfg.feature_dim, cfg.d_model) if cfg.feature_dim else FrameCNN(cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(1, cfg.n_frames + 1, cfg.d_model))
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.d_model))
        self.encoder = _encoder(cfg, cfg.video_layers)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.embed_dim)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, S, S) frames or (B, T, D) features -> (B, embed_dim), unit norm."""
        b, t = video.shape[:2]
        x = self.frame(video.flatten(0, 1)).view(b, t, -1)
        x = torch.cat([self.cls.expand(b, -1, -1), x], dim=1) + self.pos[:, : t + 1]
        x = self.norm(self.encoder(x))[:, 0]  # the [CLS] slot pools the frames
        return F.normalize(self.proj(x), dim=-1)


class TextEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(1, cfg.max_len, cfg.d_model))
        self.encoder = _encoder(cfg, cfg.text_layers)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.embed_dim)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids and mask -> (B, embed_dim), unit norm (masked mean pooling)."""
        x = self.tok(ids) + self.pos[:, : ids.shape[1]]
        x = self.norm(self.encoder(x, src_key_padding_mask=~mask))
        m = mask.unsqueeze(-1).float()
        x = (x * m).sum(1) / m.sum(1).clamp(min=1)
        return F.normalize(self.proj(x), dim=-1)


class VideoTextModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.video = VideoEncoder(cfg)
        self.text = TextEncoder(cfg)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        nn.init.normal_(self.text.pos, std=0.02)
        nn.init.normal_(self.video.pos, std=0.02)

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=100)

    def forward(self, video: torch.Tensor, text_a: tuple[torch.Tensor, torch.Tensor],
                text_b: tuple[torch.Tensor, torch.Tensor] | None = None):
        """A training step's embeddings in one call (what DDP wraps): the video, one text
        per clip, optionally a second text per clip (another language), and the scale."""
        v, ta = self.video(video), self.text(*text_a)  # this order: the dropout masks follow it
        tb = self.text(*text_b) if text_b is not None else None
        return v, ta, tb, self.scale()

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
