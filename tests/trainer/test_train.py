"""Tokenizer, loader and a few training steps on the pipeline's sample shards (CPU)."""

import json

import pytest
import torch
from PIL import Image

from multihowto.schemas.sample import LANGS
from multihowto.trainer.data import DataConfig, clip_stream, shard_urls
from multihowto.trainer.evaluate import evaluate_clips
from multihowto.trainer.tokenizer import Tokenizer, corpus_texts
from multihowto.trainer.train import (
    TrainConfig,
    load_checkpoint,
    main,
    parse_args,
    read_history,
    train,
)

pytestmark = pytest.mark.slow


def test_tokenizer_covers_every_language(shards):
    out, tok_path = shards
    texts = corpus_texts(out)
    assert set(texts) == set(LANGS) and all(texts[lang] for lang in ("en", "zh", "vi"))
    tok = Tokenizer(tok_path)
    ids, mask = tok.encode([texts["zh"][0], texts["ru"][0]], 16)
    assert ids.shape == (2, 16) and mask[:, 0].all()
    assert tok.sp.decode(ids[0][mask[0]].tolist()[1:-1]) == texts["zh"][0]  # round trip, no spaces added


def test_loader_streams_clips_with_one_or_all_languages(shards):
    out, _ = shards
    one = list(clip_stream(DataConfig(shards=str(out), lang_mode="one", n_frames=3, frame_size=32, shuffle=10)))
    assert len(one) > 20 and all(len(c["texts"]) == 1 for c in one)
    assert one[0]["video"].shape == (3, 3, 32, 32) and one[0]["video"].dtype == torch.uint8
    every = list(clip_stream(DataConfig(shards=str(out), lang_mode="all", shuffle=0)))
    assert max(len(c["texts"]) for c in every) == 9
    en_only = list(clip_stream(DataConfig(shards=str(out), langs=("en",), shuffle=0)))
    assert all(set(c["texts"]) == {"en"} for c in en_only)


def test_dataloader_workers_split_shards_and_epochs_reshuffle(shards):
    from multihowto.trainer.data import ClipDataset, collate

    out, _ = shards
    cfg = DataConfig(shards=str(out), n_frames=2, frame_size=32, shuffle=50, seed=1)
    ds = ClipDataset(cfg)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate)
    first = [k for b in loader for k in b["key"]]
    assert len(first) == len(set(first)) == len(list(clip_stream(DataConfig(shards=str(out), shuffle=0))))
    ds.set_epoch(1)
    second = [k for b in loader for k in b["key"]]
    assert sorted(second) == sorted(first) and second != first


def test_a_repeating_dataset_goes_on_epoch_after_epoch_and_stops_only_when_empty(shards):
    """repeat=True: one iterator serves many epochs, each one every clip once in a new
    order; workers with no shard of their own end instead of spinning."""
    from multihowto.trainer.data import ClipDataset

    out, _ = shards
    cfg = DataConfig(shards=str(out), n_frames=2, frame_size=32, shuffle=50, seed=1)
    n = len(list(clip_stream(DataConfig(shards=str(out), shuffle=0))))
    ds = ClipDataset(cfg, repeat=True)
    ds.set_epoch(5)
    it = iter(ds)
    epochs = [[next(it)["key"] for _ in range(n)] for _ in range(3)]
    assert all(sorted(e) == sorted(epochs[0]) and len(set(e)) == n for e in epochs)
    assert len({tuple(e) for e in epochs}) == 3
    assert epochs[0] == [c["key"] for c in clip_stream(cfg, epoch=5)]  # set_epoch picks the first
    # more workers than shards: the idle ones stop, the others go on for ever
    one_shard = DataConfig(shards=shard_urls(str(out))[0], n_frames=2, frame_size=32, shuffle=0)
    m = len(list(clip_stream(one_shard)))
    loader = torch.utils.data.DataLoader(ClipDataset(one_shard, repeat=True), batch_size=1, num_workers=2, collate_fn=list)
    taken = [b[0]["key"] for b, _ in zip(loader, range(3 * m), strict=False)]
    assert len(taken) == 3 * m and all(taken.count(k) == 3 for k in set(taken))
    # no chosen clip anywhere: the stream ends (and training says why) instead of hanging
    none = DataConfig(shards=str(out), videos=frozenset({"no-such-video"}))
    assert list(ClipDataset(none, repeat=True)) == []


