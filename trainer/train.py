"""Pretrain or fine-tune the video-text model on streamed shards.

    mhowto train --data data/local --out-dir runs/demo --steps 300 --langs en,de,fr

AdamW, linear warmup then cosine decay, gradient clipping, bf16 autocast and the GPU
when present, checkpoint every ``ckpt_every`` steps and resume from the last one,
metrics to ``{out_dir}/metrics.jsonl``. ``main(argv)`` is what the CLI calls. Under
``torchrun -m multihowto.trainer.train`` it trains data-parallel (:mod:`.distributed`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from multihowto.schemas.sample import LANGS
from multihowto.trainer.data import ClipDataset, DataConfig, clip_stream, shard_urls
from multihowto.trainer.distributed import (
    ALONE,
    World,
    all_true,
    barrier,
    mean,
    reduce,
    start,
    stop,
    world_from_env,
)
from multihowto.trainer.flops import compute_dtype, count_flops, datasheet_bf16_tflops
from multihowto.trainer.loss import video_text_loss
from multihowto.trainer.model import ModelConfig, VideoTextModel
from multihowto.trainer.tokenizer import Tokenizer


@dataclass
class TrainConfig:
    data: str = "data/local"
    tokenizer: str = ""  # default: {data}/tokenizer/spm.model
    out_dir: str = "runs/default"
    langs: tuple[str, ...] = LANGS  # languages whose subtitles are used
    videos: str = ""  # a file of video ids to train on, one per line; empty: all
    steps: int = 400
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 40
    grad_clip: float = 1.0
    xling_weight: float = 0.5
    augment: bool = False  # random crop + flip of the frames (measured on the recipe at 300 pre-training steps: it underfits)
    seed: int = 0
    device: str = "auto"
    init_from: str = ""  # a checkpoint whose weights start this run (fine-tuning)
    log_every: int = 25
    ckpt_every: int = 200
    num_threads: int = 0  # torch CPU threads; 0: torch's default
    # False: decode the chosen clips once and keep them in memory (small datasets, such as
    # the recipe's). True: stream the shards every epoch through a DataLoader of
    # ``workers`` processes and a shuffle buffer (datasets larger than memory).
    stream: bool = False
    workers: int = 2
    shuffle_buffer: int = 1000
    model: ModelConfig = field(default_factory=ModelConfig)


def pick_device(name: str) -> str:
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def read_ids(path: str) -> frozenset[str] | None:
    if not path:
        return None
    return frozenset(line.strip() for line in Path(path).read_text().splitlines() if line.strip())


def model_data_config(m: ModelConfig, shards: str, **kw) -> DataConfig:
    """The loader settings that give ``m`` its inputs (frames or features, how many, what
    size), every language of each clip; ``kw`` sets the rest (videos, shuffle, seed)."""
    return DataConfig(shards=shards, lang_mode="all", n_frames=m.n_frames, frame_size=m.frame_size,
                      use_features=m.feature_dim > 0, **kw)


def data_config(cfg: TrainConfig, langs: tuple[str, ...], videos: frozenset[str] | None, shuffle: int, seed: int) -> DataConfig:
    return model_data_config(cfg.model, cfg.data, langs=langs, videos=videos, shuffle=shuffle, seed=seed)


def load_clips(cfg: TrainConfig, langs: tuple[str, ...], videos: frozenset[str] | None, seed: int) -> list[dict]:
    """Stream the shards once and keep the decoded clips of the chosen videos that have
    at least one of ``langs`` in memory: the recipe's datasets are small, and decoding
    once per run instead of once per epoch is what keeps a CPU run short."""
    return list(clip_stream(data_config(cfg, langs, videos, 0, seed)))


def batches(clips: list[dict], batch_size: int, rng: random.Random):
    """Endless shuffled batches (epochs of the cached clips)."""
    while True:
        order = list(range(len(clips)))
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield [clips[j] for j in order[i : i + batch_size]]


def streamed_batches(cfg: TrainConfig, langs: tuple[str, ...], videos: frozenset[str] | None, first_epoch: int):
    """Endless batches streamed from the shards by ``cfg.workers`` DataLoader processes,
    started once: each worker reads its share of the shards (split by node, then by
    worker) epoch after epoch, each epoch in a new shard and sample order; a batch may
    span two epochs. Only full batches are used."""
    dataset = ClipDataset(data_config(cfg, langs, videos, cfg.shuffle_buffer, cfg.seed), repeat=True)
    dataset.set_epoch(first_epoch)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, num_workers=cfg.workers,
                                         collate_fn=list, drop_last=True)
    yield from loader
    # workers repeat for ever unless their shards hold no chosen clip at all
    raise ValueError(f"no chosen clip in {cfg.data!r} (langs {', '.join(langs)})")


def augment(video: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random crop (after a 1/8 reflect pad) and horizontal flip, one draw per clip, the
    same for all its frames. (B, T, 3, S, S) frames; features pass through."""
    if video.dim() != 5:
        return video
    b, t, c, s, _ = video.shape
    pad = max(1, s // 8)
    padded = torch.nn.functional.pad(video.flatten(0, 1).float(), (pad, pad, pad, pad), mode="reflect").view(b, t, c, s + 2 * pad, s + 2 * pad)
    out = torch.empty_like(video)
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=gen)
    flips = torch.rand(b, generator=gen) < 0.5
    for i in range(b):
        y, x = offsets[i].tolist()
        clip = padded[i, :, :, y : y + s, x : x + s]
        out[i] = (clip.flip(-1) if flips[i] else clip).to(video.dtype)
    return out


