"""Features stage (optional): per-second embeddings from a torch backbone.

The backbone is a TorchScript file at ``features.model_path`` (nothing is downloaded).
Any torchvision model can be exported to one on a machine that has torchvision::

    torch.jit.script(torchvision.models.resnet18(weights=...).eval()).save("resnet18.pt")

and the head removed or kept as you like: whatever the module returns per image,
flattened, is the feature. Frames are normalised with ``mean``/``std``, run in batches
of ``batch_size`` on CUDA when present (``device: auto``), averaged per second when
``fps`` > 1, and stored per clip as ``features.npy`` (float16, T×D, no pickle).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from multihowto.operators.base import Operator, StageError
from multihowto.schemas.config import FeaturesConfig
from multihowto.schemas.frames import decode_frames
from multihowto.schemas.item import VideoItem


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def per_second(features: np.ndarray, fps: float) -> np.ndarray:
    """Average consecutive frames into one row per second of video (T×D -> S×D)."""
    step = max(1, int(round(fps)))
    if step == 1:
        return features
    n = -(-len(features) // step)
    return np.stack([features[i * step : (i + 1) * step].mean(axis=0) for i in range(n)])


class ExtractFeatures(Operator[FeaturesConfig]):
    name = "features"

    def __init__(self, config: FeaturesConfig, fps: float):
        super().__init__(config)
        self.fps = fps

    def setup(self) -> None:
        import torch

        cfg = self.config
        if cfg.device == "auto":
            self.device = "cuda" if torch.cuda.is_available() else "cpu"
        else:
            self.device = cfg.device
        try:
            self.model = torch.jit.load(cfg.model_path, map_location=self.device).eval()
        except (RuntimeError, ValueError, FileNotFoundError) as e:
            raise RuntimeError(f"features.model_path: cannot load TorchScript file {cfg.model_path!r}: {e}") from None
        self.mean = torch.tensor(cfg.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.std, device=self.device).view(1, 3, 1, 1)

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """uint8 (T, H, W, 3) -> float32 (T, D)."""
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), self.config.batch_size):
                x = torch.from_numpy(np.ascontiguousarray(frames[i : i + self.config.batch_size]))
                x = x.to(self.device).permute(0, 3, 1, 2).float().div_(255)
                x = (x - self.mean) / self.std
                out.append(self.model(x).flatten(1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def process(self, item: VideoItem) -> VideoItem:
        for clip in item.clips:
            frames = decode_frames(Path(clip.frames_path).read_bytes())
            if len(frames) == 0:
                raise StageError("no_frames", "a clip has no frame to embed")
            feats = per_second(self.embed(frames), self.fps)
            clip.features = npy_bytes(feats.astype(np.float16))
        return item
