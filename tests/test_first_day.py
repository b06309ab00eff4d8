"""What a new user meets on the first day: training length set once (the lr schedule follows the trainer)."""
from __future__ import annotations

import math

import pytest
import torch

from lightning_video.training.module import VideoClassifier
from lightning_video.training.schedules import WarmupCosineLR
from tests.test_training import loader, tiny_backbone, trainer


def old_schedule(epoch: int, max_epochs: int, warmup: int, start: float, min_factor: float = 0.0) -> float:
    """The per-epoch factor the recorded runs were trained with (the schedule before it read the trainer)."""
    if epoch < warmup:
        return start + (1 - start) * epoch / warmup
    progress = min((epoch - warmup) / (max_epochs - warmup), 1.0)
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def lrs(scheduler: WarmupCosineLR, steps: int) -> list[float]:
    seen = []
    for _ in range(steps):
        seen.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return seen


# the shipped recipes: synthetic_motion, xvit_k400, xvit_ssv2, synthetic_image_pretrain
@pytest.mark.parametrize("epochs, warmup, start", [(40, 1, 0.1), (30, 5, 0.333), (35, 5, 0.1), (10, 1, 0.1)])
def test_spanning_the_trainers_epochs_gives_the_recorded_lr_of_every_epoch(epochs: int, warmup: int, start: float):
    scheduler = WarmupCosineLR(optimizer(), warmup_epochs=warmup, warmup_start_factor=start)
    scheduler.span(epochs)
    assert lrs(scheduler, epochs) == pytest.approx([old_schedule(e, epochs, warmup, start) for e in range(epochs)],
                                                   abs=1e-12)


def test_per_step_schedule_meets_the_per_epoch_one_at_every_epoch_boundary():
    epochs, warmup, start, steps_per_epoch = 30, 5, 0.333, 7
    scheduler = WarmupCosineLR(optimizer(), warmup_steps=warmup * steps_per_epoch, warmup_start_factor=start)
    scheduler.span(epochs * steps_per_epoch, steps_per_epoch)
    per_step = lrs(scheduler, epochs * steps_per_epoch)
    assert per_step[::steps_per_epoch] == pytest.approx([old_schedule(e, epochs, warmup, start)
                                                         for e in range(epochs)], abs=1e-12)
    assert per_step[1] > per_step[0]  # warms up within the first epoch


@pytest.mark.parametrize("epochs", [1, 2, 3])
def test_warmup_longer_than_training_is_clamped_with_a_warning(epochs: int):
    scheduler = WarmupCosineLR(optimizer(), warmup_epochs=5)
    with pytest.warns(UserWarning, match=f"clamped to {epochs - 1}"):
        scheduler.span(epochs)
    seen = lrs(scheduler, epochs)
    assert seen == pytest.approx([old_schedule(e, epochs, epochs - 1, 0.1) for e in range(epochs)], abs=1e-12)
    assert max(seen) == pytest.approx(1.0) or epochs == 1 and seen == [1.0]


def fit_lrs(**trainer_settings) -> list[float]:
    """The lr of each optimizer step of a tiny fit with the X-ViT schedule (warmup 5 epochs, start 0.1)."""
    model = VideoClassifier(tiny_backbone(), optimizer=lambda params: torch.optim.SGD(params, lr=1.0),
                            lr_scheduler=lambda opt: WarmupCosineLR(opt, warmup_epochs=5))
    seen = []
    model.on_train_batch_start = lambda batch, index: seen.append(model.optimizers().param_groups[0]["lr"])
    trainer(**trainer_settings).fit(model, loader(8))  # 4 batches per epoch
    return seen


def test_the_fit_takes_its_schedule_length_from_max_epochs():
    seen = fit_lrs(max_epochs=3)  # warmup clamped to 2 epochs; stepped per epoch
    assert seen == pytest.approx([old_schedule(e, 3, 2, 0.1) for e in range(3) for _ in range(4)], abs=1e-12)


def test_the_fit_takes_its_schedule_length_from_max_steps():
    seen = fit_lrs(max_epochs=-1, max_steps=10)  # 10 steps, warmup clamped to 9 steps
    assert seen == pytest.approx([old_schedule(step, 10, 9, 0.1) for step in range(10)], abs=1e-12)