def test_a_split_of_videos_is_chosen_before_decoding(shards):
    out, _ = shards
    every = list(clip_stream(DataConfig(shards=str(out), shuffle=0)))
    chosen = frozenset(sorted({c["video_id"] for c in every})[:3])
    some = list(clip_stream(DataConfig(shards=str(out), shuffle=0, videos=chosen)))
    assert [c["key"] for c in some] == [c["key"] for c in every if c["video_id"] in chosen] and 0 < len(some) < len(every)


def test_streaming_training_learns_and_resumes(shards, tmp_path):
    """--stream: a DataLoader of two workers, started once, decodes the shards every epoch."""
    out, tok = shards
    ids = tmp_path / "ids.txt"
    every = list(clip_stream(DataConfig(shards=str(out), shuffle=0)))
    ids.write_text("\n".join(sorted({c["video_id"] for c in every})[:-2]))
    # the fixture's dataset is small (about 30 clips): batches of 6 keep several per epoch
    cfg = TrainConfig(data=str(out), tokenizer=str(tok), out_dir=str(tmp_path / "run"), steps=60, batch_size=6, log_every=10,
                      lr=2e-3, warmup=5, stream=True, workers=2, shuffle_buffer=16, videos=str(ids))
    summary = train(cfg, log=lambda *_: None)
    losses = [h["loss"] for h in summary["history"]]
    assert summary["steps"] == 60 and summary["clips"] is None
    assert sum(losses[-3:]) / 3 < losses[0] * 0.85, losses  # one batch of 6 per record: noisy, so a mean
    more = train(TrainConfig(**{**cfg.__dict__, "steps": 70}), log=lambda *_: None)
    assert [h["step"] for h in more["history"]] == [70]
    nothing = tmp_path / "none.txt"
    nothing.write_text("no-such-video\n")
    with pytest.raises(ValueError, match="no chosen clip"):
        train(TrainConfig(**{**cfg.__dict__, "videos": str(nothing), "out_dir": str(tmp_path / "none")}), log=lambda *_: None)


def test_nodes_split_the_shards_between_them(shards, monkeypatch):
    """As torchrun sets RANK and WORLD_SIZE: each node streams its own shards, shuffled,
    and together the nodes see every clip once."""
    out, _ = shards
    everything = sorted(c["key"] for c in clip_stream(DataConfig(shards=str(out), shuffle=0)))
    seen = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        mine = [c["key"] for c in clip_stream(DataConfig(shards=str(out), shuffle=50, seed=rank))]
        assert 0 < len(mine) < len(everything)
        seen += mine
    assert sorted(seen) == everything