def lr_at(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[VideoTextModel, dict]:
    """A model and its checkpoint dict; no pickle beyond tensors (weights_only)."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    model = VideoTextModel(ModelConfig(**ckpt["model_config"])).to(device)
    model.load_state_dict(ckpt["model"])
    return model, ckpt


def rank_seed(seed: int, world: World) -> int:
    """Each process's own draws (batches, languages, augmentation); process 0's are those
    of a single-process run."""
    return seed + 1_000_003 * world.rank


def train(cfg: TrainConfig, log=print) -> dict:
    """Train; returns a summary with the first and last logged losses. Under torchrun
    every process calls this; the first one logs and writes the checkpoints."""
    world = world_from_env()
    device = start(world, pick_device(cfg.device))
    try:
        summary = _train(cfg, world, device, log if world.main else (lambda *_: None))
        barrier(world)  # the last checkpoint is written before any process returns
        return summary
    finally:  # after an error, no collective: torchrun stops the other processes
        stop(world)


def _train(cfg: TrainConfig, world: World, device: str, log) -> dict:
    torch.manual_seed(cfg.seed)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    rng = random.Random(rank_seed(cfg.seed, world))
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(cfg.tokenizer or Path(cfg.data) / "tokenizer" / "spm.model")
    mcfg = dataclasses.replace(cfg.model, vocab_size=tok.vocab_size)
    model = VideoTextModel(mcfg).to(device)
    if cfg.init_from:
        init, _ = load_checkpoint(cfg.init_from, device)
        model.load_state_dict(init.state_dict())
    if world.size > 1 and device.startswith("cuda"):
        # batch statistics over the global batch (same parameters, same state_dict keys)
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr)
    step = 0
    ckpt_path = out / "ckpt.pt"
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = ckpt["step"]
        rng.seed(rank_seed(cfg.seed + step, world))
        log(f"[train] resumed from {ckpt_path} at step {step}")

    net = model
    if world.size > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[torch.device(device).index] if device.startswith("cuda") else None)
    if cfg.stream:
        n_shards = len(shard_urls(cfg.data))
        if n_shards < world.size:
            raise ValueError(f"{n_shards} shards in {cfg.data!r} for {world.size} processes: each needs one at least")
        # a resumed stream starts a new epoch (its own order), not the middle of the last one
        n_clips, data = None, streamed_batches(cfg, tuple(cfg.langs), read_ids(cfg.videos), first_epoch=step)
    else:
        # under torchrun each process reads its own shards (split by node, as streaming does)
        clips = load_clips(cfg, tuple(cfg.langs), read_ids(cfg.videos), cfg.seed)
        n_clips, fewest = reduce(len(clips), world), reduce(len(clips), world, "min")
        if fewest < cfg.batch_size:  # the same test in every process
            per = f" ({fewest} in the process with the fewest)" if world.size > 1 else ""
            raise ValueError(f"{n_clips} clips{per}, fewer than one batch of {cfg.batch_size}")
        data = batches(clips, cfg.batch_size, rng)
    amp = compute_dtype(device) == torch.bfloat16  # the bench reads the same rule
    metrics_file = open(out / "metrics.jsonl", "a", encoding="utf-8") if world.main else None
    history = []
    gen = torch.Generator().manual_seed(rank_seed(cfg.seed + step, world))
    bar = tqdm(total=cfg.steps, initial=step, desc=f"train {out.name}", unit="step", dynamic_ncols=True, mininterval=2,
               disable=not world.main)
    started, seen, flops, step_flops = time.perf_counter(), 0, 0, {}
    peak = datasheet_bf16_tflops(device) if amp else None
    model.train()
    while step < cfg.steps:
        batch = next(data)
        langs_a, texts_a, texts_b = [], [], []
        for clip in batch:
            present = list(clip["texts"])
            a = rng.choice(present)
            others = [lang for lang in present if lang != a]
            langs_a.append(a)
            texts_a.append(clip["texts"][a])
            texts_b.append(clip["texts"][rng.choice(others)] if others else None)
        use_xling = all_true(cfg.xling_weight > 0 and all(t is not None for t in texts_b), world)
        video = torch.stack([c["video"] for c in batch])
        if cfg.augment:
            video = augment(video, gen)
        video = video.to(device, non_blocking=True)
        text_a = tuple(t.to(device) for t in tok.encode(texts_a, mcfg.max_len))
        text_b = tuple(t.to(device) for t in tok.encode(texts_b, mcfg.max_len)) if use_xling else None
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        one_step = functools.partial(train_step, net, opt, video, text_a, text_b, cfg.xling_weight, cfg.grad_clip, amp, world)
        if use_xling not in step_flops:  # a step's shape is fixed but for the cross-lingual term
            losses, step_flops[use_xling] = count_flops(one_step)
        else:
            losses = one_step()
        flops += step_flops[use_xling] * world.size  # every process runs the same shapes
        step += 1
        seen += len(batch) * world.size
        bar.update(1)
        if step % cfg.log_every == 0 or step == cfg.steps:
            global_losses = mean({k: v.item() for k, v in losses.items()}, world)
            rec = {"step": step, "lr": lr_at(step - 1, cfg), **{k: round(v, 4) for k, v in global_losses.items()},
                   **throughput(seen, flops, time.perf_counter() - started, peak)}
            if world.size > 1:
                rec["processes"] = world.size
            history.append(rec)
            bar.set_postfix(loss=rec["loss"])
            if world.main:
                metrics_file.write(json.dumps(rec) + "\n")
                metrics_file.flush()
        if world.main and (step % cfg.ckpt_every == 0 or step == cfg.steps):
            save_checkpoint(ckpt_path, model, opt, step, cfg)
    bar.close()
    if metrics_file:
        metrics_file.close()
    return {"steps": step, "clips": n_clips, "history": history, "device": device, "params": model.n_params(),
            "processes": world.size,
            "flops_per_sample": round(flops / seen) if seen else None,
            **throughput(seen, flops, time.perf_counter() - started, peak)}


def train_step(model: torch.nn.Module, opt: torch.optim.Optimizer, video: torch.Tensor, text_a: tuple[torch.Tensor, torch.Tensor],
               text_b: tuple[torch.Tensor, torch.Tensor] | None, xling_weight: float, grad_clip: float, amp: bool,
               world: World = ALONE) -> dict:
    """One optimizer step on a batch already on the device: forward under bf16 autocast
    when ``amp`` (on the batch's device type, so a CPU test runs the GPU's bf16 path),
    the losses (over the global batch under torchrun), backward, clipping, update.
    ``model`` is a VideoTextModel or its DDP wrapper. Returns the loss tensors."""
    with torch.autocast(device_type=video.device.type, dtype=torch.bfloat16, enabled=amp):
        v, ta, tb, scale = model(video, text_a, text_b)
        losses = video_text_loss(v.float(), ta.float(), scale, tb.float() if tb is not None else None, xling_weight, world)
    opt.zero_grad(set_to_none=True)
    losses["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    return losses


def throughput(samples: int, flops: int, seconds: float, peak_tflops: float | None) -> dict:
    """samples/s and model TFLOP/s over a session (None when it ran no step), and the
    fraction of the device's datasheet bf16 peak when that is known (MFU)."""
    if not samples:
        return {"samples_per_s": None, "tflops": None}
    tflops = flops / max(seconds, 1e-9) / 1e12
    out = {"samples_per_s": round(samples / max(seconds, 1e-9), 1), "tflops": round(tflops, 4)}
    if peak_tflops:
        out["mfu"] = round(tflops / peak_tflops, 5)
    return out


def read_history(out_dir: str | Path) -> list[dict]:
    """A run's logged metrics over all its sessions, one record per step (``train``'s
    ``history`` holds only the session's own): a run resumed from a checkpoint logs the
    steps after it again, and the last record wins."""
    by_step = {}
    for line in (Path(out_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            rec = json.loads(line)
            by_step[rec["step"]] = rec
    return [by_step[k] for k in sorted(by_step)]


def save_checkpoint(path: Path, model: VideoTextModel, opt, step: int, cfg: TrainConfig) -> None:
    tmp = path.with_suffix(".tmp")
    train_cfg = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items() if k != "model"}
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                "model_config": asdict(model.cfg), "train_config": train_cfg}, tmp)
    tmp.replace(path)


