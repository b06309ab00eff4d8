"""Random draws as a function of where training is, not of what ran before: the basis of an exact resume.

A run resumed from a checkpoint cannot replay the random draws made before it (by loader workers, validation, the
creation of loader iterators), so every draw that shapes the weights is seeded from the run's seed and a position:
each training sample's clip and augmentation from (seed, epoch, dataset index), whichever loader worker loads it
(`data.sampler.TrainingSampler`), and each training batch's dropout, drop-path and mixing from (seed, rank, epoch,
batch) (`training.module.VideoClassifier.on_train_batch_start`).
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


def run_seed() -> int:
    """The seed `seed_everything` (the CLI's `--seed_everything`) set for this run; 0 where none was set."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def derived_seed(*keys: int) -> int:
    """A 63-bit seed that depends on every key (NumPy's SeedSequence mixes them, so unlike a sum such as
    seed + epoch, different keys do not give the same seed)."""
    return int(np.random.SeedSequence([key % 2**32 for key in keys]).generate_state(1, np.uint64)[0] >> 1)


def _seed_host(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.random.default_generator.manual_seed(seed)


def seed_all(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators, CPU and every CUDA device."""
    _seed_host(seed)
    torch.manual_seed(seed)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed the CPU generators of Python, NumPy and torch for the block and give their states back after it, so a
    sample loaded in the main process (`data.num_workers 0`) leaves the other draws there alone."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        _seed_host(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)