def test_a_few_steps_make_the_loss_fall_and_resume_works(shards, tmp_path):
    out, tok = shards
    cfg = TrainConfig(data=str(out), tokenizer=str(tok), out_dir=str(tmp_path / "run"), steps=80, batch_size=16,
                      log_every=10, ckpt_every=40, lr=2e-3, warmup=5, seed=0)
    summary = train(cfg, log=lambda *_: None)
    losses = [h["loss"] for h in summary["history"]]
    assert min(losses[-2:]) < losses[0] * 0.75, losses
    model, ckpt = load_checkpoint(tmp_path / "run" / "ckpt.pt")
    assert ckpt["step"] == 80 and ckpt["model_config"]["vocab_size"] == Tokenizer(tok).vocab_size
    assert ckpt["train_config"]["langs"] == list(LANGS)
    # resume: a longer run picks up at step 80
    longer = train(TrainConfig(**{**cfg.__dict__, "steps": 90}), log=lambda *_: None)
    assert longer["history"][0]["step"] == 90 and len(longer["history"]) == 1
    # the run's log covers both sessions; a rerun with nothing left to do still has it
    assert [h["step"] for h in read_history(tmp_path / "run")] == list(range(10, 91, 10))
    again = train(TrainConfig(**{**cfg.__dict__, "steps": 90}), log=lambda *_: None)
    assert again["history"] == [] and read_history(tmp_path / "run")[-1] == longer["history"][0]
    assert again["samples_per_s"] is None and again["flops_per_sample"] is None  # no step, no speed
    # speed in model FLOPs: the counted step's FLOPs over the session's time
    assert summary["flops_per_sample"] > 10**6 and summary["tflops"] > 0
    assert summary["history"][-1]["tflops"] > 0 and "mfu" not in summary  # no datasheet peak on a CPU
    # and the trained model retrieves its training clips far above chance
    clips = list(clip_stream(DataConfig(shards=str(out), lang_mode="all", n_frames=model.cfg.n_frames,
                                        frame_size=model.cfg.frame_size, shuffle=0)))
    res = evaluate_clips(model, Tokenizer(tok), clips, ("en",))
    assert res["en"]["t2v"]["R@10"] > 100 * 10 / len(clips) * 2
    # `mhowto eval` writes the figures, a table and a chart beside the checkpoint
    from multihowto.pipeline.cli import main as cli

    assert cli(["eval", "--ckpt", str(tmp_path / "run" / "ckpt.pt"), "--data", str(out), "--tokenizer", str(tok)]) == 0
    written = json.loads((tmp_path / "run" / "results.json").read_text())
    assert written["clips"] == len(clips) and written["step"] == 90
    last, _ = load_checkpoint(tmp_path / "run" / "ckpt.pt")  # step 90, after the resumed session
    assert written["per_language"]["en"]["t2v"] == pytest.approx(evaluate_clips(last, Tokenizer(tok), clips, LANGS)["en"]["t2v"])
    assert set(written["per_language"]) == set(LANGS)
    md = (tmp_path / "run" / "results.md").read_text()
    assert all(f"| {lang} | " in md for lang in LANGS)
    with Image.open(tmp_path / "run" / "results.png") as png:
        assert png.format == "PNG" and png.width > 500


def test_cli_parses_every_field(tmp_path):
    cfg = parse_args(["--langs", "en,de", "--steps", "7", "--d-model", "64", "--init-from", "x.pt"])
    assert cfg.langs == ("en", "de") and cfg.steps == 7 and cfg.model.d_model == 64 and cfg.init_from == "x.pt"
    with pytest.raises(SystemExit):
        parse_args(["--langs", "en,xx"])
    with pytest.raises(FileNotFoundError):
        main(["--data", str(tmp_path), "--tokenizer", str(tmp_path / "none.model"), "--out-dir", str(tmp_path / "r")])


def test_a_boolean_flag_refuses_anything_but_a_boolean(capsys):
    assert parse_args(["--stream", "yes"]).stream is True
    assert parse_args(["--stream", "FALSE", "--augment", "1"]).stream is False
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--stream", "ture"])
    assert exit_.value.code == 2
    assert "--stream" in capsys.readouterr().err
    from multihowto.pipeline.cli import main as cli_main

    with pytest.raises(SystemExit):
        cli_main(["train", "--stream", "ture"])


def test_the_bf16_autocast_step_runs_in_bf16_and_learns():
    """The GPU's mixed-precision path, run on the CPU: the projections compute in bf16,
    the weights and losses stay float32, and the loss falls on a batch it can learn."""
    from multihowto.trainer.model import ModelConfig, VideoTextModel
    from multihowto.trainer.train import train_step

    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=64, d_model=64, embed_dim=32, video_layers=1, text_layers=1, n_frames=2, frame_size=32)
    model = VideoTextModel(cfg).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    b = 8
    video = torch.randint(0, 256, (b, cfg.n_frames, 3, cfg.frame_size, cfg.frame_size), dtype=torch.uint8)
    ids = torch.randint(4, cfg.vocab_size, (b, 6))
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[: b // 2, 4:] = False  # padded texts go through the bf16 path too
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: seen.__setitem__(name, out.dtype))
             for name, m in (("video", model.video.proj), ("text", model.text.proj))]
    losses = [train_step(model, opt, video, (ids, mask), (ids, mask), 0.5, 1.0, amp=True) for _ in range(40)]
    for h in hooks:
        h.remove()
    assert seen == {"video": torch.bfloat16, "text": torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    first, last = losses[0]["loss"].item(), losses[-1]["loss"].item()
    assert losses[-1]["loss"].dtype == torch.float32 and torch.isfinite(losses[-1]["loss"])
    assert last < first * 0.5, (first, last)
