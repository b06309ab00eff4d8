"""The training sampler: shuffled per epoch, split across ranks, able to start mid-epoch, and carrying each sample's
seed, so that a run resumed from any checkpoint sees the clips the uninterrupted run would have seen."""
from __future__ import annotations

from collections.abc import Iterator, Sized

import pytorch_lightning as pl
from torch.utils.data import DistributedSampler

from lightning_video.seeding import derived_seed


class TrainingSampler(DistributedSampler):
    """Yields `(dataset index, sample seed)`: the order is DistributedSampler's (a shuffle by seed and epoch, this
    rank's share of it; being one, Lightning keeps it under DDP and calls its `set_epoch`), the seed a function of
    (seed, epoch, index) from which `VideoClipDataset` draws the clip and its augmentation, whichever worker loads it.

    Args:
        dataset: the training dataset.
        batch_size: samples per batch, to skip whole batches when starting mid-epoch.
        seed: the run's seed.
        num_replicas: processes training together (the world size).
        rank: this process's rank among them.
        start: (epoch, batches of it already trained): the epoch to begin with, and the batches of it to skip.
    """

    def __init__(self, dataset: Sized, batch_size: int, seed: int, num_replicas: int = 1, rank: int = 0,
                 start: tuple[int, int] = (0, 0)) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.batch_size = batch_size
        self.start_epoch, self.start_batch = start
        # Lightning creates a resumed run's first iterator before its `set_epoch`, and loader workers take their
        # first indices as soon as it exists: the sampler must be at the resumed epoch from the start.
        self.set_epoch(self.start_epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        skip = self.start_batch * self.batch_size if self.epoch == self.start_epoch else 0
        for index in list(super().__iter__())[skip:]:
            yield index, derived_seed(self.seed, self.epoch, index)


def trained_position(trainer: pl.Trainer) -> tuple[int, int]:
    """(epoch, training batches of it done) at this point of a fit: where a run resumed from a checkpoint saved now
    carries on. Once an epoch's batches are all done (its validation or end hooks running), that is (next epoch, 0)."""
    epochs = trainer.fit_loop.epoch_progress.current
    batches = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    in_epoch = epochs.started > epochs.processed
    if in_epoch and batches < trainer.num_training_batches:
        return epochs.processed, batches
    return epochs.processed + int(in_epoch), 0
