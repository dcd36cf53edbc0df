"""Features from a TorchScript backbone loaded from a local path."""

import io

import numpy as np
import pytest
import torch

from multihowto.operators.features import ExtractFeatures, per_second
from multihowto.schemas.config import FeaturesConfig
from multihowto.schemas.frames import pack_jpegs
from multihowto.schemas.item import Clip, VideoItem


class TinyBackbone(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)
        self.fc = torch.nn.Linear(8, 16)

    def forward(self, x):
        return self.fc(self.conv(x).relu().mean(dim=(2, 3)))


def _save(path, seed):
    torch.manual_seed(seed)
    torch.jit.script(TinyBackbone().eval()).save(str(path))
    return path


def _frames_blob(n, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    jpegs = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
        jpegs.append(buf.getvalue())
    return pack_jpegs(jpegs)


def _op(model_path, fps=1.0):
    return ExtractFeatures(FeaturesConfig(enabled=True, model_path=str(model_path), batch_size=2, device="cpu"), fps)


def _run(op, blobs, tmp_path):
    clips = []
    for i, blob in enumerate(blobs):
        path = tmp_path / f"clip-{i}.frames.npz"
        path.write_bytes(blob)
        clips.append(Clip(index=i, start=i, end=i + 1, texts={}, confidence={}, frames_path=str(path)))
    [item] = op.process_batch([VideoItem("v", "", 0, clips=clips)])
    assert item.ok, item.failure
    return [np.load(io.BytesIO(c.features), allow_pickle=False) for c in item.clips]


def test_shapes_dtype_and_determinism(tmp_path):
    model = _save(tmp_path / "a.pt", 0)
    blobs = [_frames_blob(3), _frames_blob(5, seed=1)]
    a = _run(_op(model), blobs, tmp_path)
    b = _run(_op(model), blobs, tmp_path)
    assert [f.shape for f in a] == [(3, 16), (5, 16)]
    assert all(f.dtype == np.float16 for f in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_given_weights_are_the_ones_used(tmp_path):
    blobs = [_frames_blob(4)]
    a = _run(_op(_save(tmp_path / "a.pt", 0)), blobs, tmp_path)[0]
    b = _run(_op(_save(tmp_path / "b.pt", 1)), blobs, tmp_path)[0]
    assert not np.allclose(a, b)
    # and equal to running that very file by hand
    op = _op(tmp_path / "a.pt")
    op.setup()
    from multihowto.schemas.frames import decode_frames

    by_hand = op.embed(decode_frames(blobs[0]))
    np.testing.assert_allclose(a.astype(np.float32), by_hand, rtol=1e-2, atol=1e-3)


def test_per_second_averaging():
    feats = np.arange(10, dtype=np.float32).reshape(5, 2)
    assert per_second(feats, 1.0).shape == (5, 2)
    out = per_second(feats, 2.0)
    assert out.shape == (3, 2) and out[0, 0] == 1.0 and out[2, 0] == 8.0


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="features.model_path"):
        _op(tmp_path / "nope.pt").setup()
