"""How much arithmetic a training step does, and how much the device can do.

``count_flops`` runs a callable under torch's own FLOP counter (matrix products,
convolutions and attention, forward and backward, as autograd really runs them), so the
trainer can turn samples/s into model FLOP/s. ``matmul_tflops`` measures the device's
ceiling in the same process: one large square matrix product in the trainer's compute
dtype on random data. ``datasheet_bf16_tflops`` gives the vendor's dense bf16 figure for
the GPUs we know by name, for the fraction-of-peak that papers quote (MFU).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import torch
from torch.utils.flop_counter import FlopCounterMode

T = TypeVar("T")

# Dense (no sparsity) bf16 tensor-core TFLOP/s from the vendors' datasheets, matched in
# order against torch.cuda.get_device_name(): the more specific names come first.
DATASHEET_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H200", 989.4),  # the H100's chip with more memory; GH200 too
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
)


def datasheet_bf16_tflops(device: str) -> float | None:
    """The datasheet dense bf16 peak of ``device`` ("cuda", "cuda:1"), None when unknown
    or not a GPU."""
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    return peak_for_name(torch.cuda.get_device_name(torch.device(device)))


def peak_for_name(name: str) -> float | None:
    """The datasheet dense bf16 TFLOP/s of a GPU by the name torch reports, None if unknown."""
    return next((peak for key, peak in DATASHEET_BF16_TFLOPS if key in name), None)


def count_flops(fn: Callable[[], T]) -> tuple[T, int]:
    """Run ``fn`` once and return its result with the FLOPs it performed (a multiply-add
    counts 2). Only the operators torch counts are seen: elementwise work, norms and
    the optimizer's update are not, which is the usual convention for model FLOPs."""
    with FlopCounterMode(display=False) as counter:
        out = fn()
    return out, counter.get_total_flops()


def compute_dtype(device: str) -> torch.dtype:
    """The dtype the trainer's matrix products run in on ``device``: bf16 under autocast
    on a GPU that has it, float32 otherwise."""
    if device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def matmul_tflops(device: str, n: int, iters: int = 10, dtype: torch.dtype | None = None, seed: int = 0) -> float:
    """Measured TFLOP/s of an (n, n) @ (n, n) product on random data, after warm-up."""
    dtype = dtype or compute_dtype(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=gen)
    for _ in range(3):
        c = a @ b
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        c = a @ b
    synchronize(device)
    elapsed = time.perf_counter() - start
    del c
    return 2 * n**3 * iters / elapsed / 1e12
