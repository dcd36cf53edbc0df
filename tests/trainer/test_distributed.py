"""Data-parallel training under torchrun, on this machine's CPU with gloo: two real
processes, the same code a multi-GPU node runs (NCCL and SyncBatchNorm aside)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from multihowto.trainer.data import DataConfig, clip_stream
from multihowto.trainer.train import load_checkpoint, read_history

pytestmark = pytest.mark.slow

PROBE = Path(__file__).with_name("ddp_probe.py")


def torchrun(processes: int, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_two_processes_take_the_step_one_process_takes_on_their_joint_batch(tmp_path):
    """Each process embeds its half of the batch; the loss gathers the other half as
    negatives with its gradient, DDP averages: the gradients equal one process's on the
    whole batch. (Without the gathered gradient they differ by about their own size.)"""
    one = subprocess.run([sys.executable, str(PROBE), str(tmp_path / "one.pt")], capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = torchrun(2, str(PROBE), str(tmp_path / "two.pt"))
    assert two.returncode == 0, two.stderr
    alone, split = (torch.load(tmp_path / f, weights_only=True) for f in ("one.pt", "two.pt"))
    assert (alone["world"], split["world"]) == (1, 2)
    assert split["loss"] == pytest.approx(alone["loss"], rel=1e-5)  # the mean of the halves' losses is the whole's
    assert alone["grads"].keys() == split["grads"].keys()
    for name, g in alone["grads"].items():
        assert g.abs().max() > 0 or name.endswith("bias"), name
        # float32 sums in another order: equal to a millionth of the tensor's largest entry
        torch.testing.assert_close(split["grads"][name], g, rtol=0, atol=2e-6 * g.abs().max().item(), msg=name)


def test_torchrun_trains_one_model_from_the_sample_shards_and_resumes(shards, tmp_path):
    out, tok = shards
    run = tmp_path / "run"
    common = ["-m", "multihowto.trainer.train", "--data", str(out), "--tokenizer", str(tok), "--out-dir", str(run),
              "--batch-size", "6", "--lr", "2e-3", "--warmup", "5", "--log-every", "10", "--ckpt-every", "20"]
    # streaming: the three shards split between the two processes (two and one)
    first = torchrun(2, *common, "--steps", "40", "--stream", "true", "--workers", "1", "--shuffle-buffer", "16")
    assert first.returncode == 0, first.stderr[-3000:]
    printed = [json.loads(line) for line in first.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1 and printed[0]["processes"] == 2 and printed[0]["steps"] == 40  # the first process speaks
    history = read_history(run)
    assert [h["step"] for h in history] == [10, 20, 30, 40] and all(h["processes"] == 2 for h in history)
    losses = [h["loss"] for h in history]
    assert sum(losses[-2:]) / 2 < losses[0], losses  # 40 steps on 30 clips: it learns, not by a set margin
    model, ckpt = load_checkpoint(run / "ckpt.pt")  # one checkpoint, plain VideoTextModel keys
    assert ckpt["step"] == 40 and model.n_params() > 0
    # resumed by two processes holding the decoded clips in memory, each those of its shards
    second = torchrun(2, *common, "--steps", "50")
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads([line for line in second.stdout.splitlines() if line.startswith("{")][0])
    assert summary["steps"] == 50 and summary["clips"] == len(list(clip_stream(DataConfig(shards=str(out), shuffle=0))))
    assert [h["step"] for h in read_history(run)] == [10, 20, 30, 40, 50]
    assert load_checkpoint(run / "ckpt.pt")[1]["step"] == 50
