"""Peak memory of one piece of work: the CUDA allocator's high-water mark, or on CPU the process's resident memory.

A CPU process's own peak (`ru_maxrss`) cannot be reset, so it cannot tell two models apart in one run. Instead a thread
samples the resident set every millisecond while the work runs, and the peak is reported above the level it started
from, after freed heap pages went back to the system (glibc `malloc_trim`), so memory kept from earlier work neither
hides this work's allocations nor counts as them.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE")
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"))


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE


class PeakMemory:
    """`with PeakMemory(device) as peak: work()`, then `peak.mib`: on CUDA the allocator's peak (weights included), on
    CPU the peak resident memory above the start (what the work itself allocated)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib = float("nan")
        self._done = threading.Event()

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        if hasattr(_LIBC, "malloc_trim"):
            _LIBC.malloc_trim(0)
        self._start = self._peak = _resident_bytes()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.001):
            self._peak = max(self._peak, _resident_bytes())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        self._done.set()
        self._sampler.join()
        self.mib = (max(self._peak, _resident_bytes()) - self._start) / 2**20
