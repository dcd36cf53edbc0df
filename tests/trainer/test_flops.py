"""The FLOP count behind the trainer's TFLOP/s and MFU figures, checked by hand."""

import torch

from multihowto.trainer.flops import count_flops, matmul_tflops, peak_for_name
from multihowto.trainer.model import ModelConfig, VideoTextModel
from multihowto.trainer.train import throughput, train_step


def test_a_training_step_counts_the_flops_computed_by_hand():
    # A feature-input model small enough that attention (the L^2 terms) weighs in.
    b, length, d, e, t, f, vocab, heads = 4, 64, 16, 8, 4, 8, 50, 2
    cfg = ModelConfig(vocab_size=vocab, max_len=length, d_model=d, n_heads=heads, text_layers=1, video_layers=1,
                      n_frames=t, feature_dim=f, embed_dim=e)
    torch.manual_seed(0)
    model = VideoTextModel(cfg).train()
    opt = torch.optim.AdamW(model.parameters())
    ids = torch.randint(4, vocab, (b, length))
    mask = torch.arange(length).unsqueeze(0) < torch.tensor([[64], [40], [10], [33]])
    video = torch.randn(b, t, f)

    def layer(n):  # one encoder layer over n tokens: QKV, attention, output, 4x FFN (2 flops per MAC)
        return 2 * n * d * (3 * d + d + 4 * d + 4 * d) + 2 * (2 * n * n * d)

    text = layer(length) + 2 * d * e
    frames_in = 2 * t * f * d
    video_fwd = frames_in + layer(t + 1) + 2 * d * e
    logits = 2 * b * b * e  # one (B, e) @ (e, B) per InfoNCE term
    forward = b * (video_fwd + text) + logits
    # backward is twice the forward (input and weight gradients), except the first video
    # layer, whose input (the features) needs no gradient
    one_text = 3 * forward - b * frames_in
    _, counted = count_flops(lambda: train_step(model, opt, video, (ids, mask), None, 0.5, 1.0, False))
    assert counted == one_text
    # the cross-lingual term adds a second text tower pass and a second logits product
    _, counted = count_flops(lambda: train_step(model, opt, video, (ids, mask), (ids, mask), 0.5, 1.0, False))
    assert counted == one_text + 3 * (b * text + logits)


def test_peak_lookup_prefers_the_specific_name():
    assert peak_for_name("NVIDIA H100 PCIe") == 756.0
    assert peak_for_name("NVIDIA H100 80GB HBM3") == 989.4
    assert peak_for_name("NVIDIA L40S") == 362.0 and peak_for_name("NVIDIA L4") == 121.0
    assert peak_for_name("Tesla T4") is None


def test_throughput_figures():
    assert throughput(0, 0, 1.0, 989.4) == {"samples_per_s": None, "tflops": None}
    r = throughput(640, 3 * 10**12, 2.0, 100.0)
    assert r == {"samples_per_s": 320.0, "tflops": 1.5, "mfu": 0.015}
    assert "mfu" not in throughput(640, 3 * 10**12, 2.0, None)
    assert matmul_tflops("cpu", 128, iters=2) > 0
