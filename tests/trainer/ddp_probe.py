"""One training step's gradients on a fixed joint batch, run alone or under torchrun:

    python tests/trainer/ddp_probe.py OUT.pt                              # the whole batch
    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/trainer/ddp_probe.py OUT.pt

Each process takes its own rows of the same joint batch; the first one saves the loss
averaged over the processes and the gradients (after DDP has averaged them) to OUT.pt. test_distributed.py compares.
"""

import sys

import torch

from multihowto.trainer.distributed import mean, start, stop, world_from_env
from multihowto.trainer.model import ModelConfig, VideoTextModel
from multihowto.trainer.train import train_step

ROWS = 8
# Features, not frames: the frame CNN's BatchNorm takes each process's own batch
# statistics on a CPU (SyncBatchNorm, which the trainer uses on GPUs, runs on GPUs only).
CFG = ModelConfig(vocab_size=50, d_model=32, n_heads=2, embed_dim=16, text_layers=1, video_layers=1,
                  n_frames=3, feature_dim=12, dropout=0.0, max_len=8)


def joint_batch() -> tuple:
    g = torch.Generator().manual_seed(1)
    video = torch.randn(ROWS, CFG.n_frames, CFG.feature_dim, generator=g)

    def text():
        ids = torch.randint(4, CFG.vocab_size, (ROWS, CFG.max_len), generator=g)
        mask = torch.arange(CFG.max_len).unsqueeze(0) < torch.randint(2, CFG.max_len + 1, (ROWS, 1), generator=g)
        return ids, mask

    return video, text(), text()


def main(out: str) -> None:
    world = world_from_env()
    start(world, "cpu")
    torch.manual_seed(0)
    model = VideoTextModel(CFG)
    net = torch.nn.parallel.DistributedDataParallel(model) if world.size > 1 else model
    video, ta, tb = joint_batch()
    rows = slice(world.rank * ROWS // world.size, (world.rank + 1) * ROWS // world.size)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # keeps the weights, leaves the gradients
    losses = train_step(net, opt, video[rows], (ta[0][rows], ta[1][rows]), (tb[0][rows], tb[1][rows]),
                        xling_weight=0.5, grad_clip=1e9, amp=False, world=world)
    loss = mean({"loss": losses["loss"].item()}, world)["loss"]  # the global batch's, as train() logs it
    if world.main:
        torch.save({"world": world.size, "loss": loss,
                    "grads": {n: p.grad.clone() for n, p in model.named_parameters()}}, out)
    stop(world)


if __name__ == "__main__":
    main(sys.argv[1])
