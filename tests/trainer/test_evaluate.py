"""Metrics against ranks computed by hand."""

import torch

from multihowto.trainer.evaluate import mean_over, ranks, retrieval_metrics


def test_ranks_and_metrics_by_hand():
    # 4 queries x 5 gallery items; targets 0, 1, 2, 3
    sim = torch.tensor([
        [0.9, 0.1, 0.2, 0.3, 0.0],   # target 0 best              -> rank 1
        [0.5, 0.4, 0.6, 0.1, 0.0],   # 0.5 and 0.6 beat 0.4       -> rank 3
        [0.1, 0.2, 0.3, 0.4, 0.5],   # 0.4 and 0.5 beat 0.3       -> rank 3
        [0.7, 0.7, 0.7, 0.7, 0.8],   # ties do not help; 0.8 wins -> rank 2
    ])
    r = ranks(sim, torch.tensor([0, 1, 2, 3]))
    assert r.tolist() == [1, 3, 3, 2]
    m = retrieval_metrics(r)
    assert m["R@1"] == 25.0 and m["R@5"] == 100.0 and m["R@10"] == 100.0
    assert m["MedR"] == 2.5  # median of 1, 2, 3, 3
    assert retrieval_metrics(torch.tensor([4, 1, 9]))["MedR"] == 4.0


def test_video_to_text_is_the_transpose():
    sim = torch.tensor([[0.9, 0.8], [0.95, 0.1]])  # rows: texts, columns: videos
    t2v = ranks(sim, torch.tensor([0, 1]))
    v2t = ranks(sim.t(), torch.tensor([0, 1]))
    assert t2v.tolist() == [1, 2] and v2t.tolist() == [2, 2]  # video 0 prefers text 1, video 1 text 0


def test_mean_over_languages():
    res = {"en": {"t2v": {"R@1": 10.0}}, "de": {"t2v": {"R@1": 30.0}}}
    assert mean_over(res, ["en", "de"]) == 20.0
    assert mean_over(res, ["de", "fr"]) == 30.0  # absent languages are skipped