_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_bool(text: str) -> bool:
    """A boolean flag's value: true/false, 1/0 or yes/no (any case); anything else, a typo
    such as ``ture`` included, is refused rather than read as false."""
    try:
        return _BOOLS[text.strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"expected true/false, 1/0 or yes/no, got {text[:40]!r}") from None


def parse_args(argv: list[str] | None) -> TrainConfig:
    """Every TrainConfig and ModelConfig field is a ``--flag`` (``--langs en,de``)."""
    p = argparse.ArgumentParser(prog="mhowto train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in dataclasses.fields(TrainConfig) + dataclasses.fields(ModelConfig):
        if f.name == "model":
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind = type(default)
        if kind is bool:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=parse_bool, default=None)
        elif kind is tuple:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=lambda s: tuple(x for x in s.split(",") if x), default=None)
        else:
            p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None)
    ns = vars(p.parse_args(argv))
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    mkw = {k: v for k, v in ns.items() if k in model_fields and v is not None}
    tkw = {k: v for k, v in ns.items() if k not in model_fields and v is not None}
    cfg = TrainConfig(**tkw, model=ModelConfig(**mkw))
    unknown = [lang for lang in cfg.langs if lang not in LANGS]
    if unknown:
        p.error(f"--langs: unknown language(s) {unknown}")
    return cfg


def main(argv: list[str] | None = None) -> int:
    summary = train(parse_args(argv))
    if world_from_env().main:
        print(json.dumps({k: v for k, v in summary.items() if k != "history"}))
    return 0


if __name__ == "__main__":  # torchrun ... -m multihowto.trainer.train
    raise SystemExit(main())
