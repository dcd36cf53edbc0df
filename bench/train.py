"""``make bench-train``: the trainer's speed against the device's ceiling, measured in the same run.

    ceiling          an (n, n) @ (n, n) product in the trainer's compute dtype (bf16 under
                     autocast on a GPU, float32 on a CPU) on random data, TFLOP/s
    model step       one optimizer step of the recipe's model on batches already on the
                     device, at several batch sizes: samples/s, model TFLOP/s (counted by
                     torch's FLOP counter, forward and backward), ratio to the ceiling
    trainer          the real ``mhowto train`` loop on the recipe's dataset (decoded clips
                     cached, tokenizing and batching on the host each step) at the recipe's
                     batch size: the same figures, and its ratio to the model step alone

On a GPU whose datasheet we know (trainer/flops.py) every TFLOP/s figure is also given
as a fraction of the datasheet dense bf16 peak (MFU). Results go to
bench/train_results.json (``--out``). ``--no-trainer`` skips the part that needs the
recipe's dataset (it builds it when missing, as ``make pretrain`` does; ``--prepared``
takes it as ``mhowto recipe prepare`` left it, on a machine that cannot build it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# the trainer's progress bars would break up the table; tqdm reads this when imported
os.environ.setdefault("TQDM_DISABLE", "1")


def model_step(device: str, batch: int, vocab: int, steps: int, seed: int = 0) -> dict:
    """Time ``steps`` optimizer steps of the recipe's model on one random batch resident on
    the device (uint8 frames, token ids with lengths drawn like short subtitles)."""
    import torch

    from multihowto.trainer.flops import compute_dtype, count_flops, synchronize
    from multihowto.trainer.model import ModelConfig, VideoTextModel
    from multihowto.trainer.train import train_step

    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=vocab)
    model = VideoTextModel(cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    video = torch.randint(0, 256, (batch, cfg.n_frames, 3, cfg.frame_size, cfg.frame_size), dtype=torch.uint8, device=device)

    def text() -> tuple:
        lengths = torch.randint(6, cfg.max_len + 1, (batch, 1), device=device)
        mask = torch.arange(cfg.max_len, device=device).unsqueeze(0) < lengths
        ids = torch.randint(4, vocab, (batch, cfg.max_len), device=device).masked_fill(~mask, 0)
        return ids, mask

    text_a, text_b = text(), text()
    amp = compute_dtype(device) == torch.bfloat16

    def step():
        return train_step(model, opt, video, text_a, text_b, 0.5, 1.0, amp)

    _, flops = count_flops(step)
    for _ in range(3):
        step()
    synchronize(device)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - t)
    per_step = statistics.median(times)
    return {"batch": batch, "steps": steps, "median_step_s": per_step, "samples_per_s": batch / per_step,
            "flops_per_sample": flops / batch, "tflops": flops / per_step / 1e12}


def trainer_loop(device: str, steps: int, prepared: bool, log) -> dict:
    """The trainer itself on the recipe's dataset, as ``make pretrain`` runs it."""
    from multihowto.trainer.recipe import RecipeConfig, prepare, use_prepared
    from multihowto.trainer.train import TrainConfig, train

    rc = RecipeConfig(root=str(ROOT))
    data = use_prepared(rc) if prepared else prepare(rc, log=log)
    with tempfile.TemporaryDirectory() as tmp:
        # one short session first, so the timed one starts warm (the model, kernels, caches)
        cfg = TrainConfig(data=str(data), out_dir=tmp, steps=5, batch_size=rc.batch_size, device=device,
                          videos=str(data / "splits" / "pretrain.txt"), log_every=10**9, ckpt_every=10**9)
        train(cfg, log=log)
        warm = train(TrainConfig(**{**cfg.__dict__, "steps": 5 + steps}), log=log)
    return {"batch": rc.batch_size, "steps": steps, "samples_per_s": warm["samples_per_s"], "tflops": warm["tflops"],
            "flops_per_sample": warm["flops_per_sample"], "clips": warm["clips"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--batches", default="", help="comma-separated batch sizes for the model step "
                   "(default: 64,256 on a CPU, 64,256,1024,4096 on a GPU)")
    p.add_argument("--steps", type=int, default=0, help="timed steps per figure (default: 10 on a CPU, 50 on a GPU)")
    p.add_argument("--vocab", type=int, default=3000, help="the recipe's vocabulary size")
    p.add_argument("--no-trainer", action="store_true", help="skip the trainer loop on the recipe's dataset")
    p.add_argument("--prepared", action="store_true",
                   help="use the recipe dataset `mhowto recipe prepare` left, building nothing (a GPU box without the pipeline)")
    p.add_argument("--out", default=str(ROOT / "bench" / "train_results.json"))
    args = p.parse_args(argv)

    import torch

    from multihowto.trainer.flops import compute_dtype, datasheet_bf16_tflops, matmul_tflops
    from multihowto.trainer.train import pick_device

    device = pick_device(args.device)
    gpu = device.startswith("cuda")
    name = torch.cuda.get_device_name(torch.device(device)) if gpu else (platform.processor() or platform.machine())
    dtype = compute_dtype(device)
    steps = args.steps or (50 if gpu else 10)
    batches = [int(b) for b in args.batches.split(",") if b] or ([64, 256, 1024, 4096] if gpu else [64, 256])
    peak = datasheet_bf16_tflops(device) if dtype == torch.bfloat16 else None
    print(f"[bench-train] {device} ({name}), {torch.get_num_threads()} CPU threads, compute dtype {str(dtype).removeprefix('torch.')}, "
          f"torch {torch.__version__}", flush=True)

    res: dict = {"device": device, "name": name, "dtype": str(dtype), "torch": torch.__version__,
                 "datasheet_bf16_tflops": peak}
    n = 8192 if gpu else 2048
    res["ceiling_tflops"] = matmul_tflops(device, n, iters=20 if gpu else 5, dtype=dtype)
    print(f"  ceiling: {res['ceiling_tflops']:.3f} TFLOP/s ({n}^3 matmul)", flush=True)
    res["model_step"] = []
    for b in batches:
        r = model_step(device, b, args.vocab, steps)
        res["model_step"].append(r)
        print(f"  model step, batch {b}: {r['samples_per_s']:.0f} samples/s, {r['tflops']:.3f} TFLOP/s", flush=True)
    if not args.no_trainer:
        res["trainer"] = trainer_loop(device, steps * 2, args.prepared, log=lambda *a, **k: None)
        t = res["trainer"]
        print(f"  trainer loop, batch {t['batch']}: {t['samples_per_s']:.0f} samples/s, {t['tflops']:.3f} TFLOP/s", flush=True)
        same = next((r for r in res["model_step"] if r["batch"] == t["batch"]), None)
        if same:
            res["trainer_vs_model_step"] = t["samples_per_s"] / same["samples_per_s"]
    Path(args.out).write_text(json.dumps(res, indent=1))

    def frac(tflops: float, of: float | None) -> str:
        return f"{100 * tflops / of:.2f}%" if of else "-"

    print()
    print("| what | batch | samples/s | model TFLOP/s | of the measured ceiling | of the datasheet bf16 peak |")
    print("|---|---|---|---|---|---|")
    rows = [(f"model step ({r['flops_per_sample'] / 1e6:.0f} MFLOP/sample)", r) for r in res["model_step"]]
    if "trainer" in res:
        rows.append(("trainer loop (host tokenizing + batching)", res["trainer"]))
    for what, r in rows:
        print(f"| {what} | {r['batch']} | {r['samples_per_s']:.0f} | {r['tflops']:.3f} | "
              f"{frac(r['tflops'], res['ceiling_tflops'])} | {frac(r['tflops'], peak)} |")
    print(f"| ceiling: {n}^3 matmul | - | - | {res['ceiling_tflops']:.3f} | 100% | {frac(res['ceiling_tflops'], peak)} |")
    if "trainer_vs_model_step" in res:
        print(f"\ntrainer loop / model step at batch {res['trainer']['batch']}: {res['trainer_vs_model_step']:.2f} "
              "(what the host's per-step work costs)")
    print(f"[bench-train] wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
