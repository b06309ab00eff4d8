"""GPU utilisation and memory sampled through NVML while other processes work (`with GpuSampler() as sampler:`),
summarised over the span in which the GPU was busy, so start-up and shutdown do not dilute the figure."""
from __future__ import annotations

import statistics
import threading
import time


class GpuSampler:
    """Samples GPU 0's utilisation (%) and memory in use (MiB) every `interval` seconds in a thread. Where NVML is
    missing or finds no GPU, `unavailable` says why and `summary()` is empty."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int, float]] = []
        self.unavailable = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> GpuSampler:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception as error:  # ImportError, or NVMLError when there is no driver or GPU
            self.unavailable = f"no NVML GPU to sample ({type(error).__name__}: {error})"
            return self
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not hasattr(self, "_nvml"):  # NVML never started
            return
        self._stop.set()
        self._thread.join()
        self._nvml.nvmlShutdown()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                utilisation = self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu
                memory = self._nvml.nvmlDeviceGetMemoryInfo(self._handle).used / 2**20
            except self._nvml.NVMLError as error:  # e.g. not supported on a virtualised GPU: say so, stop sampling
                self.unavailable = f"NVML cannot read the GPU's load ({error})"
                return
            self.samples.append((time.perf_counter(), utilisation, memory))
            self._stop.wait(self.interval)

    def summary(self) -> dict[str, float]:
        """Mean and median utilisation over the busy span (first to last sample above 0 %), its length, and the most
        memory in use."""
        busy = [index for index, (_, utilisation, _) in enumerate(self.samples) if utilisation > 0]
        if not busy:
            return {}
        span = self.samples[busy[0]:busy[-1] + 1]
        utilisations = [utilisation for _, utilisation, _ in span]
        return dict(mean_util_pct=statistics.fmean(utilisations), median_util_pct=statistics.median(utilisations),
                    busy_s=span[-1][0] - span[0][0], samples=len(span),
                    max_memory_used_GiB=max(memory for _, _, memory in self.samples) / 1024)
