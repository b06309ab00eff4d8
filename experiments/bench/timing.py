"""Wall-clock timing of work that may run on a GPU: queued kernels are waited for before and after, or the time
would be that of launching them."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def seconds(work: Callable[[], object], device: torch.device) -> float:
    """Seconds one call of `work` takes."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def median_seconds(work: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of `work` over `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        work()
    return statistics.median(seconds(work, device) for _ in range(repeats))
